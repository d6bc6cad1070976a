using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp;

namespace Cbp.Samples;

/// <summary>PNG charts of a CBP training run (ScottPlot).</summary>
public static class TrainingPlots
{
    /// <summary>
    /// The training curve: validation accuracy per epoch (float pre-training, then CBP schedule epochs) on the left axis;
    /// scale-normalised CFS and the window counter g on the right.
    /// </summary>
    /// <param name="report">The training report (needs validation data for the accuracy line).</param>
    /// <param name="path">The PNG to write.</param>
    public static void TrainingCurve(CbpTrainingReport report, string path)
    {
        var plot = new ScottPlot.Plot();
        var epochs = report.Pretraining.Concat(report.Cbp).ToList();
        double[] x = Enumerable.Range(1, epochs.Count).Select(i => (double)i).ToArray();
        var accuracy = plot.Add.Scatter(x, epochs.Select(e => (e.ValidationAccuracy ?? double.NaN) * 100).ToArray());
        accuracy.LegendText = "validation accuracy, % (left)";
        var cbpX = x.Skip(report.Pretraining.Count).ToArray();
        var cfs = plot.Add.Scatter(cbpX, report.Cbp.Select(e => e.NormalizedCfs).ToArray());
        cfs.LegendText = "CFS / scale (right)";
        cfs.Axes.YAxis = plot.Axes.Right;
        var g = plot.Add.Scatter(cbpX, report.Cbp.Select(e => e.G / 100.0).ToArray());
        g.LegendText = "window counter g / 100 (right)";
        g.Axes.YAxis = plot.Axes.Right;
        var start = plot.Add.VerticalLine(report.Pretraining.Count + 0.5);
        start.LegendText = "CBP starts";
        plot.Title($"{report.Network}, {report.Constraint.Name} weights: training curve");
        plot.XLabel("epoch (float pre-training, then CBP schedule epochs)");
        plot.YLabel("validation accuracy, %");
        plot.Axes.Right.Label.Text = "CFS / scale, g / 100";
        plot.ShowLegend();
        Save(plot, path);
    }

    /// <summary>The histogram of a layer's latent weights (divided by its scale) before and after CBP, with the levels marked.</summary>
    /// <param name="report">The training report.</param>
    /// <param name="path">The PNG to write.</param>
    public static void LatentHistogram(CbpTrainingReport report, string path)
    {
        var histogram = report.LatentHistogram!;
        var plot = new ScottPlot.Plot();
        double[] centres = Enumerable.Range(0, histogram.Bins).Select(histogram.Centre).ToArray();
        double width = (histogram.Max - histogram.Min) / histogram.Bins;
        long total = histogram.Before.Sum();
        foreach (var (counts, label, color) in new[]
        {
            (histogram.Before, "before CBP (float)", ScottPlot.Colors.SteelBlue.WithAlpha(0.55)),
            (histogram.After, "after CBP (before the final projection)", ScottPlot.Colors.OrangeRed.WithAlpha(0.65)),
        })
        {
            var bars = plot.Add.Bars(centres, counts.Select(c => 100.0 * c / total).ToArray());
            bars.LegendText = label;
            bars.Color = color;
            foreach (var bar in bars.Bars)
            {
                bar.Size = width;
                bar.LineWidth = 0;
                bar.FillColor = color;
            }
        }
        foreach (double level in report.Constraint.Levels)
        {
            var line = plot.Add.VerticalLine(level);
            line.LinePattern = ScottPlot.LinePattern.Dotted;
            line.Color = ScottPlot.Colors.Black;
        }
        plot.Title($"{histogram.Layer}: latent weights / scale, {report.Constraint.Name} levels dotted");
        plot.XLabel("latent weight / layer scale");
        plot.YLabel("% of weights per bin");
        plot.Axes.SetLimitsX(histogram.Min, histogram.Max);
        plot.ShowLegend();
        Save(plot, path);
    }

    /// <summary>
    /// The model summary as a chart: per weight layer, its bytes in float and in the compact file (log scale, left) and the
    /// bits per weight of its codes (right).
    /// </summary>
    /// <param name="report">The training report.</param>
    /// <param name="path">The PNG to write.</param>
    public static void LayerBytes(CbpTrainingReport report, string path)
    {
        var plot = new ScottPlot.Plot();
        var layers = report.WeightLayers;
        double[] positions = Enumerable.Range(0, layers.Count).Select(i => (double)i).ToArray();
        foreach (var (offset, values, label, color) in new[]
        {
            (-0.2, layers.Select(l => (double)l.FloatBytes).ToArray(), "float bytes (left, log)", ScottPlot.Colors.SteelBlue),
            (0.2, layers.Select(l => (double)l.CompactBytes).ToArray(), "compact bytes (left, log)", ScottPlot.Colors.OrangeRed),
        })
        {
            var bars = plot.Add.Bars(positions.Select(p => p + offset).ToArray(), values.Select(Math.Log10).ToArray());
            bars.LegendText = label;
            bars.Color = color;
            foreach (var bar in bars.Bars)
            {
                bar.Size = 0.4;
                bar.FillColor = color;
                bar.LineWidth = 0;
            }
        }
        var bits = plot.Add.Scatter(positions, layers.Select(l => (double)l.BitsPerWeight).ToArray());
        bits.LegendText = "bits per weight (right)";
        bits.LineWidth = 0;
        bits.MarkerSize = 10;
        bits.Axes.YAxis = plot.Axes.Right;
        plot.Axes.Bottom.SetTicks(positions, layers.Select(l => l.Name).ToArray());
        plot.Title($"{report.Network}, {report.Constraint.Name}: {report.CompactModelBytes:N0} bytes compact, {report.FloatModelBytes:N0} float");
        plot.YLabel("log10 bytes");
        plot.Axes.Right.Label.Text = "bits per weight";
        plot.Axes.SetLimitsY(0, Math.Log10(layers.Max(l => (double)l.FloatBytes)) * 1.3);
        plot.Axes.Right.Range.Set(0, 40);
        plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
        Save(plot, path);
    }

    private static void Save(ScottPlot.Plot plot, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string temp = path + ".tmp.png";
        plot.SavePng(temp, 900, 520);
        File.Move(temp, path, overwrite: true);
    }
}
