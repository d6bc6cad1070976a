using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>ONNX <c>TensorProto</c> to TorchSharp tensors and back (the interpreter's side of <see cref="OnnxTensorConversion"/>).</summary>
internal static class TorchTensorConversion
{
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
        if (dims.Any(d => d < 0))
        {
            throw new InvalidDataException($"Tensor '{proto.Name}' has a negative dimension: [{string.Join(", ", dims)}].");
        }
        long count;
        try
        {
            count = dims.Aggregate(1L, (a, b) => checked(a * b));
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"Tensor '{proto.Name}' declares [{string.Join(", ", dims)}], more elements than any tensor can hold.");
        }
        if (proto.DataLocation == TensorProto.Types.DataLocation.External || proto.ExternalData.Count > 0)
        {
            throw new NotSupportedException($"Tensor '{proto.Name}' keeps its data in an external file; load models with embedded weights.");
        }
        byte[] raw = proto.RawData.ToByteArray();
        bool hasRaw = !proto.RawData.IsEmpty;
        switch (proto.DataType)
        {
            case OnnxTensorConversion.DataTypes.Float:
                return tensor(hasRaw ? OnnxTensorConversion.Cast<float>(raw, count, proto) : OnnxTensorConversion.Check(proto.FloatData.ToArray(), count, proto), dims);
            case OnnxTensorConversion.DataTypes.Double:
                return tensor(hasRaw ? OnnxTensorConversion.Cast<double>(raw, count, proto) : OnnxTensorConversion.Check(proto.DoubleData.ToArray(), count, proto), dims);
            case OnnxTensorConversion.DataTypes.Int64:
                return tensor(hasRaw ? OnnxTensorConversion.Cast<long>(raw, count, proto) : OnnxTensorConversion.Check(proto.Int64Data.ToArray(), count, proto), dims);
            case OnnxTensorConversion.DataTypes.Int32:
                return tensor(hasRaw ? OnnxTensorConversion.Cast<int>(raw, count, proto) : OnnxTensorConversion.Check(proto.Int32Data.ToArray(), count, proto), dims);
            case OnnxTensorConversion.DataTypes.Int8:
                return tensor(hasRaw ? OnnxTensorConversion.Cast<sbyte>(raw, count, proto) : OnnxTensorConversion.Check(proto.Int32Data.Select(v => (sbyte)v).ToArray(), count, proto), dims);
            case OnnxTensorConversion.DataTypes.UInt8:
                return tensor(hasRaw ? OnnxTensorConversion.Cast<byte>(raw, count, proto) : OnnxTensorConversion.Check(proto.Int32Data.Select(v => (byte)v).ToArray(), count, proto), dims);
            case OnnxTensorConversion.DataTypes.Bool:
                return tensor(hasRaw ? OnnxTensorConversion.Cast<byte>(raw, count, proto).Select(v => v != 0).ToArray() : OnnxTensorConversion.Check(proto.Int32Data.Select(v => v != 0).ToArray(), count, proto), dims);
            case OnnxTensorConversion.DataTypes.Int4 or OnnxTensorConversion.DataTypes.UInt4 or OnnxTensorConversion.DataTypes.Int2 or OnnxTensorConversion.DataTypes.UInt2:
            {
                int bits = proto.DataType is OnnxTensorConversion.DataTypes.Int4 or OnnxTensorConversion.DataTypes.UInt4 ? 4 : 2;
                bool signed = proto.DataType is OnnxTensorConversion.DataTypes.Int4 or OnnxTensorConversion.DataTypes.Int2;
                byte[] packed = hasRaw ? raw : proto.Int32Data.Select(v => (byte)v).ToArray();
                var codes = OnnxTensorConversion.Unpack(packed, count, bits, signed, proto.Name);
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
        return OnnxTensorConversion.Create(name, OnnxTensorConversion.DataTypes.Float, cpu.shape, MemoryMarshal.AsBytes(cpu.data<float>().ToArray().AsSpan()).ToArray());
    }
}
