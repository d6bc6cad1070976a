using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Onnx.Ops;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>The ONNX operators (default domain) that the TorchSharp graph interpreter executes.</summary>
internal static class OnnxOpRegistry
{
    private static readonly Dictionary<string, OnnxOpImplementation> Ops = Build();

    /// <summary>The supported op types, sorted.</summary>
    public static IReadOnlyList<string> Supported { get; } = Ops.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();

    /// <summary>The implementation of <paramref name="opType"/>, or <see langword="null"/> when unsupported.</summary>
    /// <param name="opType">ONNX op type (default domain).</param>
    public static OnnxOpImplementation? Find(string opType) => Ops.TryGetValue(opType, out var op) ? op : null;

    private static Dictionary<string, OnnxOpImplementation> Build()
    {
        var ops = new Dictionary<string, OnnxOpImplementation>(StringComparer.Ordinal);
        ElementwiseOps.Register(ops);
        ConvolutionOps.Register(ops);
        MatrixOps.Register(ops);
        NormalizationOps.Register(ops);
        PoolingOps.Register(ops);
        ShapeOps.Register(ops);
        ReductionOps.Register(ops);
        QuantizationOps.Register(ops);
        MathOps.Register(ops);
        SliceOps.Register(ops);
        GeneratorOps.Register(ops);
        return ops;
    }
}
