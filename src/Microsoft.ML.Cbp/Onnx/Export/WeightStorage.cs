namespace Microsoft.ML.Cbp;

/// <summary>How constrained weights are stored in an exported ONNX model.</summary>
public enum WeightStorage
{
    /// <summary>Plain float32 initializers holding <c>scale * level</c> (any opset, any runtime).</summary>
    Float32 = 0,

    /// <summary>8-bit integer codes with <c>DequantizeLinear</c> (opset 13 and later for per-channel scales).</summary>
    Int8 = 1,

    /// <summary>4-bit integer codes, two per byte, with <c>DequantizeLinear</c> (opset 21, IR 10). Fits every paper level set.</summary>
    Int4 = 2,

    /// <summary>2-bit integer codes, four per byte (opset 25, IR 12): binary and ternary only; ONNX Runtime runs it on CPU only.</summary>
    Int2 = 3,
}
