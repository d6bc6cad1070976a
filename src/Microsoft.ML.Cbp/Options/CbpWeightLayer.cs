using System;
using System.Collections.Generic;

namespace Microsoft.ML.Cbp;

/// <summary>
/// A weight layer of the network (a weight tensor of a Conv, Gemm or MatMul) and what training did with it: one row of
/// the model summary (<see cref="CbpTrainingReport.ToString"/>).
/// </summary>
/// <param name="Name">The ONNX initializer name (for a weight behind Transpose or Reshape, the initializer at the chain's start).</param>
/// <param name="Weights">Number of weights in the tensor.</param>
/// <param name="State">Constrained, or float and why.</param>
public sealed record CbpWeightLayer(string Name, long Weights, CbpWeightLayerState State)
{
    /// <summary>The op that reads the weight: Conv, Gemm or MatMul.</summary>
    public string Op { get; init; } = "";

    /// <summary>The stored tensor's shape.</summary>
    public IReadOnlyList<long> Shape { get; init; } = Array.Empty<long>();

    /// <summary>The level set's name for a constrained layer (Binary, Ternary, ...); "float" otherwise.</summary>
    public string Precision { get; init; } = "float";

    /// <summary>Bits of code per weight in the compact file: 32 for float, else the storage's width (8, 4, 2 or 1).</summary>
    public int BitsPerWeight { get; init; } = 32;

    /// <summary>Bytes of the tensor in float32.</summary>
    public long FloatBytes => Weights * sizeof(float);

    /// <summary>
    /// Bytes the compact file (SaveOnnx's) spends on the tensor: its codes and scale, and the small constants of its decode;
    /// for a float layer, its float bytes.
    /// </summary>
    public long CompactBytes { get; init; }

    /// <summary>Constrained layers: the scale-normalised constraint function (CFS / s) at the end of CBP, before the final projection; else null.</summary>
    public double? NormalizedCfs { get; init; }

    /// <summary>Constrained layers: the fraction of latent weights on their level at the end of CBP; else null.</summary>
    public double? FractionOnLevel { get; init; }

    /// <summary>Constrained layers: the layer's scale (the mean over output channels when there is one per channel); else null.</summary>
    public double? Scale { get; init; }
}
