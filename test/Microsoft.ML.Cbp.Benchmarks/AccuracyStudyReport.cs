using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Onnx.Architectures;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Cbp.Training;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>Speed and size figures measured in the same run as the accuracy study.</summary>
/// <param name="GemmGflops">ONNX Runtime SGEMM throughput on this machine (1024x1024 weights, all cores).</param>
/// <param name="Networks">Per network: float and compact ORT rows/s, float FLOPs per row, bytes per storage.</param>
public sealed record SpeedAndSize(double GemmGflops, List<NetworkSpeed> Networks);

/// <summary>Scoring speed and sizes of one study network.</summary>
/// <param name="Network">The network.</param>
/// <param name="FlopsPerRow">Multiply-adds x 2 per row of its Conv and Gemm layers.</param>
/// <param name="FloatRowsPerSecond">ORT rows/s of the float model.</param>
/// <param name="CompactRowsPerSecond">ORT rows/s of the INT4 model.</param>
/// <param name="Bytes">File bytes per storage.</param>
public sealed record NetworkSpeed(string Network, double FlopsPerRow, double FloatRowsPerSecond, double CompactRowsPerSecond, Dictionary<WeightStorage, long> Bytes);

/// <summary>Writes the accuracy study's Markdown report and PNG charts.</summary>
public static class AccuracyStudyReport
{
    /// <summary>Measures scoring speed (float versus compact), SGEMM throughput and sizes.</summary>
    /// <param name="quick">Fewer rows and repetitions.</param>
    public static SpeedAndSize MeasureSpeedAndSize(bool quick)
    {
        int rows = quick ? 512 : 16384, repetitions = quick ? 2 : 9;
        double gemm = Median(repetitions, () => GemmGflops(quick ? 256 : 1024));
        var networks = new List<NetworkSpeed>();
        foreach (var (name, architecture, shape, flops) in new (string, CbpArchitecture, long[], double)[]
        {
            ("small CNN", CbpArchitecture.SmallCnn(), new long[] { 1, 28, 28 }, SmallCnnFlops()),
            ("MLP 784-512-512-10 (BN)", CbpArchitecture.Mlp(new[] { 512, 512 }), new long[] { 784 }, 2.0 * ((784 * 512) + (512 * 512) + (512 * 10))),
        })
        {
            var exported = BinaryRoundedExports(architecture, shape);
            var bytes = exported.ToDictionary(kv => kv.Key, kv => (long)kv.Value.Length);
            using var floatSession = OnnxScoringSession.Create(exported[WeightStorage.Float32]);
            using var compactSession = OnnxScoringSession.Create(exported[WeightStorage.Int4]);
            long width = shape.Aggregate(1L, (a, b) => a * b);
            var input = new float[rows * width];
            var floatTimes = new List<double>();
            var compactTimes = new List<double>();
            for (int r = -1; r < repetitions; r++)
            {
                // The two models take turns in alternating order. With the float model always first, the INT4 model measured
                // 0.92-0.94x of it although ONNX Runtime folds the INT4 decoding at load and the optimised graphs are the same.
                var turns = r % 2 == 0
                    ? new[] { (floatSession, floatTimes), (compactSession, compactTimes) }
                    : new[] { (compactSession, compactTimes), (floatSession, floatTimes) };
                foreach (var (session, times) in turns)
                {
                    var clock = Stopwatch.StartNew();
                    session.Score(input, rows);
                    if (r >= 0)
                    {
                        times.Add(rows / clock.Elapsed.TotalSeconds);
                    }
                }
            }
            networks.Add(new NetworkSpeed(name, flops, floatTimes.Order().ElementAt(floatTimes.Count / 2), compactTimes.Order().ElementAt(compactTimes.Count / 2), bytes));
        }
        return new SpeedAndSize(gemm, networks);
    }

    /// <summary>
    /// A freshly initialised network with its constrained layers rounded to binary levels (scale = mean |w|), exported with
    /// every weight storage: the same weights, so the files differ only in how the constrained layers are stored.
    /// </summary>
    /// <param name="architecture">The network.</param>
    /// <param name="shape">Its input shape per row.</param>
    internal static Dictionary<WeightStorage, byte[]> BinaryRoundedExports(CbpArchitecture architecture, long[] shape)
    {
        var model = architecture.Build(shape, 10, 1);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model);
        var scales = Baselines.RoundToLevels(module, names.Select(module.MemberName), WeightConstraint.Binary);
        var quantized = names.Select(n => new QuantizedInitializer(n, WeightConstraint.Binary, scales[module.MemberName(n)])).ToList();
        return new[] { WeightStorage.Float32, WeightStorage.Int8, WeightStorage.Int4, WeightStorage.Int2 }
            .ToDictionary(s => s, s => OnnxModelFile.ToBytes(QuantizedOnnxExporter.Export(module, quantized, s)));
    }

    /// <summary>
    /// SGEMM throughput of ONNX Runtime here: a [rows, 2048] x [2048, 2048] Gemm, split into one single-threaded Run per
    /// core on slices of the rows (as the transformer scores), inputs passed without copies; the best of three runs.
    /// </summary>
    private static double GemmGflops(int rows)
    {
        const int size = 2048;
        using var builder = new OnnxGraphBuilder("gemm", 1);
        string x = builder.Input("x", new long[] { size });
        builder.Output(builder.Dense(x, size, size), null);
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var session = new InferenceSession(OnnxModelFile.ToBytes(builder.Build("GEMM throughput")), options);
        var input = new float[rows * size];
        int slices = Environment.ProcessorCount, sliceRows = rows / slices;
        string inputName = session.InputMetadata.Keys.First();
        var outputs = session.OutputMetadata.Keys.ToArray();
        double best = 0;
        for (int run = 0; run < 4; run++)
        {
            var clock = Stopwatch.StartNew();
            System.Threading.Tasks.Parallel.For(0, slices, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = slices }, slice =>
            {
                using var runOptions = new RunOptions();
                using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(slice * sliceRows * size, sliceRows * size), new long[] { sliceRows, size });
                using var result = session.Run(runOptions, new[] { inputName }, new[] { value }, outputs);
            });
            double seconds = clock.Elapsed.TotalSeconds;
            best = run == 0 ? best : Math.Max(best, 2.0 * slices * sliceRows * size * (double)size / seconds / 1e9);
        }
        return best;
    }

    /// <summary>Conv and Gemm FLOPs (2 x multiply-adds) of one 28x28 row through the small CNN: 3x3 convolutions 1-32, 32-64, 64-128 at 28, 14 and 7 pixels, then 1152-256-10.</summary>
    public static double SmallCnnFlops() =>
        2.0 * ((32 * 1 * 9 * 28 * 28) + (64 * 32 * 9 * 14 * 14) + (128 * 64 * 9 * 7 * 7) + (1152 * 256) + (256 * 10));

    /// <summary>The Markdown report.</summary>
    /// <param name="settings">The study settings.</param>
    /// <param name="rows">Its results.</param>
    /// <param name="speed">Speed and size figures.</param>
    /// <param name="scoring">The scoring benchmark's Markdown (Transform versus raw ORT and ApplyOnnxModel), or null.</param>
    /// <param name="command">The command that produced it.</param>
    /// <param name="charts">File names of the charts, relative to the report.</param>
    public static string Markdown(StudySettings settings, List<StudyRow> rows, SpeedAndSize speed, string? scoring, string command, IEnumerable<string> charts)
    {
        var md = new StringBuilder();
        md.AppendLine("# Accuracy study: CBP against its baselines, with speed and size");
        md.AppendLine();
        md.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `{command}` on {Environment.ProcessorCount} cores " +
            $"({RuntimeInformation.OSDescription.Trim()}, {RuntimeInformation.ProcessArchitecture}), TorchSharp {typeof(torch).Assembly.GetName().Version} on the CPU " +
            $"(one torch thread), ONNX Runtime {OrtEnv.Instance().GetVersionString()} CPU execution provider.");
        md.AppendLine($"Data: Fashion-MNIST from `{settings.DataDirectory}`, the first {settings.TrainRows:N0} training and {settings.TestRows:N0} test images. " +
            $"Every method starts from one float checkpoint ({settings.PretrainEpochs} float epochs, SGD lr 0.05, momentum 0.9, batch {settings.BatchSize}) and gets " +
            $"{settings.Epochs} more passes (SGD lr 0.01, final cosine anneal over the last quarter; straight-through and CBP split each pass into " +
            $"{settings.ScheduleEpochsPerPass} schedule epochs, as the estimator does; CBP's multiplier learning rate {settings.MultiplierLearningRate}). Layer scales: " +
            $"{(settings.ScaleMode == ScaleMode.MinimumError ? "the minimum-rounding-error scale per layer" : settings.ScaleMode == ScaleMode.PerOutputChannel ? "mean |w| per output channel" : "mean |w| per layer (the paper's)")}, " +
            $"the same for every method. First and last layers stay float. Accuracy: the exported ONNX model " +
            $"(constrained layers as INT4 codes) scored by ONNX Runtime on the test images. Seeds: {string.Join(", ", settings.Seeds)} (three for the binary " +
            "small CNN's straight-through and CBP runs; the checkpoint uses the first). CFS/s: CFS divided by the layer scale, before the final projection; " +
            "\"on level\": latent weights within 1% of a level gap of their level.");
        md.AppendLine();
        foreach (var network in rows.Select(r => r.Network).Distinct())
        {
            var netRows = rows.Where(r => r.Network == network).ToList();
            double floatAccuracy = netRows.Single(r => r.Method == "float").Accuracy;
            md.AppendLine($"## {network}");
            md.AppendLine();
            md.AppendLine("| constraint | method | seed | test accuracy | vs float | CFS | CFS/s | on level | epochs | seconds |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var r in netRows)
            {
                md.AppendLine($"| {r.Constraint} | {r.Method} | {r.Seed} | {r.Accuracy * 100:F2} | {(r.Accuracy - floatAccuracy) * 100:+0.00;-0.00;0.00} | " +
                    $"{Cell(r.Cfs, "G3")} | {Cell(r.NormalizedCfs, "F4")} | {Cell(r.FractionOnLevel * 100, "F1")} | {r.Epochs} | {r.Seconds:F0} |");
            }
            md.AppendLine();
            var binaryCbp = netRows.Where(r => r.Method == "CBP" && r.Constraint == WeightConstraint.Binary.Name).Select(r => r.Accuracy * 100).ToList();
            if (binaryCbp.Count > 1)
            {
                md.AppendLine($"Binary CBP over {binaryCbp.Count} seeds: mean {binaryCbp.Average():F2}%, range {binaryCbp.Min():F2}-{binaryCbp.Max():F2}%.");
                md.AppendLine();
            }
            var cbpSeconds = netRows.Where(r => r.Method == "CBP").Average(r => r.Seconds);
            var floatSeconds = netRows.Single(r => r.Method == "float").Seconds;
            md.AppendLine($"Training time per epoch, CBP / float (same passes, same code path): {cbpSeconds / floatSeconds:F2}x.");
            md.AppendLine();
            if (network == "small CNN")
            {
                md.AppendLine("Targets for CBP on the small CNN (binary within 1.0 point of float, ternary within 0.5, 1-bit and 2-bit shift within 0.3; at least as " +
                    "accurate as straight-through while CFS/s < 0.01 and straight-through's is not):");
                md.AppendLine();
                foreach (var constraint in netRows.Where(r => r.Method == "CBP").Select(r => r.Constraint).Distinct())
                {
                    double target = constraint == WeightConstraint.Binary.Name ? 1.0 : constraint == WeightConstraint.Ternary.Name ? 0.5 : 0.3;
                    var cbp = netRows.Where(r => r.Method == "CBP" && r.Constraint == constraint).ToList();
                    var st = netRows.Where(r => r.Method == "straight-through" && r.Constraint == constraint).ToList();
                    double gap = (floatAccuracy - cbp.Average(r => r.Accuracy)) * 100;
                    bool beatsSt = cbp.Average(r => r.Accuracy) >= st.Average(r => r.Accuracy);
                    bool onLevels = cbp.All(r => r.NormalizedCfs < 0.01) && st.All(r => r.NormalizedCfs >= 0.01);
                    md.AppendLine($"- {constraint}: {Math.Abs(gap):F2} points {(gap > 0 ? "below" : "above")} float (target: at most {target:F1} below): **{(gap <= target ? "met" : "missed")}**; " +
                        $"CBP {(beatsSt ? ">=" : "<")} straight-through ({cbp.Average(r => r.Accuracy) * 100:F2}% vs {st.Average(r => r.Accuracy) * 100:F2}%); " +
                        $"CFS/s CBP {cbp.Average(r => r.NormalizedCfs):F4} vs straight-through {st.Average(r => r.NormalizedCfs):F4}: **{(onLevels ? "met" : "missed")}**.");
                }
                md.AppendLine();
            }
        }
        foreach (string chart in charts)
        {
            md.AppendLine($"![{Path.GetFileNameWithoutExtension(chart)}]({chart})");
            md.AppendLine();
        }
        md.AppendLine("## Speed and size (same run)");
        md.AppendLine();
        md.Append(SpeedMarkdown(speed));
        if (scoring is not null)
        {
            md.AppendLine(scoring.Replace("# Scoring speed", "### Scoring speed", StringComparison.Ordinal));
        }
        md.AppendLine("The CUDA figures are measured on a GPU machine by the scoring-gpu suite: [scoring-gpu.md](scoring-gpu.md).");
        return md.ToString();
    }

    /// <summary>The speed and size table (float versus INT4 in ONNX Runtime, share of the SGEMM peak, bytes per storage) and the peak memory.</summary>
    /// <param name="speed">What <see cref="MeasureSpeedAndSize"/> measured.</param>
    /// <param name="peakMemoryNote">What the process's peak memory covers, after "this benchmark process, ".</param>
    public static string SpeedMarkdown(SpeedAndSize speed, string peakMemoryNote = "all training runs included")
    {
        var md = new StringBuilder();
        md.AppendLine($"ONNX Runtime SGEMM on this machine ([rows, 2048] x [2048, 2048], one single-threaded run per core on slices of the rows, best of three after a warm-up): {speed.GemmGflops:F1} GFLOP/s.");
        md.AppendLine();
        md.AppendLine("| network | FLOPs/row | float rows/s (ORT) | INT4 rows/s (ORT) | INT4 / float | INT4, % of SGEMM peak | Float32 bytes | Int8 | Int4 | Int2 |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var n in speed.Networks)
        {
            md.AppendLine($"| {n.Network} | {n.FlopsPerRow / 1e6:F2} M | {n.FloatRowsPerSecond:N0} | {n.CompactRowsPerSecond:N0} | {n.CompactRowsPerSecond / n.FloatRowsPerSecond:F2}x | " +
                $"{n.CompactRowsPerSecond * n.FlopsPerRow / (speed.GemmGflops * 1e9) * 100:F0}% | {n.Bytes[WeightStorage.Float32]:N0} | " +
                $"{n.Bytes[WeightStorage.Int8]:N0} ({(double)n.Bytes[WeightStorage.Int8] / n.Bytes[WeightStorage.Float32]:F3}) | " +
                $"{n.Bytes[WeightStorage.Int4]:N0} ({(double)n.Bytes[WeightStorage.Int4] / n.Bytes[WeightStorage.Float32]:F3}) | " +
                $"{n.Bytes[WeightStorage.Int2]:N0} ({(double)n.Bytes[WeightStorage.Int2] / n.Bytes[WeightStorage.Float32]:F3}) |");
        }
        md.AppendLine();
        md.AppendLine($"Peak memory (working set) of this benchmark process, {peakMemoryNote}: {Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0):N0} MiB.");
        md.AppendLine();
        return md.ToString();
    }

    /// <summary>One grouped bar chart per network: test accuracy per constraint and method, float as a line.</summary>
    /// <param name="rows">The study's results.</param>
    /// <param name="folder">Where the PNGs go.</param>
    /// <param name="prefix">Prefix of the file names.</param>
    /// <returns>The file names written.</returns>
    public static List<string> Charts(List<StudyRow> rows, string folder, string prefix = "")
    {
        var files = new List<string>();
        string[] methods = { "naive rounding", "naive rounding + BN re-estimation", "straight-through", "CBP" };
        var colors = new[] { ScottPlot.Colors.Gray, ScottPlot.Colors.SteelBlue, ScottPlot.Colors.Orange, ScottPlot.Colors.Green };
        foreach (var network in rows.Select(r => r.Network).Distinct())
        {
            var plot = new ScottPlot.Plot();
            var netRows = rows.Where(r => r.Network == network).ToList();
            var constraints = netRows.Where(r => r.Constraint != "-").Select(r => r.Constraint).Distinct().ToList();
            for (int m = 0; m < methods.Length; m++)
            {
                var bars = constraints.Select((c, i) => new ScottPlot.Bar
                {
                    Position = (i * (methods.Length + 1)) + m,
                    Value = netRows.Where(r => r.Constraint == c && r.Method == methods[m]).Average(r => r.Accuracy) * 100,
                    FillColor = colors[m],
                }).ToList();
                var series = plot.Add.Bars(bars);
                series.LegendText = methods[m];
                series.Color = colors[m];
            }
            var floatLine = plot.Add.HorizontalLine(netRows.Single(r => r.Method == "float").Accuracy * 100);
            floatLine.LegendText = "float";
            floatLine.Color = ScottPlot.Colors.Black;
            floatLine.LinePattern = ScottPlot.LinePattern.Dashed;
            plot.Axes.Bottom.SetTicks(constraints.Select((_, i) => (double)(i * (methods.Length + 1)) + 1.5).ToArray(), constraints.ToArray());
            double low = netRows.Min(r => r.Accuracy) * 100;
            plot.Axes.SetLimitsY(Math.Max(0, low - 5), 112);
            plot.Title($"{network}: test accuracy of the exported ONNX model");
            plot.YLabel("test accuracy, %");
            plot.ShowLegend(ScottPlot.Alignment.UpperRight);
            string file = prefix + "accuracy-" + (network.StartsWith("small", StringComparison.Ordinal) ? "small-cnn" : "mlp") + ".png";
            plot.SavePng(Path.Combine(folder, file), 900, 520);
            files.Add(file);
        }
        return files;
    }

    private static string Cell(double value, string format) => double.IsNaN(value) ? "-" : value.ToString(format, CultureInfo.InvariantCulture);

    private static double Median(int repetitions, Func<double> measure)
    {
        var values = Enumerable.Range(0, repetitions).Select(_ => measure()).Order().ToList();
        return values[values.Count / 2];
    }
}
