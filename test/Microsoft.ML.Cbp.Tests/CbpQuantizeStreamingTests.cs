using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Fit on streamed data: the cache budget chooses the path and the report says which ran; a streamed Fit learns what the
/// cached Fit learns; a view with no row count is counted first; the thread setting is restored; source failures name the row.
/// </summary>
[TestClass]
public sealed class CbpQuantizeStreamingTests
{
    private static CbpQuantizeOptions Tiny(long cacheBudget) => new()
    {
        Architecture = CbpArchitecture.Mlp(new[] { 32, 32 }),
        PretrainEpochs = 2,
        Epochs = 2,
        Seed = 5,
        TrainingDevice = CbpTrainingDevice.Cpu,
        DataCacheBudgetBytes = cacheBudget,
    };

    private static (MLContext Ml, IDataView Train, IDataView Test) Fashion(int rows)
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = CbpQuantizeFashionMnistTests.Data(ml);
        var map = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        return (ml, map.Transform(ml.Data.TakeRows(train, rows)), map.Transform(ml.Data.TakeRows(test, 500)));
    }

    private static double Accuracy(MLContext ml, ITransformer model, IDataView test) =>
        ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;

    [TestMethod]
    public void StreamedAndCachedFitsLearnAlikeAndTheReportSaysWhichPathRan()
    {
        var (ml, train, test) = Fashion(1500);
        using var cached = ml.Transforms.CbpQuantize(Tiny(cacheBudget: 2L << 30)).Fit(train);
        using var streamed = ml.Transforms.CbpQuantize(Tiny(cacheBudget: 0)).Fit(train);
        StringAssert.StartsWith(cached.TrainingReport!.DataPath, "cached in memory (1,500 rows");
        StringAssert.StartsWith(streamed.TrainingReport!.DataPath, "streamed from the IDataView");
        StringAssert.Contains(streamed.TrainingReport.DataPath, "shuffle pool of 1,000 rows", "TakeRows over an enumerable view cannot shuffle itself");
        Assert.AreEqual(1500L, streamed.TrainingReport.TrainingRows);
        Assert.AreEqual(cached.TrainingReport.Cbp.Count, streamed.TrainingReport.Cbp.Count, "the same schedule");
        double a = Accuracy(ml, cached, test), b = Accuracy(ml, streamed, test);
        // Both see every row once per pass in a different order; a 1,500-row, 2 + 2-pass MLP lands within a few points.
        Assert.IsTrue(a > 0.6 && b > 0.6, $"both learn (cached {a:P1}, streamed {b:P1})");
        Assert.IsTrue(Math.Abs(a - b) < 0.06, $"cached {a:P1} and streamed {b:P1} agree within 6 points");
    }

    [TestMethod]
    public void AStreamedFitIsDeterministicForASeed()
    {
        var (ml, train, test) = Fashion(600);
        using var first = ml.Transforms.CbpQuantize(Tiny(cacheBudget: 0)).Fit(train);
        using var second = ml.Transforms.CbpQuantize(Tiny(cacheBudget: 0)).Fit(train);
        CollectionAssert.AreEqual(first.GetOnnxBytes(), second.GetOnnxBytes(), "same seed, same machine, same threads: the same model");
    }

    [TestMethod]
    public void AViewWithoutARowCountIsCountedFirstAndTheThreadSettingIsRestored()
    {
        var (ml, train, _) = Fashion(300);
        var unknown = new NoRowCount(train);
        Assert.IsNull(unknown.GetRowCount());
        int before = torch.get_num_threads();
        var options = Tiny(cacheBudget: 0);
        options.TrainingThreads = before + 1;
        var reports = new List<CbpProgressReport>();
        options.Progress = reports.Add;
        using var model = ml.Transforms.CbpQuantize(options).Fit(unknown);
        Assert.AreEqual(before, torch.get_num_threads(), "Fit restores the process-wide setting");
        Assert.AreEqual(before + 1, model.TrainingReport!.TrainingThreads, "and trained with the one asked for");
        StringAssert.Contains(model.TrainingReport.DataPath, "rows counted in a first pass");
        Assert.AreEqual(300L, model.TrainingReport.TrainingRows);
        Assert.IsTrue(reports.Where(r => r.Epoch is not null).All(r => r.RowsPerSecond > 0), "every epoch reports rows/s");
    }

    [TestMethod]
    public void AFailingSourceFailsFitNamingTheRow()
    {
        var ml = new MLContext(seed: 1);
        // The failure comes on the second read: the counting pass reads labels only, the training pass features too.
        var data = new FailingFeatures(ml.Data.LoadFromEnumerable(Rows(400, throwAt: null)), failingRow: 250);
        var options = new CbpQuantizeOptions
        {
            Architecture = CbpArchitecture.Mlp(new[] { 8, 8 }),
            PretrainEpochs = 1,
            Epochs = 1,
            DataCacheBudgetBytes = 0,
        };
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.CbpQuantize(options).Fit(data));
        StringAssert.Contains(e.Message, "row 250");
        Assert.IsInstanceOfType<System.IO.IOException>(e.InnerException);
        options.DataCacheBudgetBytes = 1L << 30;
        e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.CbpQuantize(options).Fit(data));
        StringAssert.Contains(e.Message, "row 250", "the cached path names the same row");

        var broken = ml.Data.LoadFromEnumerable(Rows(400, throwAt: 123));
        e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.CbpQuantize(options).Fit(broken));
        StringAssert.Contains(e.Message, "row 123");
        StringAssert.Contains(e.Message, "counting", "a view without a row count fails while it is counted, before training");
    }

    [TestMethod]
    public void TheThreadSettingIsRestoredWhenFitFails()
    {
        var ml = new MLContext(seed: 1);
        int before = torch.get_num_threads();
        var options = new CbpQuantizeOptions
        {
            Architecture = CbpArchitecture.Mlp(new[] { 8, 8 }),
            PretrainEpochs = 1,
            Epochs = 1,
            DataCacheBudgetBytes = 0,
            TrainingThreads = before + 1,
        };
        Assert.ThrowsExactly<InvalidOperationException>(() =>
            ml.Transforms.CbpQuantize(options).Fit(new FailingFeatures(ml.Data.LoadFromEnumerable(Rows(100, throwAt: null)), failingRow: 50)));
        Assert.AreEqual(before, torch.get_num_threads());
    }

    /// <summary>A view whose feature getter throws an IOException at one row (labels read fine).</summary>
    private sealed class FailingFeatures(IDataView inner, long failingRow) : IDataView
    {
        public bool CanShuffle => false;

        public DataViewSchema Schema => inner.Schema;

        public long? GetRowCount() => 400;

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(inner.GetRowCursor(columnsNeeded), failingRow);

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            new[] { GetRowCursor(columnsNeeded, rand) };

        private sealed class Cursor(DataViewRowCursor inner, long failingRow) : DataViewRowCursor
        {
            public override DataViewSchema Schema => inner.Schema;

            public override long Position => inner.Position;

            public override long Batch => inner.Batch;

            public override bool MoveNext() => inner.MoveNext();

            public override bool IsColumnActive(DataViewSchema.Column column) => inner.IsColumnActive(column);

            public override ValueGetter<DataViewRowId> GetIdGetter() => inner.GetIdGetter();

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            {
                var getter = inner.GetGetter<TValue>(column);
                if (column.Name != "Features")
                {
                    return getter;
                }
                return (ref TValue value) =>
                {
                    if (inner.Position == failingRow)
                    {
                        throw new System.IO.IOException($"the image store went away at row {failingRow}");
                    }
                    getter(ref value);
                };
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing)
                {
                    inner.Dispose();
                }
                base.Dispose(disposing);
            }
        }
    }

    private sealed class Row
    {
        [VectorType(6)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public bool Label { get; set; }
    }

    private static IEnumerable<Row> Rows(int count, int? throwAt)
    {
        for (int i = 0; i < count; i++)
        {
            if (i == throwAt)
            {
                throw new System.IO.IOException($"the image store went away at row {i}");
            }
            yield return new Row { Features = Enumerable.Range(0, 6).Select(j => (float)((i * 7 + j) % 5)).ToArray(), Label = i % 2 == 0 };
        }
    }

    /// <summary>A view that does not know its row count (as many streaming sources do not).</summary>
    private sealed class NoRowCount(IDataView inner) : IDataView
    {
        public bool CanShuffle => inner.CanShuffle;

        public DataViewSchema Schema => inner.Schema;

        public long? GetRowCount() => null;

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => inner.GetRowCursor(columnsNeeded, rand);

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            inner.GetRowCursorSet(columnsNeeded, n, rand);
    }
}
