using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Benchmarks;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Pipeline;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// What each rank of a data-parallel Fit reads (no MPI needed): its shard of the rows (labelled row k to shard k mod N) through the
/// count, the cache and the stream, computing no other row's features; and its batches made collective (equal rows and
/// steps on every rank, a pass that ends on every rank when one runs short).
/// </summary>
[TestClass]
public sealed class DataParallelReadingTests
{
    private const int Rows = 40;

    private static (IDataView View, HashSet<int> Read) Data(MLContext ml, bool cache = false)
    {
        var read = new HashSet<int>();
        // Row i: every feature i, class i mod 3; rows 5, 15, 25, 35 have a missing label. Reading row i's features records i.
        var rows = Enumerable.Range(0, Rows)
            .Select(i => new RecordedRow { Id = i, Features = Enumerable.Repeat((float)i, RecordedRow.Width).ToArray(), Label = i % 10 == 5 ? 3u : (uint)(i % 3), Read = read })
            .ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        if (cache)
        {
            // A view that can shuffle itself: streamed shards take their labelled rows of its shuffled order, the same on every shard.
            view = ml.Data.Cache(view);
            view.Preview(Rows);
            read.Clear();
        }
        return (view, read);
    }

    /// <summary>The labelled rows of shard <paramref name="index"/> of <paramref name="count"/>, worked out by hand.</summary>
    private static int[] Expected(int index, int count) => Enumerable.Range(0, Rows).Where(i => i % 10 != 5).Where((_, k) => k % count == index).ToArray();

    private static int[] RowsOf(IEnumerable<(Tensor Features, Tensor Labels)> batches) =>
        batches.SelectMany(b => { using var column = b.Features.flatten(1).select(1, 0); return column.data<float>().ToArray(); }).Select(v => (int)v).ToArray();

    [TestMethod]
    public void EachShardCountsAndCachesItsOwnRowsOnlyAndTheShardsHoldEveryRowOnce()
    {
        var ml = new MLContext(seed: 1);
        var seen = new List<int>();
        for (int shard = 0; shard < 3; shard++)
        {
            var (view, read) = Data(ml);
            var rows = new RowShard(shard, 3);
            var count = DataViewTensorReader.CountRows(view, "Features", "Label", shard: rows);
            Assert.AreEqual((long)Expected(shard, 3).Length, count.Labelled, $"shard {shard}'s labelled rows");
            // Rows without a label belong to no shard; each is reported skipped by shard (position mod 3).
            Assert.AreEqual(Enumerable.Range(0, Rows).LongCount(i => i % 3 == shard && i % 10 == 5), count.Skipped, $"shard {shard}'s rows without a label");
            Assert.AreEqual(36L, count.ViewLabelled, "every shard learns the view's labelled rows");
            Assert.AreEqual(new RowShard(shard, 3).RowsOf(36), count.Labelled, "ceil((36 - shard) / 3)");
            Assert.AreEqual((long)Rows, count.ViewRows, "every shard learns the view's rows");
            Assert.AreEqual(0, read.Count, "counting computes no features");
            using var cached = DataViewTensorReader.Read(view, "Features", "Label", new long[] { RecordedRow.Width }, Expected(shard, 3).Length, shard: rows);
            int[] rowsRead = cached.Features.select(1, 0).data<float>().ToArray().Select(v => (int)v).ToArray();
            CollectionAssert.AreEqual(Expected(shard, 3), rowsRead, $"shard {shard} caches labelled rows k with k mod 3 = {shard}, in order");
            CollectionAssert.AreEqual(Expected(shard, 3).Select(i => (long)(i % 3)).ToArray(), cached.Labels.data<long>().ToArray(), "with their own labels");
            CollectionAssert.AreEquivalent(Expected(shard, 3), read.ToList(), $"shard {shard} computed the features of its own labelled rows only");
            seen.AddRange(rowsRead);
        }
        CollectionAssert.AreEquivalent(Expected(0, 1), seen, "every labelled row in exactly one shard");
        // Every shard hashes the whole view's labels in order: the same for every shard, another for the rows reversed.
        var hashes = Enumerable.Range(0, 3).Select(i => DataViewTensorReader.CountRows(Data(ml).View, "Features", "Label", shard: new RowShard(i, 3)).LabelHash).Distinct().ToList();
        Assert.AreEqual(1, hashes.Count);
        var reversed = ml.Data.LoadFromEnumerable(Enumerable.Range(0, Rows).Reverse().Select(i => new RecordedRow { Id = i, Features = new float[RecordedRow.Width], Label = i % 10 == 5 ? 3u : (uint)(i % 3) }));
        Assert.AreNotEqual(hashes[0], DataViewTensorReader.CountRows(reversed, "Features", "Label").LabelHash);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void StreamedShardsHoldEveryRowOnceAPassReshuffledEveryPass(bool viewCanShuffle)
    {
        var ml = new MLContext(seed: 1);
        var (view, read) = Data(ml, cache: viewCanShuffle);
        StreamingBatchSource Shard(int index) => new(view, "Features", "Label", LabelKind.Key, new long[] { RecordedRow.Width }, batchSize: 4, shuffle: true, seed: 7,
            shufflePoolRows: 8, prefetchBatches: 2, labelledRowsPerPass: null, device: null, System.Threading.CancellationToken.None, shard: new RowShard(index, 2));
        using var scope = NewDisposeScope();
        var second = Shard(1);
        var secondFirstPass = RowsOf(second.Pass(0));
        if (!viewCanShuffle)
        {
            // (The cached view computed every row's features once, while it was filled.)
            CollectionAssert.AreEquivalent(secondFirstPass, read.ToList(), "a shard computes the features of its own rows only");
            CollectionAssert.AreEquivalent(Expected(1, 2), secondFirstPass, "in the view's own order, shard 1 holds the odd labelled rows");
        }
        var first = Shard(0);
        var passes = new[] { (First: RowsOf(first.Pass(0)), Second: secondFirstPass), (First: RowsOf(first.Pass(1)), Second: RowsOf(second.Pass(1))) };
        foreach (var (one, other) in passes)
        {
            CollectionAssert.AreEquivalent(Expected(0, 1), one.Concat(other).ToList(), "every labelled row in exactly one shard per pass");
        }
        CollectionAssert.AreNotEqual(passes[0].Second, passes[1].Second, "reshuffled every pass");
        if (viewCanShuffle)
        {
            // The view's own shuffle, the same on both shards: each takes its positions of it, other rows every pass.
            CollectionAssert.AreNotEquivalent(passes[0].Second, passes[1].Second, "a shard of a view that shuffles itself holds other rows every pass");
            StringAssert.StartsWith(second.ShuffleMethod, "the view's own shuffling, the same on every shard");
        }
        else
        {
            CollectionAssert.AreEquivalent(passes[0].Second, passes[1].Second, "a shard of a view in its own order keeps its rows");
            Assert.AreEqual("a shuffle pool of 8 rows", second.ShuffleMethod);
        }
    }

    [TestMethod]
    public void TrainingDataOpensAShardAndSaysSo()
    {
        var ml = new MLContext(seed: 1);
        var (view, _) = Data(ml);
        var options = new CbpQuantizeOptions { Architecture = CbpArchitecture.Mlp(new[] { 4 }) };
        using var data = TrainingData.Open(view, options, "training data", new RowShard(2, 4));
        // Labelled rows 2, 6, ..., 34 of 36 (rows 5, 15, 25, 35 have no label): 9 rows.
        Assert.AreEqual(9L, data.ExpectedRows);
        Assert.AreEqual(36L, data.DataRows);
        Assert.AreEqual((long)Rows, data.ViewRows);
        using var scope = NewDisposeScope();
        var batches = data.Batches(new long[] { RecordedRow.Width }, 4, shuffle: false, seed: 1, CPU);
        CollectionAssert.AreEqual(Expected(2, 4), RowsOf(batches.Pass(0)));
        StringAssert.StartsWith(data.Description, "shard 2 of 4 (labelled rows k with k mod 4 = 2), cached in memory (9 rows");
    }

    [TestMethod]
    public void TheLabelOrderSampleCoversTheWholeViewOnEveryShard()
    {
        var ml = new MLContext(seed: 1);
        var (view, _) = Data(ml);
        var options = new CbpQuantizeOptions { Architecture = CbpArchitecture.Mlp(new[] { 4 }) };
        using var data = TrainingData.Open(view, options, "training data", new RowShard(1, 2));
        var sampled = new List<int>();
        // The whole view's 36 labelled rows (every shard's), 12 wanted: every third labelled row, from both shards.
        long count = data.SampleClasses(dataRows: 36, count: 12, batchRows: 5, (features, classes, rows) =>
        {
            for (int i = 0; i < rows; i++)
            {
                sampled.Add((int)features[i * RecordedRow.Width]);
                Assert.AreEqual((long)(sampled[^1] % 3), classes[i], "each row with its own class");
            }
        });
        var expected = Expected(0, 1).Where((_, i) => i % 3 == 0).ToArray();
        Assert.AreEqual(12L, count);
        CollectionAssert.AreEqual(expected, sampled);
    }

    [TestMethod]
    public void DataWithFewerLabelledRowsThanRanksIsRefusedNamingBoth()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.TakeRows(Data(ml).View, 6);
        // Rows 0-4 have labels, row 5 not: 5 labelled rows for 8 ranks. Every rank reads every label, so every rank refuses alike.
        var options = new CbpQuantizeOptions { Architecture = CbpArchitecture.Mlp(new[] { 4 }) };
        foreach (int rank in new[] { 0, 7 })
        {
            var e = Assert.ThrowsExactly<ArgumentException>(() => TrainingData.Open(view, options, "training data", new RowShard(rank, 8)));
            StringAssert.Contains(e.Message, "has 5 row(s) with a label in 'Label', fewer than the 8 ranks");
            Assert.AreEqual("input", e.ParamName);
        }
        using var enough = TrainingData.Open(view, options, "training data", new RowShard(4, 5));
        Assert.AreEqual(1L, enough.ExpectedRows);
    }

    [TestMethod]
    public void AShardOutsideTheJobIsRefusedAndShardZeroShufflesWithTheCommonSeed()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RowShard(2, 2));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RowShard(-1, 2));
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RowShard(0, 0));
        StringAssert.Contains(e.Message, "of 0 shard(s)");
        Assert.AreEqual(7L, new RowShard(0, 4).ShuffleSeed(7), "shard 0 (and a process alone) keeps the Fit's seed");
        Assert.AreEqual(7L + 3 * 1_000_003L, new RowShard(3, 4).ShuffleSeed(7));
        Assert.IsTrue(RowShard.All.Contains(12345) && new RowShard(1, 3).Contains(4) && !new RowShard(1, 3).Contains(5));
    }

    /// <summary>A rank's pass through <see cref="DataParallelBatchSource"/>: its batch sizes, and how often it asked the other ranks.</summary>
    private static (long[] Sizes, int Asked) CollectivePass(int shardRows, int batchSize, long rowsPerPass, int minimumRows, int otherRanksHaveBatches = int.MaxValue)
    {
        using var scope = NewDisposeScope();
        using var own = new InMemoryBatchSource(arange(shardRows, dtype: ScalarType.Float32).reshape(shardRows, 1), zeros(shardRows, dtype: ScalarType.Int64), batchSize, shuffle: false);
        int asked = 0;
        var source = new DataParallelBatchSource(own, rowsPerPass, minimumRows, has => asked++ < otherRanksHaveBatches && has);
        var sizes = source.Pass(0).Select(b => b.Features.shape[0]).ToArray();
        return (sizes, asked);
    }

    [TestMethod]
    public void EveryRankTakesTheSmallestShardsRowsInBatchesOfTheSameSizes()
    {
        // Shards of 11 and 10 rows, batches of 4: both ranks take 10 rows per pass, as 4, 4, 2 (the larger shard's 11th row waits).
        var larger = CollectivePass(11, 4, rowsPerPass: 10, minimumRows: 1);
        var smaller = CollectivePass(10, 4, rowsPerPass: 10, minimumRows: 1);
        CollectionAssert.AreEqual(new long[] { 4, 4, 2 }, larger.Sizes);
        CollectionAssert.AreEqual(larger.Sizes, smaller.Sizes);
        Assert.AreEqual(4, larger.Asked, "every rank asks before each batch and once more at the end");
        var source = new DataParallelBatchSource(new InMemoryBatchSource(zeros(1, 1), zeros(1, dtype: ScalarType.Int64), 1), 10, 1, h => h);
        Assert.AreEqual(3L, source.StepsPerPass(4));
        // Batch normalisation: a last batch of 1 row (9 = 4 + 4 + 1) ends the pass on every rank.
        CollectionAssert.AreEqual(new long[] { 4, 4 }, CollectivePass(11, 4, rowsPerPass: 9, minimumRows: 2).Sizes);
        Assert.AreEqual(2L, new DataParallelBatchSource(new InMemoryBatchSource(zeros(1, 1), zeros(1, dtype: ScalarType.Int64), 1), 9, 2, h => h).StepsPerPass(4));
    }

    [TestMethod]
    public void ARankThatRunsShortEndsThePassOnEveryRank()
    {
        // Another rank has only 2 batches (its rows turned out to have NaN features): this rank stops after 2 as well.
        var (sizes, asked) = CollectivePass(40, 4, rowsPerPass: 40, minimumRows: 1, otherRanksHaveBatches: 2);
        CollectionAssert.AreEqual(new long[] { 4, 4 }, sizes);
        Assert.AreEqual(3, asked);
        // And this rank running short ends it for the others: it reports no batch (its shard ran out before rowsPerPass).
        var (mine, _) = CollectivePass(6, 4, rowsPerPass: 10, minimumRows: 1);
        CollectionAssert.AreEqual(new long[] { 4, 2 }, mine);
    }

    [TestMethod]
    public void APassLeftEarlyReleasesItsSourceAndTheNextPassIsWhole()
    {
        using var scope = NewDisposeScope();
        using var own = new InMemoryBatchSource(arange(10, dtype: ScalarType.Float32).reshape(10, 1), zeros(10, dtype: ScalarType.Int64), 4, shuffle: false);
        int asked = 0;
        var source = new DataParallelBatchSource(own, 10, 1, has => { asked++; return has; });
        // The caller stops after one batch (cancellation, an exception, Take): the inner pass is disposed, nothing else asked.
        using (var pass = source.Pass(0).GetEnumerator())
        {
            Assert.IsTrue(pass.MoveNext());
        }
        Assert.AreEqual(1, asked);
        CollectionAssert.AreEqual(new long[] { 4, 4, 2 }, source.Pass(1).Select(b => b.Features.shape[0]).ToArray());
        Assert.AreEqual(5, asked);
    }

    [TestMethod]
    public void CountingAShardStopsWhenCancelled()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 5000).Select(i => new RecordedRow { Id = i, Features = new float[RecordedRow.Width], Label = (uint)(i % 3) }));
        using var cancelled = new System.Threading.CancellationTokenSource();
        cancelled.Cancel();
        // Shard 1 of 4 never holds position 0 or 1024: the check does not depend on the shard's rows.
        Assert.ThrowsExactly<OperationCanceledException>(() => DataViewTensorReader.CountRows(view, "Features", "Label", cancelled.Token, new RowShard(1, 4)));
        Assert.ThrowsExactly<OperationCanceledException>(() =>
            DataViewTensorReader.Read(view, "Features", "Label", new long[] { RecordedRow.Width }, 1250, cancellationToken: cancelled.Token, shard: new RowShard(1, 4)));
    }

    [TestMethod]
    public void WrongArgumentsAreRefused()
    {
        using var own = new InMemoryBatchSource(zeros(4, 1), zeros(4, dtype: ScalarType.Int64), 2);
        Assert.ThrowsExactly<ArgumentNullException>(() => new DataParallelBatchSource(null!, 4, 1, h => h));
        Assert.ThrowsExactly<ArgumentNullException>(() => new DataParallelBatchSource(own, 4, 1, null!));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new DataParallelBatchSource(own, 0, 1, h => h));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new DataParallelBatchSource(own, 4, 0, h => h));
        Assert.ThrowsExactly<ArgumentNullException>(() => DataParallelBatchSource.Over(own, 4, 1, null!));
    }
}
