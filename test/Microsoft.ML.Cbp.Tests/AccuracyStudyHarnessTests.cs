using System;
using System.Globalization;
using System.IO;
using System.Linq;
using Cbp.Samples;
using Microsoft.ML.Cbp.Benchmarks;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>The benchmark harness in quick mode on tiny data: every row of the report is a measured number.</summary>
[TestClass]
public sealed class AccuracyStudyHarnessTests
{
    [TestMethod]
    public void QuickStudyFillsEveryRowWithMeasuredNumbersAndWritesItsReportAndCharts()
    {
        var settings = new StudySettings(FashionMnistData.SubsetDirectory, 256, 128, 1, 1, new[] { 1 },
            new[] { WeightConstraint.Binary, WeightConstraint.TwoBitShift }, new[] { "cnn", "mlp" });
        var rows = AccuracyStudy.Run(settings, _ => { });
        // Per network: float, then per constraint naive rounding, naive rounding + BN, straight-through and CBP.
        Assert.AreEqual(2 * (1 + (2 * 4)), rows.Count);
        foreach (var row in rows)
        {
            Assert.IsTrue(row.Accuracy is >= 0 and <= 1, $"{row.Network} {row.Constraint} {row.Method}: accuracy {row.Accuracy}");
            if (row.Method is "CBP" or "straight-through")
            {
                Assert.IsTrue(double.IsFinite(row.Cfs) && double.IsFinite(row.NormalizedCfs) && row.FractionOnLevel is >= 0 and <= 1, $"{row.Method} constraint statistics");
                Assert.IsTrue(row.Seconds > 0 && row.Epochs == 1);
            }
        }
        // Naive rounding puts every weight on a level: its accuracy is of that network, not the float one.
        Assert.IsTrue(rows.Where(r => r.Method == "naive rounding").All(r => r.Cfs == 0 && r.FractionOnLevel == 1));

        var speed = AccuracyStudyReport.MeasureSpeedAndSize(quick: true);
        Assert.IsTrue(speed.GemmGflops > 0);
        Assert.IsTrue(speed.Networks.All(n => n.FloatRowsPerSecond > 0 && n.CompactRowsPerSecond > 0 && n.Bytes[WeightStorage.Int4] < n.Bytes[WeightStorage.Float32]));
        string folder = Path.Combine(Path.GetTempPath(), "cbp-study-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var charts = AccuracyStudyReport.Charts(rows, folder);
            Assert.AreEqual(2, charts.Count);
            Assert.IsTrue(charts.All(c => new FileInfo(Path.Combine(folder, c)).Length > 1000));
            string markdown = AccuracyStudyReport.Markdown(settings, rows, speed, null, "test", charts);
            Assert.IsFalse(markdown.Contains("NaN", StringComparison.Ordinal), "no cell is left unmeasured");
            Assert.AreEqual(rows.Count, markdown.Split('\n').Count(l => l.StartsWith("| ", StringComparison.Ordinal) && (l.Contains("| float |", StringComparison.Ordinal)
                || l.Contains("| naive rounding", StringComparison.Ordinal) || l.Contains("| straight-through |", StringComparison.Ordinal) || l.Contains("| CBP |", StringComparison.Ordinal))));
            StringAssert.Contains(markdown, "GFLOP/s");
            StringAssert.Contains(markdown, "Targets for CBP on the small CNN");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void GpuScoringSuiteDryRunOnTheCpuChecksAndMeasuresEveryPath()
    {
        string folder = Path.Combine(Path.GetTempPath(), "cbp-gpu-suite-" + Guid.NewGuid().ToString("N"));
        try
        {
            CudaScoringBenchmark.Prepare(folder);
            Assert.IsTrue(new FileInfo(Path.Combine(folder, "mlp-int4.onnx")).Length < new FileInfo(Path.Combine(folder, "mlp-float32.onnx")).Length);
            string markdown = CudaScoringBenchmark.Run(folder, gpu: null, rows: 300, repetitions: 1, "test");
            var lines = markdown.Split('\n').Where(l => l.StartsWith("| MLP", StringComparison.Ordinal) || l.StartsWith("| small CNN", StringComparison.Ordinal)).ToList();
            Assert.AreEqual(4, lines.Count, "both networks in both tables");
            foreach (string line in lines)
            {
                var cells = line.Trim('|', ' ', '\r').Split('|').Skip(1).Select(c => double.Parse(c.Trim().TrimEnd('x').Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture)).ToArray();
                // Every speed and ratio was measured; the last cell is the largest score difference, which is exactly 0 when
                // both sides ran on the same CPU execution provider.
                Assert.IsTrue(cells.SkipLast(1).All(c => c > 0), line);
                Assert.AreEqual(0.0, cells[^1], line);
            }
            StringAssert.Contains(markdown, "a dry run");
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }
}
