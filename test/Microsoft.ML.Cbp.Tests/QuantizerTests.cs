using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

[TestClass]
public sealed class QuantizerTests
{
    [TestMethod]
    [DataRow("Binary")]
    [DataRow("Ternary")]
    [DataRow("OneBitShift")]
    [DataRow("TwoBitShift")]
    public void TensorQuantizerMatchesTheScalarRuleIncludingTiesAndOutliers(string set)
    {
        var constraint = WeightConstraintTests.ByName(set);
        // Every level, every threshold (ties), points just around them, and points beyond the outer levels.
        var points = constraint.Levels.Concat(constraint.Thresholds)
            .SelectMany(v => new[] { v, v - 1e-3, v + 1e-3 })
            .Concat(new[] { -7.0, 7.0 }).ToArray();
        const float scale = 0.25f; // exact in binary, so w / s reproduces x exactly
        using var quantizer = new Quantizer(constraint);
        using var s = tensor(scale);
        using var w = tensor(points.Select(p => (float)(p * scale)).ToArray());
        using var q = quantizer.Quantize(w, s);
        var expected = points.Select(p => (float)(constraint.Quantize((float)(p * scale) / scale) * scale)).ToArray();
        CollectionAssert.AreEqual(expected, q.data<float>().ToArray());
    }

    [TestMethod]
    public void PerChannelScaleQuantizesEachRowWithItsOwnScale()
    {
        using var quantizer = new Quantizer(WeightConstraint.Ternary);
        using var w = tensor(new float[] { 0.3f, 0.1f, -2f, 4f, 1f, -3f }).reshape(2, 3);
        using var s = tensor(new float[] { 0.5f, 4f }).reshape(2, 1);
        using var q = quantizer.Quantize(w, s);
        // Row 0 (s=0.5): x = 0.6, 0.2, -4 -> 1, 0, -1. Row 1 (s=4): x = 1, 0.25, -0.75 -> 1, 0, -1.
        CollectionAssert.AreEqual(new float[] { 0.5f, 0f, -0.5f, 4f, 0f, -4f }, q.data<float>().ToArray());
    }

    [TestMethod]
    public void LayerScaleIsMeanAbsoluteValuePerLayerOrPerChannel()
    {
        using var w = tensor(new float[] { 1f, -3f, 0f, 2f, -2f, 2f }).reshape(2, 3);
        using var perLayer = LayerScale.MeanAbsolute(w, ScaleMode.PerLayer);
        using var perChannel = LayerScale.MeanAbsolute(w, ScaleMode.PerOutputChannel);
        Assert.AreEqual(10f / 6f, perLayer.ToSingle(), 1e-6f);
        CollectionAssert.AreEqual(new long[] { 2, 1 }, perChannel.shape);
        CollectionAssert.AreEqual(new float[] { 4f / 3f, 2f }, perChannel.data<float>().ToArray());
    }

    [TestMethod]
    public void MinimumErrorScaleFindsTheScaleThatRepresentsTheWeightsBest()
    {
        // Two-bit shift levels {0, 1/4, 1/2, 1} x s hold 1, 2 and 4 exactly with s = 4; mean |w| = 7/3 would cap 4 at 7/3.
        using var shift = tensor(new float[] { 1f, -2f, 4f, -4f, 2f, 1f });
        using var shiftScale = LayerScale.Compute(shift, WeightConstraint.TwoBitShift, ScaleMode.MinimumError);
        Assert.AreEqual(4f, shiftScale.ToSingle(), 1e-5f);

        // Binary: the least-squares scale of sign(w) is mean |w| (sum |w| / n), by hand 10/6.
        using var w = tensor(new float[] { 1f, -3f, 0.5f, 2f, -2f, 1.5f });
        using var binary = LayerScale.Compute(w, WeightConstraint.Binary, ScaleMode.MinimumError);
        Assert.AreEqual(10f / 6f, binary.ToSingle(), 1e-5f);

        // Ternary on {3, -3, 0.1, -0.1}: 0.1 rounds to 0 and 3 to s, so s = 3 leaves only 2 x 0.1^2 of error.
        using var t = tensor(new float[] { 3f, -3f, 0.1f, -0.1f });
        using var ternary = LayerScale.Compute(t, WeightConstraint.Ternary, ScaleMode.MinimumError);
        Assert.AreEqual(3f, ternary.ToSingle(), 1e-5f);

        // The other modes are unchanged by the dispatcher.
        using var mean = LayerScale.Compute(t, WeightConstraint.Ternary, ScaleMode.PerLayer);
        Assert.AreEqual(6.2f / 4f, mean.ToSingle(), 1e-6f);
    }
}
