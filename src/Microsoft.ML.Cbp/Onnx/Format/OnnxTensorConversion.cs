using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>ONNX <c>TensorProto</c> from and to .NET arrays, including packed 4-bit and 2-bit integers (no TorchSharp: the
/// scoring layer builds graphs with it; <see cref="TorchTensorConversion"/> converts to and from TorchSharp tensors).</summary>
internal static class OnnxTensorConversion
{
    /// <summary>ONNX data type codes (<c>TensorProto.DataType</c>) used here.</summary>
    public static class DataTypes
    {
        /// <summary>32-bit float.</summary>
        public const int Float = 1;
        /// <summary>Unsigned 8-bit integer.</summary>
        public const int UInt8 = 2;
        /// <summary>Signed 8-bit integer.</summary>
        public const int Int8 = 3;
        /// <summary>Signed 32-bit integer.</summary>
        public const int Int32 = 6;
        /// <summary>Signed 64-bit integer.</summary>
        public const int Int64 = 7;
        /// <summary>UTF-8 string.</summary>
        public const int String = 8;
        /// <summary>Boolean.</summary>
        public const int Bool = 9;
        /// <summary>64-bit float.</summary>
        public const int Double = 11;
        /// <summary>Unsigned 32-bit integer.</summary>
        public const int UInt32 = 12;
        /// <summary>Unsigned 4-bit integer, two per byte, low nibble first (IR 10, opset 21).</summary>
        public const int UInt4 = 21;
        /// <summary>Signed 4-bit integer, two per byte, low nibble first (IR 10, opset 21).</summary>
        public const int Int4 = 22;
        /// <summary>Unsigned 2-bit integer, four per byte, lowest bits first (IR 12, opset 25).</summary>
        public const int UInt2 = 25;
        /// <summary>Signed 2-bit integer, four per byte, lowest bits first (IR 12, opset 25).</summary>
        public const int Int2 = 26;
    }

    /// <summary>A float32 ONNX tensor (raw little-endian data).</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="dims">Dimensions.</param>
    /// <param name="values">Values, row-major.</param>
    public static TensorProto FromFloat(string name, long[] dims, float[] values) =>
        Create(name, DataTypes.Float, dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>An int64 ONNX tensor.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="dims">Dimensions.</param>
    /// <param name="values">Values, row-major.</param>
    public static TensorProto FromInt64(string name, long[] dims, long[] values) =>
        Create(name, DataTypes.Int64, dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>
    /// A signed integer ONNX tensor of <paramref name="bits"/> bits (8, 4 or 2) holding <paramref name="codes"/>, packed
    /// as the ONNX specification says (4-bit: two per byte, low nibble first; 2-bit: four per byte, lowest bits first).
    /// </summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="dims">Dimensions.</param>
    /// <param name="codes">Values, row-major, each in the range of the width.</param>
    /// <param name="bits">8, 4 or 2.</param>
    /// <exception cref="ArgumentOutOfRangeException">A code does not fit the width.</exception>
    public static TensorProto FromSignedCodes(string name, long[] dims, sbyte[] codes, int bits)
    {
        ArgumentNullException.ThrowIfNull(codes);
        int low = -(1 << (bits - 1)), high = (1 << (bits - 1)) - 1;
        foreach (sbyte code in codes)
        {
            if (code < low || code > high)
            {
                throw new ArgumentOutOfRangeException(nameof(codes), code, $"Code {code} of '{name}' does not fit a signed {bits}-bit integer [{low}, {high}].");
            }
        }
        return bits switch
        {
            8 => Create(name, DataTypes.Int8, dims, MemoryMarshal.AsBytes(codes.AsSpan()).ToArray()),
            4 => Create(name, DataTypes.Int4, dims, Pack(codes, 4)),
            2 => Create(name, DataTypes.Int2, dims, Pack(codes, 2)),
            _ => throw new ArgumentOutOfRangeException(nameof(bits), bits, "Integer codes are stored in 8, 4 or 2 bits."),
        };
    }

    /// <summary>Packs signed codes <paramref name="bits"/> wide into bytes, first element in the lowest bits.</summary>
    /// <param name="codes">The codes.</param>
    /// <param name="bits">4 or 2.</param>
    public static byte[] Pack(sbyte[] codes, int bits)
    {
        ArgumentNullException.ThrowIfNull(codes);
        int perByte = 8 / bits, mask = (1 << bits) - 1;
        var packed = new byte[(codes.Length + perByte - 1) / perByte];
        for (int i = 0; i < codes.Length; i++)
        {
            packed[i / perByte] |= (byte)((codes[i] & mask) << (bits * (i % perByte)));
        }
        return packed;
    }

    /// <summary>Unpacks <paramref name="count"/> codes <paramref name="bits"/> wide from bytes (first element in the lowest bits).</summary>
    /// <param name="packed">Packed bytes.</param>
    /// <param name="count">Number of elements.</param>
    /// <param name="bits">4 or 2.</param>
    /// <param name="signed">Sign-extend the codes.</param>
    /// <param name="name">Tensor name for error messages.</param>
    public static sbyte[] Unpack(byte[] packed, long count, int bits, bool signed, string name = "tensor")
    {
        ArgumentNullException.ThrowIfNull(packed);
        int perByte = 8 / bits, mask = (1 << bits) - 1;
        if (packed.Length * (long)perByte < count)
        {
            throw new InvalidDataException($"Tensor '{name}' holds {packed.Length} bytes; {count} {bits}-bit values need {(count + perByte - 1) / perByte}.");
        }
        var codes = new sbyte[count];
        for (long i = 0; i < count; i++)
        {
            int value = (packed[i / perByte] >> (bits * (int)(i % perByte))) & mask;
            if (signed && value >= 1 << (bits - 1))
            {
                value -= 1 << bits;
            }
            codes[i] = (sbyte)value;
        }
        return codes;
    }

    internal static TensorProto Create(string name, int dataType, long[] dims, byte[] raw)
    {
        var proto = new TensorProto { Name = name, DataType = dataType, RawData = ByteString.CopyFrom(raw) };
        proto.Dims.AddRange(dims);
        return proto;
    }

    internal static T[] Cast<T>(byte[] raw, long count, TensorProto proto) where T : struct
    {
        int size = Marshal.SizeOf<T>();
        if (raw.Length != count * size)
        {
            throw new InvalidDataException(
                $"Tensor '{proto.Name}' has {raw.Length} bytes of raw data; its dimensions [{string.Join(", ", proto.Dims)}] need {count * size}.");
        }
        return MemoryMarshal.Cast<byte, T>(raw).ToArray();
    }

    internal static T[] Check<T>(T[] values, long count, TensorProto proto)
    {
        if (values.Length != count)
        {
            throw new InvalidDataException(
                $"Tensor '{proto.Name}' has {values.Length} values; its dimensions [{string.Join(", ", proto.Dims)}] need {count}.");
        }
        return values;
    }
}
