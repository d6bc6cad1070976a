using System;
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
        ops["MatMul"] = c =>
        {
            var a = c.Input(0);
            var b = c.Input(1);
            CheckMatMulShapes(c, a, b);
            return new[] { a.matmul(b) };
        };
    }

    /// <summary>
    /// numpy's matmul rules, checked before libtorch sees the shapes: TorchSharp 0.107 lets a shape error of matmul escape
    /// as a native abort of the process instead of an exception.
    /// </summary>
    private static void CheckMatMulShapes(OnnxOpContext c, Tensor a, Tensor b)
    {
        if (a.dim() == 0 || b.dim() == 0)
        {
            throw c.Error($"MatMul needs inputs of at least one dimension; got [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}].");
        }
        long inner = b.dim() == 1 ? b.shape[0] : b.shape[^2];
        if (a.shape[^1] != inner)
        {
            throw c.Error($"A is [{string.Join(", ", a.shape)}] and B is [{string.Join(", ", b.shape)}]: inner dimensions differ ({a.shape[^1]} and {inner}).");
        }
        var batchA = a.dim() > 2 ? a.shape[..^2] : Array.Empty<long>();
        var batchB = b.dim() > 2 ? b.shape[..^2] : Array.Empty<long>();
        for (int i = 1; i <= Math.Min(batchA.Length, batchB.Length); i++)
        {
            long x = batchA[^i], y = batchB[^i];
            if (x != y && x != 1 && y != 1)
            {
                throw c.Error($"A is [{string.Join(", ", a.shape)}] and B is [{string.Join(", ", b.shape)}]: batch dimensions do not broadcast.");
            }
        }
    }
}
