using System;
using System.Linq;
using Cbp.Samples;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// The defining property of CBP: at the same budget, CBP puts the latent weights on the levels while keeping
/// the float model's accuracy; straight-through training, with the same forward pass and optimiser, does not.
/// </summary>
[TestClass]
public sealed class CbpConvergenceTests
{
    [TestMethod]
    public void CbpDrivesLatentWeightsOntoBinaryLevelsAndStraightThroughDoesNot()
    {
        // 300 engine epochs of 5 batches of 100 rows (375 passes over the 4000 rows is ~1500 steps; a few seconds).
        var rows = EngineDemo.Run(WeightConstraint.Binary, epochs: 300).ToDictionary(r => r.Method);
        var floatRow = rows["float"];
        var cbp = rows["CBP"];
        var straightThrough = rows["straight-through"];

        Assert.IsTrue(floatRow.Accuracy > 0.7, $"the float model must learn the task (accuracy {floatRow.Accuracy:P2})");
        Assert.IsTrue(cbp.NormalizedCfs < 0.01, $"CBP scale-normalised CFS {cbp.NormalizedCfs:F4} must be below 0.01");
        Assert.IsTrue(cbp.FractionOnLevel >= 0.99, $"CBP puts {cbp.FractionOnLevel:P2} of latent weights within 1% of a gap of their level; need 99%");
        Assert.IsTrue(cbp.Accuracy >= floatRow.Accuracy - 0.02, $"CBP accuracy {cbp.Accuracy:P2} must be within 2 points of float {floatRow.Accuracy:P2}");

        Assert.IsTrue(straightThrough.NormalizedCfs > 0.1, $"straight-through CFS/s {straightThrough.NormalizedCfs:F4} was expected to stay far from the levels");
        Assert.IsTrue(straightThrough.FractionOnLevel < 0.5, $"straight-through on-level fraction {straightThrough.FractionOnLevel:P2}");
    }
}
