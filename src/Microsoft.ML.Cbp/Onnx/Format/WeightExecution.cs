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
    /// Gemm and MatMul layers whose constrained weight has 2-D codes become <c>MatMulNBits</c> nodes with fp32 activations
    /// (<c>accuracy_level</c> 1), the level codes stored as they are at 4 bits, so every weight decodes exactly to
    /// scale x level and results equal the decoded-float model's up to float summation order (about 1e-6 of the output).
    /// Layers whose codes need 8 bits, Conv layers and other weights stay decoded on the CPU (ONNX Runtime 1.31 has no fast
    /// fp32 kernel for 2- or 8-bit codes). Measured (docs/benchmarks/low-bit-execution.md): 0.2-0.3 of the float session's
    /// memory for fully connected networks; at batch 1 about 2x faster than float on a 4096-wide MLP but 0.86x on a
    /// 784-512-512 one; float speed at batch 256.
    /// </summary>
    MatMulNBits = 1,

    /// <summary>
    /// As <see cref="MatMulNBits"/>, but ONNX Runtime may quantize each layer's input to int8 per block
    /// (<c>accuracy_level</c> 4), binary and ternary codes are stored at 2 bits and codes that need 8 bits are kept too.
    /// Measured: 1.1x (small CNN) to 13x (4096-wide MLP) faster than float at batch 1, at an error near 1% of the output's
    /// scale. Opt-in. On the CUDA execution provider codes are stored at 4 bits at least.
    /// </summary>
    MatMulNBitsInt8Activations = 2,
}
