using System;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

[TestClass]
public sealed class ConstraintFunctionTests
{
    // Each row: level set, window u, normalised x, expected c(x) in normalised units, expected dc/dx.
    // Values worked out by hand from docs/CBP.md section 3: c = 2 min(x - q_k, q_k+1 - x) inside an interval of gap d,
    // zero where c > d u; 2 (q_0 - x) below and 2 (x - q_K) above the outer levels, never windowed.
    [TestMethod]
    // Binary {-1, 1}: one interval, gap 2. At u = 0.5 the window is c > 1, i.e. |x| < 0.5.
    [DataRow("Binary", 0.5, 0.5, 1.0, -2.0)]   // window edge: c = d u exactly, still active; nearer +1
    [DataRow("Binary", 0.5, 0.4, 0.0, 0.0)]    // inside the window
    [DataRow("Binary", 0.5, -0.6, 0.8, 2.0)]   // nearer -1, pulled down toward it: dc/dx = +2
    [DataRow("Binary", 0.5, 1.0, 0.0, 0.0)]    // on a level
    [DataRow("Binary", 0.5, 1.25, 0.5, 2.0)]   // above the highest level
    [DataRow("Binary", 0.0, -3.0, 4.0, -2.0)]  // below the lowest level, even at u = 0
    [DataRow("Binary", 0.0, 0.9, 0.0, 0.0)]    // u = 0 (g = 1): the whole inside is unconstrained
    [DataRow("Binary", 1.0, 0.0, 2.0, -2.0)]   // u = 1: no window; the midpoint is a tie that belongs to the upper level
    // Ternary {-1, 0, 1}: gaps 1. At u = 0.5 the window is c > 0.5.
    [DataRow("Ternary", 0.5, 0.2, 0.4, 2.0)]
    [DataRow("Ternary", 0.5, 0.25, 0.5, 2.0)]  // window edge
    [DataRow("Ternary", 0.5, 0.3, 0.0, 0.0)]
    [DataRow("Ternary", 0.5, 0.75, 0.5, -2.0)] // window edge on the other side
    [DataRow("Ternary", 0.5, 0.7, 0.0, 0.0)]
    [DataRow("Ternary", 0.5, -1.5, 1.0, -2.0)]
    [DataRow("Ternary", 0.5, 1.3, 0.6, 2.0)]
    // One-bit shift {-1, -1/2, 0, 1/2, 1}: gaps 0.5. At u = 0.9 the window is c > 0.45.
    [DataRow("OneBitShift", 0.9, 0.3, 0.4, -2.0)]
    [DataRow("OneBitShift", 0.9, 0.24, 0.0, 0.0)]  // c = 0.48 > 0.45
    [DataRow("OneBitShift", 0.9, 0.2, 0.4, 2.0)]
    [DataRow("OneBitShift", 0.9, -0.8, 0.4, 2.0)]  // between -1 and -1/2, 0.2 from -1: moving up moves away from it
    // Two-bit shift {-1, -1/2, -1/4, 0, 1/4, 1/2, 1}: gaps 1/4 near zero, 1/2 between 1/2 and 1. At u = 0.5:
    [DataRow("TwoBitShift", 0.5, 0.6, 0.2, 2.0)]   // interval (1/2, 1), gap 1/2: window c > 1/4; c = 0.2 active
    [DataRow("TwoBitShift", 0.5, 0.7, 0.0, 0.0)]   // c = 0.6 > 1/4
    [DataRow("TwoBitShift", 0.5, 0.05, 0.1, 2.0)]  // interval (0, 1/4), gap 1/4: window c > 1/8
    [DataRow("TwoBitShift", 0.5, 0.1, 0.0, 0.0)]   // c = 0.2 > 1/8
    [DataRow("TwoBitShift", 0.5, -0.45, 0.1, 2.0)]   // 0.05 above -1/2 (gap 1/4 below -1/4): c = 0.1 <= 1/8, pulled down
    [DataRow("TwoBitShift", 0.5, 1.5, 1.0, 2.0)]
    public void ValueAndGradientMatchHandComputedPoints(string set, double u, double x, double expectedC, double expectedGradient)
    {
        var constraint = WeightConstraintTests.ByName(set);
        const double scale = 0.5;
        using var quantizer = new Quantizer(constraint);
        using var s = tensor((float)scale);
        using var w = tensor(new[] { (float)(x * scale) });
        using var c = ConstraintFunction.Value(quantizer, w, s, u);
        using var grad = ConstraintFunction.Gradient(quantizer, w, s, u);
        // c is in weight units: c(w) = s * c(x). The gradient dc/dw equals dc/dx.
        Assert.AreEqual(expectedC * scale, c.ToSingle(), 1e-6, $"c at x = {x}");
        Assert.AreEqual(expectedGradient, grad.ToSingle(), 0.0, $"dc/dw at x = {x}");
    }

    [TestMethod]
    public void GradientIsTheDerivativeOfTheValueWhereTheFunctionIsSmooth()
    {
        // An independent check by finite differences over a sweep of points at u = 0.7.
        using var quantizer = new Quantizer(WeightConstraint.TwoBitShift);
        using var s = tensor(1.0f, dtype: float64);
        var xs = Enumerable.Range(-130, 261).Select(i => i / 100.0 + 0.003).ToArray();
        const double h = 1e-6;
        using var w = tensor(xs, dtype: float64);
        using var plus = ConstraintFunction.Value(quantizer, w + h, s, 0.7);
        using var minus = ConstraintFunction.Value(quantizer, w - h, s, 0.7);
        using var grad = ConstraintFunction.Gradient(quantizer, w, s, 0.7);
        using var numeric = (plus - minus) / (2 * h);
        var n = numeric.data<double>().ToArray();
        var g = grad.data<double>().ToArray();
        int compared = 0;
        for (int i = 0; i < xs.Length; i++)
        {
            // Skip points where a kink (level, midpoint or window edge) lies within h.
            if (Math.Abs(n[i]) != 0 && Math.Abs(Math.Abs(n[i]) - 2) > 1e-3)
            {
                continue;
            }
            Assert.AreEqual(n[i], g[i], 1e-3, $"x = {xs[i]}");
            compared++;
        }
        Assert.IsTrue(compared > 200, $"only {compared} points compared");
    }

    [TestMethod]
    public void WindowFollowsTheCounter()
    {
        Assert.AreEqual(0.0, ConstraintFunction.WindowFromCounter(1));
        Assert.AreEqual(0.5, ConstraintFunction.WindowFromCounter(2));
        Assert.AreEqual(0.95, ConstraintFunction.WindowFromCounter(20), 1e-12);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ConstraintFunction.WindowFromCounter(0));
    }
}
