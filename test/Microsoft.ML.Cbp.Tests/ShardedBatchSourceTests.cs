using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Each rank's share of the combined batches (no MPI needed): every row in at most one share, equal steps per rank.</summary>
[TestClass]
public sealed class ShardedBatchSourceTests
{
    /// <summary>The row indices (held as the features) of every batch of a rank's pass.</summary>
    private static List<long[]> Shares(int rank, int ranks, int rows, int combinedBatch)
    {
        using var scope = NewDisposeScope();
        var features = arange(rows, dtype: ScalarType.Float32).reshape(rows, 1);
        var labels = arange(rows, dtype: ScalarType.Int64);
        using var combined = new InMemoryBatchSource(features, labels, combinedBatch, shuffle: false);
        return new ShardedBatchSource(combined, rank, ranks).Pass(0).Select(b => b.Labels.data<long>().ToArray()).ToList();
    }

    [TestMethod]
    public void TwoRanksSplitEachCombinedBatchInHalvesInOrder()
    {
        // 10 rows in batches of 4: [0..3], [4..7], [8, 9]; rank 0 takes the first half of each, rank 1 the second.
        var first = Shares(0, 2, 10, 4);
        var second = Shares(1, 2, 10, 4);
        CollectionAssert.AreEqual(new long[] { 0, 1, 4, 5, 8 }, first.SelectMany(b => b).ToArray());
        CollectionAssert.AreEqual(new long[] { 2, 3, 6, 7, 9 }, second.SelectMany(b => b).ToArray());
        Assert.AreEqual(first.Count, second.Count, "the same number of steps on every rank");
    }

    [TestMethod]
    public void UnevenBatchesAreTrimmedAndBatchesSmallerThanTheRanksSkipped()
    {
        // 10 rows in batches of 4 over 3 ranks: shares of 1 row, row 3 and 7 dropped, the last batch (2 rows) skipped by all.
        var shares = Enumerable.Range(0, 3).Select(r => Shares(r, 3, 10, 4)).ToList();
        Assert.IsTrue(shares.All(s => s.Count == 2 && s.All(b => b.Length == 1)), "equal steps and rows on every rank");
        var all = shares.SelectMany(s => s.SelectMany(b => b)).ToList();
        Assert.AreEqual(all.Count, all.Distinct().Count(), "no row in two shares");
        CollectionAssert.AreEquivalent(new long[] { 0, 1, 2, 4, 5, 6 }, all);
    }

    [TestMethod]
    public void ARankOutsideTheJobIsRefused()
    {
        using var scope = NewDisposeScope();
        using var combined = new InMemoryBatchSource(zeros(4, 1), zeros(4, dtype: ScalarType.Int64), 2);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ShardedBatchSource(combined, 2, 2));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ShardedBatchSource(combined, -1, 2));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ShardedBatchSource(combined, 0, 0));
        Assert.ThrowsExactly<ArgumentNullException>(() => new ShardedBatchSource(null!, 0, 1));
    }
}
