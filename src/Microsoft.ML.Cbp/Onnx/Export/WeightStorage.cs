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

    /// <summary>
    /// 1-bit codes, eight per byte, for two-level sets (binary): ONNX has no 1-bit type, so the bits are a packed uint8
    /// constant that standard ops (Cast, Div, Mod, Reshape, Slice, Mul, Sub; opset 10) decode to -1/+1 before the scale.
    /// ONNX Runtime folds the decode into a float weight when the session starts; ML.NET's ApplyOnnxModel reads the file.
    /// </summary>
    OneBit = 4,
}
