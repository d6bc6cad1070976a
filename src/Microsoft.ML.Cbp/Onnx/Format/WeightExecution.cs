namespace Microsoft.ML.Cbp;

/// <summary>
/// How ONNX Runtime runs the constrained weights of a compact model: decoded to float when a session starts, or kept as
/// integer codes in <c>MatMulNBits</c> nodes (com.microsoft) for fully connected layers. See docs/benchmarks/low-bit-execution.md
/// for memory and speed on this library's networks.
/// </summary>
public enum WeightExecution
{
    /// <summary>
    /// The codes are decoded to float weights when a session starts (ONNX Runtime folds the decode): the session holds float
    /// weights and scores at float speed; every layer type; a file any ONNX reader loads. The default.
    /// </summary>
    DecodedFloat = 0,

    /// <summary>
    /// Gemm and MatMul layers whose constrained weight has 2-D codes become <c>MatMulNBits</c> nodes (4 bits for binary,
    /// ternary and shift sets with codes that fit, else 8; the level codes are stored as they are, so every weight decodes
    /// exactly to scale x level) with fp32 activations (<c>accuracy_level</c> 1): results equal the decoded-float model's
    /// up to float summation order. Conv layers and other weights stay decoded. The session keeps those weights as codes
    /// (about 0.18 of their float memory); ONNX Runtime 1.31's CPU kernel is then a little slower than float (see the benchmark).
    /// </summary>
    MatMulNBits = 1,

    /// <summary>
    /// As <see cref="MatMulNBits"/>, but ONNX Runtime may quantize each layer's input to int8 per block
    /// (<c>accuracy_level</c> 4), and binary and ternary codes are stored at 2 bits: its CPU kernels run this form about 3x
    /// faster than float at batch 1, at an error near 1% of the output's scale (the benchmark reports both). Opt-in. On the
    /// CUDA execution provider codes are stored at 4 bits at least.
    /// </summary>
    MatMulNBitsInt8Activations = 2,
}
