using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>ConstantOfShape and Range: tensors made from shapes and scalars (the shape arithmetic of exported graphs).</summary>
internal static class GeneratorOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["ConstantOfShape"] = c =>
        {
            long[] shape = c.IntsFromInputOrAttribute(0, "shape") ?? throw c.Error("shape is required.");
            if (shape.Any(d => d < 0))
            {
                throw c.Error($"shape [{string.Join(", ", shape)}] has a negative dimension.");
            }
            // The default value is a float 0; otherwise a one-element tensor whose type the output takes.
            using var value = OnnxAttributes.Find(c.Node, "value") is { } v ? TorchTensorConversion.ToTorch(v.T) : tensor(0f);
            if (value.numel() != 1)
            {
                throw c.Error($"value has {value.numel()} elements; ConstantOfShape needs one.");
            }
            return new[] { value.reshape(1).expand(shape.Length == 0 ? new long[] { 1 } : shape).reshape(shape).contiguous().to(c.Input(0).device) };
        };
        ops["Range"] = c =>
        {
            var start = c.Input(0);
            if (start.is_floating_point())
            {
                double from = start.to(float64).item<double>(), limit = c.Input(1).to(float64).item<double>(), delta = c.Input(2).to(float64).item<double>();
                return new[] { Steps(c, from, limit, delta).to(start.dtype) };
            }
            long a = start.to(int64).item<long>(), b = c.Input(1).to(int64).item<long>(), d = c.Input(2).to(int64).item<long>();
            return new[] { Steps(c, a, b, d).to(start.dtype) };
        };
    }

    /// <summary>ONNX's count: max(ceil((limit - start) / delta), 0) values start + i delta.</summary>
    private static Tensor Steps(OnnxOpContext c, double start, double limit, double delta)
    {
        if (delta == 0)
        {
            throw c.Error("delta is 0; Range needs a non-zero step.");
        }
        long count = (long)System.Math.Max(System.Math.Ceiling((limit - start) / delta), 0);
        return arange(count, float64, device: c.Input(0).device).MulScalar_(delta).AddScalar_(start);
    }
}
