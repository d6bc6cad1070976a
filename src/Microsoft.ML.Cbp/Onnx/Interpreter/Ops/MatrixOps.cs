using System.Collections.Generic;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>Gemm (alpha, beta, transA, transB) and MatMul.</summary>
internal static class MatrixOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["Gemm"] = c =>
        {
            var a = c.Input(0);
            var b = c.Input(1);
            if (a.dim() != 2 || b.dim() != 2)
            {
                throw c.Error($"Gemm needs 2-D A and B; got [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}] (insert a Flatten).");
            }
            if (c.Int("transA", 0) != 0)
            {
                a = a.t();
            }
            if (c.Int("transB", 0) != 0)
            {
                b = b.t();
            }
            if (a.shape[1] != b.shape[0])
            {
                throw c.Error($"A' is [{string.Join(", ", a.shape)}] and B' is [{string.Join(", ", b.shape)}]: inner dimensions differ.");
            }
            float alpha = c.Float("alpha", 1f), beta = c.Float("beta", 1f);
            var y = a.matmul(b);
            if (alpha != 1f)
            {
                y = y.MulScalar(alpha);
            }
            if (c.OptionalInput(2) is { } bias)
            {
                y = beta == 1f ? y.Plus(bias) : y.AddScaled(bias, beta);
            }
            return new[] { y };
        };
        ops["MatMul"] = c => new[] { c.Input(0).matmul(c.Input(1)) };
    }
}
