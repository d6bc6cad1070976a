using System;
using System.Collections.Generic;
using Microsoft.ML;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// An IDataView of PNG-encoded greyscale images whose feature column decodes and resizes each image when a cursor asks
/// for it (SkiaSharp: decode, then a linear resize to size x size, then pixels / 255): the cost of an image pipeline's
/// decode and resize steps, paid on every read, as a file-backed image pipeline pays it. Key label column with 10 classes.
/// </summary>
internal sealed class DecodingImageView : IDataView
{
    private readonly IReadOnlyList<byte[]> _png;
    private readonly IReadOnlyList<uint> _labels;
    private readonly int _size;

    public DecodingImageView(IReadOnlyList<byte[]> png, IReadOnlyList<uint> labels, int size)
    {
        _png = png;
        _labels = labels;
        _size = size;
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("Features", new VectorDataViewType(NumberDataViewType.Single, 1, size, size));
        builder.AddColumn("Label", new KeyDataViewType(typeof(uint), 10));
        Schema = builder.ToSchema();
    }

    /// <summary>Encodes 28x28 greyscale pixels (0-255) as a PNG of <paramref name="side"/> x <paramref name="side"/> pixels (upscaled, as a photo would be larger than the network's input).</summary>
    public static byte[] EncodePng(byte[] pixels, int side)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(28, 28, SKColorType.Gray8, SKAlphaType.Opaque));
        pixels.AsSpan().CopyTo(bitmap.GetPixelSpan());
        using var large = new SKBitmap(new SKImageInfo(side, side, SKColorType.Gray8, SKAlphaType.Opaque));
        bitmap.ScalePixels(large, new SKSamplingOptions(SKFilterMode.Linear));
        using var image = SKImage.FromBitmap(large);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _png.Count;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => new[] { GetRowCursor(columnsNeeded, rand) };

    private void Decode(long row, Span<float> values)
    {
        using var decoded = SKBitmap.Decode(_png[(int)row]) ?? throw new InvalidOperationException($"Row {row} is not a PNG image.");
        using var grey = new SKBitmap(new SKImageInfo(_size, _size, SKColorType.Gray8, SKAlphaType.Opaque));
        decoded.ScalePixels(grey, new SKSamplingOptions(SKFilterMode.Linear));
        var pixels = grey.GetPixelSpan();
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = pixels[i] / 255f;
        }
    }

    private sealed class Cursor(DecodingImageView parent) : DataViewRowCursor
    {
        private long _position = -1;

        public override DataViewSchema Schema => parent.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext() => ++_position < parent._png.Count;

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == 0)
            {
                ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, parent._size * parent._size);
                    parent.Decode(_position, editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)features;
            }
            ValueGetter<uint> label = (ref uint value) => value = parent._labels[(int)_position] + 1;
            return (ValueGetter<TValue>)(Delegate)label;
        }
    }
}
