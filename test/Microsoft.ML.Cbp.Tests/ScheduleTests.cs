using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

[TestClass]
public sealed class ScheduleTests
{
    [TestMethod]
    public void CounterRunsOneToTenThenByTensAndTheLearningRateDropsOnceAtTwenty()
    {
        var schedule = new PseudoLagrangeSchedule(period: 1);
        schedule.Start();
        var gs = new List<int> { schedule.G };
        var factors = new List<double> { schedule.LearningRateFactor };
        for (int epoch = 0; epoch < 12; epoch++)
        {
            Assert.IsTrue(schedule.EndEpoch(100 - epoch), "period 1 updates every epoch");
            gs.Add(schedule.G);
            factors.Add(schedule.LearningRateFactor);
        }
        CollectionAssert.AreEqual(new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40 }, gs);
        CollectionAssert.AreEqual(Enumerable.Repeat(1.0, 10).Concat(Enumerable.Repeat(0.1, 3)).ToArray(), factors);
        Assert.AreEqual(13, schedule.Updates);
        Assert.AreEqual(1 - 1.0 / 40, schedule.U, 1e-12);
    }

    [TestMethod]
    public void UpdateFiresExactlyWhenTheSummedLagrangianDoesNotDecrease()
    {
        var schedule = new PseudoLagrangeSchedule(period: 100);
        schedule.Start();
        Assert.IsFalse(schedule.EndEpoch(10.0), "first epoch has nothing to compare with");
        Assert.IsFalse(schedule.EndEpoch(9.0), "decreased");
        Assert.IsFalse(schedule.EndEpoch(8.5), "decreased");
        Assert.IsTrue(schedule.EndEpoch(8.5), "equal is a plateau");
        Assert.AreEqual(2, schedule.G);
        // The detector was reset: the next epoch is not compared with the one before the update.
        Assert.IsFalse(schedule.EndEpoch(50.0));
        Assert.IsFalse(schedule.EndEpoch(49.0));
        Assert.IsTrue(schedule.EndEpoch(49.5), "increased");
        Assert.AreEqual(3, schedule.G);
    }

    [TestMethod]
    public void UpdateFiresAfterPeriodEpochsEvenWithoutAPlateau()
    {
        var schedule = new PseudoLagrangeSchedule(period: 3);
        schedule.Start();
        var fired = Enumerable.Range(0, 9).Select(e => schedule.EndEpoch(1000.0 - e)).ToArray();
        CollectionAssert.AreEqual(new[] { false, false, true, false, false, true, false, false, true }, fired);
    }

    [TestMethod]
    public void ScheduleRejectsMisuseAndBadSettings()
    {
        Assert.ThrowsExactly<InvalidOperationException>(() => new PseudoLagrangeSchedule().EndEpoch(1));
        var started = new PseudoLagrangeSchedule();
        started.Start();
        Assert.ThrowsExactly<InvalidOperationException>(() => started.Start());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new PseudoLagrangeSchedule(period: 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new PseudoLagrangeSchedule(learningRateDropFactor: 0));
    }

    [TestMethod]
    public void MultiplierAscentIsAdamOnTheConstraintValue()
    {
        const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        using var weight = zeros(3);
        using var update = new MultiplierUpdate(weight, lr, b1, b2, eps);
        double[][] values = { new[] { 0.0, 0.5, 2.0 }, new[] { 1.0, 1.0, 0.0 }, new[] { 0.2, 0.0, 3.0 } };
        double[] m = new double[3], v = new double[3], lambda = new double[3];
        for (int t = 1; t <= values.Length; t++)
        {
            using var c = tensor(values[t - 1].Select(x => (float)x).ToArray());
            update.Ascend(c);
            for (int i = 0; i < 3; i++)
            {
                // Adam, written out: ascent on sum lambda c, whose gradient is c.
                m[i] = b1 * m[i] + (1 - b1) * values[t - 1][i];
                v[i] = b2 * v[i] + (1 - b2) * values[t - 1][i] * values[t - 1][i];
                double mHat = m[i] / (1 - Math.Pow(b1, t)), vHat = v[i] / (1 - Math.Pow(b2, t));
                lambda[i] = Math.Max(0, lambda[i] + lr * mHat / (Math.Sqrt(vHat) + eps));
            }
        }
        var actual = update.Multipliers.data<float>().ToArray();
        for (int i = 0; i < 3; i++)
        {
            Assert.AreEqual(lambda[i], actual[i], 1e-5, $"lambda[{i}]");
        }
    }

    [TestMethod]
    public void AnnealFactorIsOneUntilTheFinalFractionThenFallsTowardZero()
    {
        Assert.AreEqual(1.0, CbpTrainer.AnnealFactor(75, 100, 0.25));
        Assert.AreEqual(0.5 * (1 + Math.Cos(Math.PI * 1 / 26)), CbpTrainer.AnnealFactor(76, 100, 0.25), 1e-12);
        Assert.AreEqual(0.5 * (1 + Math.Cos(Math.PI * 25 / 26)), CbpTrainer.AnnealFactor(100, 100, 0.25), 1e-12);
        Assert.AreEqual(1.0, CbpTrainer.AnnealFactor(100, 100, 0.0));
    }
}
