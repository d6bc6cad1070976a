using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// A lazily generated IDataView of images: row i has a key label (class i mod 10, 10 classes) and a feature vector of
/// channels x height x width floats computed only when a cursor asks for it (a class-dependent pattern plus hashed noise),
/// so no row is ever held in memory and any number of rows can be served. Its row count is known; it cannot shuffle
/// itself (as a file-backed view cannot).
/// </summary>
internal sealed class SyntheticImageView : IDataView
{
    private readonly long _rows;
    private readonly int _width;
    private readonly float[][] _patterns;

    public SyntheticImageView(long rows, int channels, int height, int width)
    {
        _rows = rows;
        _width = channels * height * width;
        _patterns = Enumerable.Range(0, 10).Select(c => Enumerable.Range(0, _width).Select(j => 0.5f + (0.4f * MathF.Sin(j * (c + 1) / 97f))).ToArray()).ToArray();
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("Features", new VectorDataViewType(NumberDataViewType.Single, channels, height, width));
        builder.AddColumn("Label", new KeyDataViewType(typeof(uint), 10));
        Schema = builder.ToSchema();
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _rows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => new[] { GetRowCursor(columnsNeeded, rand) };

    /// <summary>Writes row <paramref name="row"/>'s features: pixel j of class c is 0.5 + 0.4 sin(j (c + 1) / 97) plus noise in [-0.25, 0.25).</summary>
    private void Fill(long row, Span<float> values)
    {
        var pattern = _patterns[row % 10];
        ulong state = (ulong)row * 0x9E3779B97F4A7C15UL + 1;
        for (int j = 0; j < values.Length; j++)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            float noise = ((state >> 40) / (float)(1 << 24)) - 0.5f;
            values[j] = pattern[j] + (0.5f * noise);
        }
    }

    private sealed class Cursor(SyntheticImageView parent) : DataViewRowCursor
    {
        private long _position = -1;

        public override DataViewSchema Schema => parent.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext() => ++_position < parent._rows;

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == 0)
            {
                ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, parent._width);
                    parent.Fill(_position, editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)features;
            }
            ValueGetter<uint> label = (ref uint value) => value = (uint)(_position % 10) + 1;
            return (ValueGetter<TValue>)(Delegate)label;
        }
    }
}
