using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Cbp.Samples;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// Rows per second of the fitted transformer's batched Transform and of reloaded models, against raw batched ONNX
/// Runtime on the same graph (the ceiling of this path) and ML.NET's ApplyOnnxModel (one run per row), in one run.
/// </summary>
internal static class ScoringBenchmark
{
    public static string Run(bool quick)
    {
        int rows = quick ? 2000 : 20000, repetitions = quick ? 2 : 3;
        var report = new StringBuilder();
        report.AppendLine("# Scoring speed: CbpQuantize's batched Transform versus raw ONNX Runtime and ApplyOnnxModel");
        report.AppendLine();
        report.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `bash build/bench.sh{(quick ? " --quick" : "")} --suite scoring` on " +
            $"{Environment.ProcessorCount} cores ({RuntimeInformation.OSDescription.Trim()}), ONNX Runtime {OrtEnv.Instance().GetVersionString()} CPU execution provider, " +
            $"default session settings everywhere. {rows:N0} Fashion-MNIST rows (the shipped subset, repeated) in an in-memory IDataView; every path reads the Score " +
            $"column of every row. Binary weights (INT4 codes). Median of {repetitions} runs, the paths taking turns run by run, after one warm-up run each.");
        report.AppendLine();
        report.AppendLine("Raw ORT reads a float array directly (no IDataView): \"defaults\" is one Run per 256 rows with ONNX Runtime's default threads " +
            "(one per physical core); \"sliced\" is what CbpQuantize does with a batch: one single-threaded Run per core on a slice of it, concurrently. " +
            "ApplyOnnxModel runs the same network, per-row form (the graph a saved model holds), one Run per row, with ML.NET's default threads.");
        report.AppendLine();
        report.AppendLine("| network | fitted Transform, rows/s | reloaded with LoadWithBatchedScoring | reloaded plain (Model.Load) | raw ORT, defaults | raw ORT, sliced | ApplyOnnxModel | Transform / raw defaults | Transform / raw sliced | Transform / ApplyOnnxModel |");
        report.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, architecture, shape) in new (string, CbpArchitecture, int[])[]
        {
            ("MLP 784-512-512-10", CbpArchitecture.Mlp(new[] { 512, 512 }), new[] { 784 }),
            ("small CNN (28x28)", CbpArchitecture.SmallCnn(), new[] { 1, 28, 28 }),
        })
        {
            var r = Measure(architecture, shape, rows, repetitions);
            report.AppendLine($"| {name} | {r["fitted"]:N0} | {r["batched reload"]:N0} | {r["plain reload"]:N0} | {r["raw"]:N0} | {r["raw sliced"]:N0} | {r["apply"]:N0} | " +
                $"{r["fitted"] / r["raw"]:F2}x | {r["fitted"] / r["raw sliced"]:F2}x | {r["fitted"] / r["apply"]:F2}x |");
            Console.WriteLine($"{name}: " + string.Join(", ", r.Select(kv => $"{kv.Key} {kv.Value:N0} rows/s")));
        }
        return report.ToString();
    }

    private static Dictionary<string, double> Measure(CbpArchitecture architecture, int[] shape, int rows, int repetitions)
    {
        var ml = new MLContext(seed: 1);
        using var model = FitBinary(ml, architecture, shape);
        var cbp = model.LastTransformer;
        var test = FashionMnistData.Read(FashionMnistData.SubsetDirectory, "t10k");
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => test[i % test.Count]).ToList());
        string folder = Path.Combine(Path.GetTempPath(), "cbp-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            string zip = Path.Combine(folder, "model.zip"), perRow = Path.Combine(folder, "per-row.onnx");
            ml.Model.Save(cbp, data.Schema, zip);
            File.WriteAllBytes(perRow, cbp.PerRowScoringGraph);
            var plain = ml.Model.Load(zip, out _);
            using var batched = (IDisposable)ml.Model.LoadWithBatchedScoring(zip, out _);
            var apply = ml.Transforms.ApplyOnnxModel("Score", "Features", perRow).Fit(data);
            using var raw = new InferenceSession(cbp.BatchedScoringGraph);
            using var singleThread = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
            using var rawSliced = new InferenceSession(cbp.BatchedScoringGraph, singleThread);
            var flat = Enumerable.Range(0, rows).SelectMany(i => test[i % test.Count].Features).ToArray();

            var paths = new Dictionary<string, Func<long>>
            {
                ["fitted"] = () => ScoreColumn.ReadAll(cbp.Transform(data)),
                ["batched reload"] = () => ScoreColumn.ReadAll(((ITransformer)batched).Transform(data)),
                ["plain reload"] = () => ScoreColumn.ReadAll(plain.Transform(data)),
                ["apply"] = () => ScoreColumn.ReadAll(apply.Transform(data)),
                ["raw"] = () => RawBatched(raw, flat, rows, 784, 256, 1),
                ["raw sliced"] = () => RawBatched(rawSliced, flat, rows, 784, 256, Environment.ProcessorCount),
            };
            return TakingTurns.MedianPerSecond(paths, rows, repetitions);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The scored network: one CBP epoch on 640 shipped images with binary weights (INT4 codes), trained on the CPU. Speed does
    /// not depend on how well it is trained.
    /// </summary>
    internal static TransformerChain<CbpQuantizeTransformer> FitBinary(MLContext ml, CbpArchitecture architecture, int[] shape)
    {
        var images = FashionMnistData.Read(FashionMnistData.SubsetDirectory, "train", 640);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            Architecture = architecture,
            InputShape = shape,
            PretrainEpochs = 0,
            Epochs = 1,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }));
        return pipeline.Fit(ml.Data.LoadFromEnumerable(images));
    }

    /// <summary>One batch of <paramref name="batch"/> rows at a time, split into <paramref name="slices"/> concurrent Runs; the input is not copied.</summary>
    internal static long RawBatched(InferenceSession session, float[] flat, int rows, int width, int batch, int slices)
    {
        string input = session.InputMetadata.Keys.First();
        var outputs = session.OutputMetadata.Keys.ToArray();
        for (int start = 0; start < rows; start += batch)
        {
            int count = Math.Min(batch, rows - start), sliceRows = (count + slices - 1) / slices, first = start;
            System.Threading.Tasks.Parallel.For(0, slices, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = slices }, slice =>
            {
                int begin = first + (slice * sliceRows), n = Math.Min(sliceRows, first + count - begin);
                if (n <= 0)
                {
                    return;
                }
                using var options = new RunOptions();
                using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, flat.AsMemory(begin * width, n * width), new long[] { n, width });
                using var result = session.Run(options, new[] { input }, new[] { value }, outputs);
            });
        }
        return rows;
    }
}
