using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>Element-wise math and selection: Pow, Sqrt, Erf, Exp, Log, Neg, Abs, Reciprocal, Mod, Equal, Less, Greater, Not, Where.</summary>
internal static class MathOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        // ONNX Pow keeps the base's type; torch would promote an integer base with a float exponent.
        ops["Pow"] = c => new[] { c.Input(0).pow(c.Input(1)).to(c.Input(0).dtype) };
        ops["Sqrt"] = c => new[] { c.Input(0).sqrt() };
        ops["Erf"] = c => new[] { c.Input(0).erf() };
        ops["Exp"] = c => new[] { c.Input(0).exp() };
        ops["Log"] = c => new[] { c.Input(0).log() };
        ops["Neg"] = c => new[] { c.Input(0).neg() };
        ops["Abs"] = c => new[] { c.Input(0).abs() };
        ops["Reciprocal"] = c => new[] { c.Input(0).reciprocal() };
        // Mod: fmod 0 takes the divisor's sign (integers, Python's %), fmod 1 the dividend's (C's fmod).
        ops["Mod"] = c => new[] { c.Int("fmod", 0) != 0 ? c.Input(0).fmod(c.Input(1)) : c.Input(0).remainder(c.Input(1)) };
        ops["Equal"] = c => new[] { c.Input(0).eq(c.Input(1)) };
        ops["Less"] = c => new[] { c.Input(0).lt(c.Input(1)) };
        ops["Greater"] = c => new[] { c.Input(0).gt(c.Input(1)) };
        ops["Not"] = c => new[] { c.Input(0).to(@bool).logical_not() };
        ops["Where"] = c =>
        {
            var x = c.Input(1);
            var y = c.Input(2);
            if (x.dtype != y.dtype)
            {
                throw c.Error($"X is {x.dtype} and Y is {y.dtype}; Where needs both of one type.");
            }
            return new[] { where(c.Input(0).to(@bool), x, y) };
        };
    }
}
