using System;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

[TestClass]
public sealed class WeightConstraintTests
{
    [TestMethod]
    public void PaperLevelSetsHaveThePublishedLevels()
    {
        CollectionAssert.AreEqual(new[] { -1.0, 1.0 }, WeightConstraint.Binary.Levels.ToArray());
        CollectionAssert.AreEqual(new[] { -1.0, 0.0, 1.0 }, WeightConstraint.Ternary.Levels.ToArray());
        CollectionAssert.AreEqual(new[] { -1.0, -0.5, 0.0, 0.5, 1.0 }, WeightConstraint.OneBitShift.Levels.ToArray());
        CollectionAssert.AreEqual(new[] { -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0 }, WeightConstraint.TwoBitShift.Levels.ToArray());
    }

    [TestMethod]
    public void ExtendedSetsAgreeWithThePaperSetsTheyGeneralise()
    {
        Assert.AreEqual(WeightConstraint.Ternary, WeightConstraint.Uniform(2));
        Assert.AreEqual(WeightConstraint.OneBitShift, WeightConstraint.PowerOfTwo(2));
        Assert.AreEqual(WeightConstraint.TwoBitShift, WeightConstraint.PowerOfTwo(3));
        // Uniform(3): m = 3, levels k/3 for k = -3..3.
        CollectionAssert.AreEqual(new[] { -1.0, -2.0 / 3, -1.0 / 3, 0, 1.0 / 3, 2.0 / 3, 1.0 }, WeightConstraint.Uniform(3).Levels.ToArray());
        Assert.AreEqual(WeightConstraint.Binary, WeightConstraint.Custom(-1, 1));
    }

    [TestMethod]
    public void ThresholdsAreMidpoints()
    {
        CollectionAssert.AreEqual(new[] { -0.75, -0.375, -0.125, 0.125, 0.375, 0.75 }, WeightConstraint.TwoBitShift.Thresholds.ToArray());
    }

    [TestMethod]
    [DataRow(new[] { 1.0 }, "at least two levels")]
    [DataRow(new[] { 1.0, 0.0 }, "sorted ascending")]
    [DataRow(new[] { 0.0, 0.0 }, "distinct")]
    [DataRow(new[] { 0.0, double.NaN }, "finite")]
    [DataRow(new[] { double.NegativeInfinity, 0.0 }, "finite")]
    public void CustomRejectsInvalidLevelsWithAClearMessage(double[] levels, string expected)
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => WeightConstraint.Custom(levels));
        StringAssert.Contains(e.Message, expected);
        Assert.AreEqual("levels", e.ParamName);
    }

    [TestMethod]
    public void FactoriesRejectOutOfRangeSizes()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => WeightConstraint.Uniform(1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => WeightConstraint.Uniform(9));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => WeightConstraint.PowerOfTwo(0));
        Assert.ThrowsExactly<ArgumentNullException>(() => WeightConstraint.Custom(null!));
    }

    [TestMethod]
    // Binary: threshold 0, a tie goes up.
    [DataRow("Binary", 0.0, 1.0)]
    [DataRow("Binary", -1e-9, -1.0)]
    [DataRow("Binary", 5.0, 1.0)]
    // Ternary: thresholds +-0.5.
    [DataRow("Ternary", 0.5, 1.0)]
    [DataRow("Ternary", -0.5, 0.0)]
    [DataRow("Ternary", 0.49, 0.0)]
    [DataRow("Ternary", -0.51, -1.0)]
    // Two-bit shift: thresholds -0.75, -0.375, -0.125, 0.125, 0.375, 0.75.
    [DataRow("TwoBitShift", 0.125, 0.25)]
    [DataRow("TwoBitShift", -0.125, 0.0)]
    [DataRow("TwoBitShift", 0.375, 0.5)]
    [DataRow("TwoBitShift", 0.74, 0.5)]
    [DataRow("TwoBitShift", 0.75, 1.0)]
    [DataRow("TwoBitShift", -3.0, -1.0)]
    public void ScalarQuantizerUsesMidpointsAndRoundsTiesUp(string set, double x, double expected)
    {
        Assert.AreEqual(expected, ByName(set).Quantize(x));
    }

    internal static WeightConstraint ByName(string name) => name switch
    {
        "Binary" => WeightConstraint.Binary,
        "Ternary" => WeightConstraint.Ternary,
        "OneBitShift" => WeightConstraint.OneBitShift,
        "TwoBitShift" => WeightConstraint.TwoBitShift,
        _ => throw new ArgumentException(name),
    };
}
