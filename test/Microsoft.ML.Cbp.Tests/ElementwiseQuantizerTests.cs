using System;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// The quantizer's element-wise kernels (closed form for evenly spaced grids, one step per threshold otherwise)
/// against a scalar reference written straight from docs/CBP.md: nearest level by search, window by the triangle rule.
/// </summary>
[TestClass]
public sealed class ElementwiseQuantizerTests
{
    public static System.Collections.Generic.IEnumerable<object[]> Sets() => new[]
    {
        new object[] { WeightConstraint.Binary },
        new object[] { WeightConstraint.Ternary },
        new object[] { WeightConstraint.OneBitShift },
        new object[] { WeightConstraint.TwoBitShift },
        new object[] { WeightConstraint.Uniform(4) },
        new object[] { WeightConstraint.PowerOfTwo(5) },
        new object[] { WeightConstraint.Custom(-0.9, -0.2, 0.1, 0.35, 1.7) },
    };

    [TestMethod]
    [DynamicData(nameof(Sets))]
    public void LevelsAndWindowsMatchTheScalarRuleOnRandomValues(WeightConstraint constraint)
    {
        var random = new Random(11);
        var levels = constraint.Levels.ToArray();
        double span = levels[^1] - levels[0];
        // Values across and beyond the grid, away from the decision boundaries by more than float rounding.
        var xs = Enumerable.Range(0, 4000).Select(_ => (float)(levels[0] - 0.3 * span + random.NextDouble() * 1.6 * span)).ToArray();
        using var quantizer = new Quantizer(constraint);
        using var x = tensor(xs);
        using var level = quantizer.NormalizedLevel(x);
        var got = level.data<float>().ToArray();
        foreach (double u in new[] { 0.0, 0.5, 0.9, 0.99, 1.0 })
        {
            using var inside = quantizer.WindowIndicator(x, u);
            var window = inside.data<float>().ToArray();
            for (int i = 0; i < xs.Length; i++)
            {
                var (nearest, windowed, margin) = Reference(levels, xs[i], u);
                if (margin < 1e-5)
                {
                    continue;
                }
                Assert.AreEqual((float)nearest, got[i], $"Q({xs[i]}) for {constraint}");
                Assert.AreEqual(windowed ? 1f : 0f, window[i], $"window at x = {xs[i]}, u = {u} for {constraint}");
            }
        }
    }

    /// <summary>Nearest level, whether x is in the window, and how far x is from any decision boundary.</summary>
    private static (double Nearest, bool Windowed, double Margin) Reference(double[] levels, double x, double u)
    {
        double nearest = levels.OrderBy(q => Math.Abs(q - x)).ThenByDescending(q => q).First();
        double margin = double.MaxValue;
        bool windowed = false;
        for (int k = 0; k + 1 < levels.Length; k++)
        {
            double d = levels[k + 1] - levels[k];
            double mid = 0.5 * (levels[k] + levels[k + 1]);
            margin = Math.Min(margin, Math.Abs(x - mid));
            if (x > levels[k] && x < levels[k + 1])
            {
                double c = 2 * Math.Min(x - levels[k], levels[k + 1] - x);
                windowed = c > d * u;
                margin = Math.Min(margin, Math.Abs(c - d * u));
            }
        }
        return (nearest, windowed, margin);
    }
}
