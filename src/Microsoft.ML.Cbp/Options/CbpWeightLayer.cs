namespace Microsoft.ML.Cbp;

/// <summary>A weight layer of the network (a weight tensor of a Conv, Gemm or MatMul) and what training did with it.</summary>
/// <param name="Name">The ONNX initializer name (for a weight behind Transpose or Reshape, the initializer at the chain's start).</param>
/// <param name="Weights">Number of weights in the tensor.</param>
/// <param name="State">Constrained, or float and why.</param>
public sealed record CbpWeightLayer(string Name, long Weights, CbpWeightLayerState State);
