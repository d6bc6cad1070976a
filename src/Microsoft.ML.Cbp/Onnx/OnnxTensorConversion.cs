using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>ONNX <c>TensorProto</c> to TorchSharp tensors and back, including packed 4-bit and 2-bit integers.</summary>
public static class OnnxTensorConversion
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

    /// <summary>
    /// Converts an ONNX tensor to a TorchSharp tensor on the CPU. Float types stay float32/float64; 4-bit and 2-bit
    /// integers are unpacked to int8 (signed) or uint8 (unsigned); other integers keep their width; bool stays bool.
    /// </summary>
    /// <param name="proto">The tensor.</param>
    /// <exception cref="NotSupportedException">The data type or the storage (external data) is not supported.</exception>
    /// <exception cref="InvalidDataException">The data does not match the dimensions.</exception>
    public static Tensor ToTorch(TensorProto proto)
    {
        ArgumentNullException.ThrowIfNull(proto);
        long[] dims = proto.Dims.ToArray();
        long count = dims.Aggregate(1L, (a, b) => a * b);
        if (proto.DataLocation == TensorProto.Types.DataLocation.External || proto.ExternalData.Count > 0)
        {
            throw new NotSupportedException($"Tensor '{proto.Name}' keeps its data in an external file; load models with embedded weights.");
        }
        byte[] raw = proto.RawData.ToByteArray();
        bool hasRaw = !proto.RawData.IsEmpty;
        switch (proto.DataType)
        {
            case DataTypes.Float:
                return tensor(hasRaw ? Cast<float>(raw, count, proto) : Check(proto.FloatData.ToArray(), count, proto), dims);
            case DataTypes.Double:
                return tensor(hasRaw ? Cast<double>(raw, count, proto) : Check(proto.DoubleData.ToArray(), count, proto), dims);
            case DataTypes.Int64:
                return tensor(hasRaw ? Cast<long>(raw, count, proto) : Check(proto.Int64Data.ToArray(), count, proto), dims);
            case DataTypes.Int32:
                return tensor(hasRaw ? Cast<int>(raw, count, proto) : Check(proto.Int32Data.ToArray(), count, proto), dims);
            case DataTypes.Int8:
                return tensor(hasRaw ? Cast<sbyte>(raw, count, proto) : Check(proto.Int32Data.Select(v => (sbyte)v).ToArray(), count, proto), dims);
            case DataTypes.UInt8:
                return tensor(hasRaw ? Cast<byte>(raw, count, proto) : Check(proto.Int32Data.Select(v => (byte)v).ToArray(), count, proto), dims);
            case DataTypes.Bool:
                return tensor(hasRaw ? Cast<byte>(raw, count, proto).Select(v => v != 0).ToArray() : Check(proto.Int32Data.Select(v => v != 0).ToArray(), count, proto), dims);
            case DataTypes.Int4 or DataTypes.UInt4 or DataTypes.Int2 or DataTypes.UInt2:
            {
                int bits = proto.DataType is DataTypes.Int4 or DataTypes.UInt4 ? 4 : 2;
                bool signed = proto.DataType is DataTypes.Int4 or DataTypes.Int2;
                byte[] packed = hasRaw ? raw : proto.Int32Data.Select(v => (byte)v).ToArray();
                var codes = Unpack(packed, count, bits, signed, proto.Name);
                return signed ? tensor(codes, dims) : tensor(codes.Select(v => (byte)v).ToArray(), dims);
            }
            default:
                throw new NotSupportedException(
                    $"Tensor '{proto.Name}' has ONNX data type {proto.DataType}; supported: float, double, int64, int32, int8, uint8, bool, int4, uint4, int2, uint2.");
        }
    }

    /// <summary>A float32 ONNX tensor (raw little-endian data) from a TorchSharp tensor.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="value">Values (converted to float32 on the CPU).</param>
    public static TensorProto FromFloat(string name, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        using var cpu = value.detach().to(float32).cpu().contiguous();
        return Create(name, DataTypes.Float, cpu.shape, MemoryMarshal.AsBytes(cpu.data<float>().ToArray().AsSpan()).ToArray());
    }

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

    private static TensorProto Create(string name, int dataType, long[] dims, byte[] raw)
    {
        var proto = new TensorProto { Name = name, DataType = dataType, RawData = ByteString.CopyFrom(raw) };
        proto.Dims.AddRange(dims);
        return proto;
    }

    private static T[] Cast<T>(byte[] raw, long count, TensorProto proto) where T : struct
    {
        int size = Marshal.SizeOf<T>();
        if (raw.Length != count * size)
        {
            throw new InvalidDataException(
                $"Tensor '{proto.Name}' has {raw.Length} bytes of raw data; its dimensions [{string.Join(", ", proto.Dims)}] need {count * size}.");
        }
        return MemoryMarshal.Cast<byte, T>(raw).ToArray();
    }

    private static T[] Check<T>(T[] values, long count, TensorProto proto)
    {
        if (values.Length != count)
        {
            throw new InvalidDataException(
                $"Tensor '{proto.Name}' has {values.Length} values; its dimensions [{string.Join(", ", proto.Dims)}] need {count}.");
        }
        return values;
    }
}
