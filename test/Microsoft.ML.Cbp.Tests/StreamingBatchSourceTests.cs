using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Streaming training batches from an IDataView: contents and order checked row by row against the rows the source
/// yields, the two shuffling methods, and every failure a source can produce.
/// </summary>
[TestClass]
public sealed class StreamingBatchSourceTests
{
    private const int Width = 4;

    private sealed class Row
    {
        [VectorType(Width)]
        public float[] Features { get; set; } = Array.Empty<float>();

        [KeyType(3)]
        public uint Label { get; set; }
    }

    /// <summary>
    /// Row i has features (i, i + 0.25, i + 0.5, i + 0.75) and class i mod 3; every 10th row (from row 5) has a missing
    /// label (LoadFromEnumerable stores a KeyType value v as key v + 1, and a value beyond the key's count as key 0, missing).
    /// </summary>
    private static IEnumerable<Row> Rows(int count, int? throwAt = null)
    {
        for (int i = 0; i < count; i++)
        {
            if (i == throwAt)
            {
                throw new System.IO.IOException($"disk gone at row {i}");
            }
            yield return new Row { Features = new[] { i, i + 0.25f, i + 0.5f, i + 0.75f }, Label = i % 10 == 5 ? 3u : (uint)(i % 3) };
        }
    }

    private static StreamingBatchSource Source(IDataView data, int batchSize, bool shuffle, long seed = 7, int pool = 50, long? rowsPerPass = null, CancellationToken token = default) =>
        new(data, "Features", "Label", LabelKind.Key, new long[] { 2, 2 }, batchSize, shuffle, seed, pool, prefetchBatches: 2, rowsPerPass, device: null, token);

    /// <summary>Every batch of one pass: the first feature of each row (its source index) and its class, batch sizes.</summary>
    private static (List<int> Rows, List<long> Classes, List<long> Sizes) ReadPass(StreamingBatchSource source, int pass)
    {
        var kept = new List<(Tensor, Tensor)>();
        try
        {
            foreach (var (features, labels) in source.Pass(pass))
            {
                // Keep every batch alive until the pass ends: a batch whose memory the reader reused would change under us.
                kept.Add((features, labels));
            }
            var rows = new List<int>();
            var classes = new List<long>();
            foreach (var (features, labels) in kept)
            {
                CollectionAssert.AreEqual(new long[] { features.shape[0], 2, 2 }, features.shape, "batches come in the network's row shape");
                var values = features.data<float>().ToArray();
                for (int r = 0; r < features.shape[0]; r++)
                {
                    int index = (int)values[r * Width];
                    CollectionAssert.AreEqual(new[] { index, index + 0.25f, index + 0.5f, index + 0.75f }, values.Skip(r * Width).Take(Width).ToArray(), $"row {index} intact");
                    rows.Add(index);
                }
                classes.AddRange(labels.data<long>().ToArray());
            }
            return (rows, classes, kept.Select(k => k.Item1.shape[0]).ToList());
        }
        finally
        {
            foreach (var (f, l) in kept)
            {
                f.Dispose();
                l.Dispose();
            }
        }
    }

    private static readonly int[] Labelled = Enumerable.Range(0, 200).Where(i => i % 10 != 5).ToArray();

    [TestMethod]
    public void AnUnshuffledPassYieldsTheLabelledRowsInOrderInBatches()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(200));
        var source = Source(data, batchSize: 32, shuffle: false);
        var (rows, classes, sizes) = ReadPass(source, 0);
        CollectionAssert.AreEqual(Labelled, rows.ToArray(), "180 labelled rows, in the source's order");
        CollectionAssert.AreEqual(Labelled.Select(i => (long)(i % 3)).ToArray(), classes.ToArray(), "class = key - 1");
        CollectionAssert.AreEqual(new long[] { 32, 32, 32, 32, 32, 20 }, sizes.ToArray());
        Assert.AreEqual(180L, source.LabelledRowsPerPass);
        Assert.AreEqual(20L, source.SkippedRowsPerPass);
        Assert.AreEqual("none", source.ShuffleMethod);
    }

    [TestMethod]
    public void AShufflePoolPermutesEveryPassReproduciblyFromTheSeed()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(200));
        Assert.IsFalse(data.CanShuffle, "an enumerable view cannot shuffle itself, so the pool does");
        var source = Source(data, batchSize: 32, shuffle: true);
        var twin = Source(data, batchSize: 32, shuffle: true);
        var first = ReadPass(source, 0).Rows;
        var second = ReadPass(source, 1).Rows;
        CollectionAssert.AreEquivalent(Labelled, first, "a pass holds every labelled row once");
        CollectionAssert.AreEquivalent(Labelled, second);
        CollectionAssert.AreNotEqual(Labelled, first.ToArray(), "shuffled");
        CollectionAssert.AreNotEqual(first, second, "each pass is shuffled anew");
        CollectionAssert.AreEqual(first, ReadPass(twin, 0).Rows, "the same seed and pass give the same order");
        StringAssert.Contains(source.ShuffleMethod, "shuffle pool of 50 rows");
    }

    [TestMethod]
    public void ThePoolSizeDecidesHowFarRowsMove()
    {
        // Mean distance between a row's place in the source and in the pass: a pool of 2 keeps rows near their place, a
        // pool holding the whole pass permutes it fully (a uniform permutation of n rows moves a row n/3 on average).
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(600));
        double Displacement(int pool)
        {
            var order = ReadPass(Source(data, batchSize: 64, shuffle: true, pool: pool), 0).Rows;
            var rank = Enumerable.Range(0, 600).Where(i => i % 10 != 5).Select((row, index) => (row, index)).ToDictionary(p => p.row, p => p.index);
            return order.Select((row, position) => Math.Abs(position - rank[row])).Average();
        }
        double small = Displacement(2), whole = Displacement(1000);
        Assert.IsTrue(small < 5, $"a pool of 2 moves rows {small:F1} places on average");
        Assert.IsTrue(whole > 120 && whole < 240, $"a pool larger than the data moves rows {whole:F1} places on average (540 rows: about 180)");
    }

    [TestMethod]
    public void APassLeftHalfWayLetsTheNextPassStartCleanly()
    {
        // CBP's schedule epochs end mid-pass, and a resumed Fit abandons a pass: the reader is stopped while it is blocked
        // on a full queue, its buffers go back, and the next pass yields every row again.
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(400));
        var source = Source(data, batchSize: 8, shuffle: true);
        int taken = 0;
        foreach (var (features, labels) in source.Pass(0))
        {
            features.Dispose();
            labels.Dispose();
            if (++taken == 3)
            {
                break;
            }
        }
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 400).Where(i => i % 10 != 5).ToArray(), ReadPass(source, 1).Rows, "the next pass is whole");
    }

    [TestMethod]
    public void AViewThatCanShuffleShufflesItselfReproducibly()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.Cache(ml.Data.LoadFromEnumerable(Rows(200)));
        Assert.IsTrue(data.CanShuffle);
        var source = Source(data, batchSize: 25, shuffle: true);
        var twin = Source(data, batchSize: 25, shuffle: true);
        var first = ReadPass(source, 0).Rows;
        CollectionAssert.AreEquivalent(Labelled, first);
        CollectionAssert.AreNotEqual(Labelled, first.ToArray());
        CollectionAssert.AreEqual(first, ReadPass(twin, 0).Rows);
        Assert.AreEqual("the view's own shuffling", source.ShuffleMethod);
    }

    [TestMethod]
    public void EveryPassOpensANewCursor()
    {
        var ml = new MLContext(seed: 1);
        var data = new CountingView(ml.Data.LoadFromEnumerable(Rows(50)));
        var source = Source(data, batchSize: 16, shuffle: true);
        for (int pass = 0; pass < 3; pass++)
        {
            Assert.AreEqual(45, ReadPass(source, pass).Rows.Count);
        }
        Assert.AreEqual(3, data.Cursors);
    }

    [TestMethod]
    public void ASourceThatThrowsMidPassFailsNamingTheRowAndKeepingTheCause()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(200, throwAt: 137));
        var source = Source(data, batchSize: 16, shuffle: false);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ReadPass(source, 0));
        StringAssert.Contains(e.Message, "row 137");
        StringAssert.Contains(e.Message, "disk gone at row 137");
        Assert.IsNotNull(e.InnerException);
    }

    [TestMethod]
    public void APassWithAnotherRowCountIsAClearError()
    {
        var ml = new MLContext(seed: 1);
        int reads = 0;
        IEnumerable<Row> Shrinking()
        {
            int count = reads++ == 0 ? 100 : 80;
            return Rows(count);
        }
        var data = ml.Data.LoadFromEnumerable(new Reenumerable<Row>(Shrinking));
        var source = Source(data, batchSize: 16, shuffle: false);
        Assert.AreEqual(90, ReadPass(source, 0).Rows.Count);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ReadPass(source, 1));
        StringAssert.Contains(e.Message, "72 labelled rows");
        StringAssert.Contains(e.Message, "the first pass yielded 90");
    }

    [TestMethod]
    public void AViewThatCannotBeReadAgainFailsOnTheSecondPass()
    {
        var ml = new MLContext(seed: 1);
        var data = new CountingView(ml.Data.LoadFromEnumerable(Rows(40)), failAfter: 1);
        var source = Source(data, batchSize: 16, shuffle: false);
        Assert.AreEqual(36, ReadPass(source, 0).Rows.Count);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ReadPass(source, 1));
        StringAssert.Contains(e.Message, "could not be read for pass 2");
        StringAssert.Contains(e.Message, "re-readable");
    }

    [TestMethod]
    public void CancellationStopsThePassAndItsReader()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(10_000));
        using var cancel = new CancellationTokenSource();
        var source = Source(data, batchSize: 8, shuffle: true, token: cancel.Token);
        int batches = 0;
        Assert.ThrowsExactly<OperationCanceledException>(() =>
        {
            foreach (var (features, labels) in source.Pass(0))
            {
                features.Dispose();
                labels.Dispose();
                if (++batches == 3)
                {
                    cancel.Cancel();
                }
            }
        });
        Assert.AreEqual(3, batches, "no batch after the cancellation");
    }

    /// <summary>An IEnumerable that calls a factory on every enumeration (so each cursor sees what the factory returns then).</summary>
    private sealed class Reenumerable<T>(Func<IEnumerable<T>> factory) : IEnumerable<T>
    {
        public IEnumerator<T> GetEnumerator() => factory().GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>A view that counts its cursors and, when asked, fails to open any after the first <c>failAfter</c>.</summary>
    private sealed class CountingView(IDataView inner, int? failAfter = null) : IDataView
    {
        public int Cursors { get; private set; }

        public bool CanShuffle => false;

        public DataViewSchema Schema => inner.Schema;

        public long? GetRowCount() => inner.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            if (Cursors >= failAfter)
            {
                throw new InvalidOperationException("this view reads its file once");
            }
            Cursors++;
            return inner.GetRowCursor(columnsNeeded, rand);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            new[] { GetRowCursor(columnsNeeded, rand) };
    }
}
