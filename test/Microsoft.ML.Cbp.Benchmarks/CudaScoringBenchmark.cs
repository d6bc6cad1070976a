using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Cbp.Samples;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// The scoring figures on a GPU, with ONNX Runtime's CUDA execution provider, in two steps. <see cref="Prepare"/> runs where
/// TorchSharp is (it trains and exports the models into a folder); <see cref="Run"/> needs only the .NET runtime, ONNX
/// Runtime's CUDA build and the CUDA 13 libraries, so it can run on a GPU machine that has no libtorch. Before it measures,
/// it checks that the CUDA paths really run on CUDA and score like the CPU.
/// </summary>
public static class CudaScoringBenchmark
{
    private static readonly (string Key, string Name, CbpArchitecture Architecture, int[] Shape)[] Networks =
    {
        ("mlp", "MLP 784-512-512-10", CbpArchitecture.Mlp(new[] { 512, 512 }), new[] { 784 }),
        ("cnn", "small CNN (28x28)", CbpArchitecture.SmallCnn(), new[] { 1, 28, 28 }),
    };

    /// <summary>Writes, per network, the saved model zip, its per-row graph, and float and INT4 exports of the same weights.</summary>
    /// <param name="folder">Where the files go (created).</param>
    public static void Prepare(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var (key, name, architecture, shape) in Networks)
        {
            var ml = new MLContext(seed: 1);
            using var model = ScoringBenchmark.FitBinary(ml, architecture, shape);
            var test = FashionMnistData.Read(FashionMnistData.SubsetDirectory, "t10k", 16);
            ml.Model.Save(model.LastTransformer, ml.Data.LoadFromEnumerable(test).Schema, Path.Combine(folder, key + ".zip"));
            File.WriteAllBytes(Path.Combine(folder, key + "-per-row.onnx"), model.LastTransformer.PerRowScoringGraph);
            var exports = AccuracyStudyReport.BinaryRoundedExports(architecture, shape.Select(d => (long)d).ToArray());
            File.WriteAllBytes(Path.Combine(folder, key + "-float32.onnx"), exports[WeightStorage.Float32]);
            File.WriteAllBytes(Path.Combine(folder, key + "-int4.onnx"), exports[WeightStorage.Int4]);
            Console.WriteLine($"{name}: prepared in {folder}");
        }
    }

    /// <summary>Checks the CUDA paths against the CPU, then measures rows/s; returns the Markdown report.</summary>
    /// <param name="folder">What <see cref="Prepare"/> wrote.</param>
    /// <param name="gpu">The CUDA device id; null runs every "CUDA" path on the CPU instead (a dry run of this code on a machine without a GPU).</param>
    /// <param name="rows">Rows scored per measurement.</param>
    /// <param name="repetitions">Measured runs per path (after one warm-up run); the median is reported.</param>
    /// <exception cref="InvalidOperationException">A CUDA path did not run on CUDA or disagreed with the CPU.</exception>
    /// <param name="command">How the report was produced, for its first line.</param>
    public static string Run(string folder, int? gpu, int rows, int repetitions, string command)
    {
        var test = FashionMnistData.Read(FashionMnistData.SubsetDirectory, "t10k");
        var images = Enumerable.Range(0, rows).Select(i => test[i % test.Count]).ToList();
        var flat = images.SelectMany(i => i.Features).ToArray();
        var report = new StringBuilder();
        report.AppendLine("# Scoring speed on a GPU: ONNX Runtime's CUDA execution provider");
        report.AppendLine();
        report.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with {command} on {(gpu == null ? "the CPU (a dry run: every \"CUDA\" column ran on the CPU)" : GpuName())}, {Environment.ProcessorCount} CPU cores ({RuntimeInformation.OSDescription.Trim()}), " +
            $"ONNX Runtime {OrtEnv.Instance().GetVersionString()} (Microsoft.ML.OnnxRuntime.Gpu, CUDA 13). {rows:N0} Fashion-MNIST rows (the shipped subset, " +
            $"repeated) in an in-memory IDataView; every path reads the Score column of every row. Binary weights. Median of {repetitions} runs, the paths " +
            "taking turns run by run, after one warm-up run each. CPU columns: the same machine's CPU execution provider, for scale.");
        report.AppendLine();
        report.AppendLine("Checked first, in the same run: every CUDA path reports CUDA (no silent fallback) and its scores match the CPU execution provider's.");
        report.AppendLine();
        report.AppendLine("| network | LoadWithBatchedScoring on CUDA, rows/s | plain Model.Load on CUDA | ApplyOnnxModel on CUDA | raw ORT on CUDA, 256 rows per Run | " +
            "LoadWithBatchedScoring on CPU | batched CUDA / raw CUDA | batched CUDA / ApplyOnnxModel CUDA | batched CUDA / batched CPU | max abs CUDA - CPU score |");
        report.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var compact = new StringBuilder();
        compact.AppendLine("| network | float model on CUDA, rows/s | INT4 model on CUDA, rows/s | INT4 / float on CUDA | max abs INT4 - float logit |");
        compact.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var (key, name, _, shape) in Networks)
        {
            var r = Measure(folder, key, gpu, images, flat, repetitions);
            report.AppendLine($"| {name} | {r["batched cuda"]:N0} | {r["plain cuda"]:N0} | {r["apply cuda"]:N0} | {r["raw cuda"]:N0} | {r["batched cpu"]:N0} | " +
                $"{r["batched cuda"] / r["raw cuda"]:F2}x | {r["batched cuda"] / r["apply cuda"]:F2}x | {r["batched cuda"] / r["batched cpu"]:F2}x | {r["difference"]:G2} |");
            var c = MeasureCompact(folder, key, gpu, flat, rows, repetitions);
            compact.AppendLine($"| {name} | {c["float"]:N0} | {c["int4"]:N0} | {c["int4"] / c["float"]:F2}x | {c["difference"]:G2} |");
            Console.WriteLine($"{name}: " + string.Join(", ", r.Concat(c).Select(kv => $"{kv.Key} {kv.Value:G4}")));
        }
        report.AppendLine();
        report.AppendLine("The compact model against the float model (the same binary weights, exported with Int4 and Float32 storage), one OnnxScoringSession " +
            "on CUDA each, 256 rows per Run:");
        report.AppendLine();
        report.Append(compact);
        return report.ToString();
    }

    private static Dictionary<string, double> Measure(string folder, string key, int? gpu, List<FashionMnistImage> images, float[] flat, int repetitions)
    {
        int rows = images.Count;
        string zip = Path.Combine(folder, key + ".zip"), perRow = Path.Combine(folder, key + "-per-row.onnx");
        var cpuContext = new MLContext(seed: 1);
        var gpuContext = new MLContext(seed: 1) { GpuDeviceId = gpu, FallbackToCpu = false };
        var data = cpuContext.Data.LoadFromEnumerable(images);
        var plainGpu = gpuContext.Model.Load(zip, out _);
        using var batchedGpu = (IDisposable)gpuContext.Model.LoadWithBatchedScoring(zip, out _, gpuDeviceId: gpu, fallbackToCpu: false);
        using var batchedCpu = (IDisposable)cpuContext.Model.LoadWithBatchedScoring(zip, out _);
        var applyGpu = gpuContext.Transforms.ApplyOnnxModel("Score", "Features", perRow, gpuDeviceId: gpu, fallbackToCpu: false).Fit(data);
        var cbpGpu = CbpStep(batchedGpu);
        if (cbpGpu.ExecutionProvider != (gpu == null ? "CPU" : "CUDA"))
        {
            throw new InvalidOperationException($"LoadWithBatchedScoring with GPU {gpu} scores on {cbpGpu.ExecutionProvider}.");
        }
        using var cudaOptions = new SessionOptions();
        if (gpu is int id)
        {
            cudaOptions.AppendExecutionProvider_CUDA(id);
        }
        using var raw = new InferenceSession(cbpGpu.BatchedScoringGraph, cudaOptions);

        // Correctness before speed: the CUDA paths score like the CPU.
        var onCpu = Scores(((ITransformer)batchedCpu).Transform(data));
        double difference = 0;
        foreach (var (path, scored) in new (string, IDataView)[] { ("LoadWithBatchedScoring", ((ITransformer)batchedGpu).Transform(data)), ("Model.Load", plainGpu.Transform(data)), ("ApplyOnnxModel", applyGpu.Transform(data)) })
        {
            var onGpu = Scores(scored);
            double d = onGpu.Zip(onCpu).Max(p => Math.Abs(p.First - p.Second));
            if (onGpu.Length != onCpu.Length || !(d < 1e-4))
            {
                throw new InvalidOperationException($"{path} on CUDA disagrees with the CPU: {onGpu.Length} vs {onCpu.Length} scores, max difference {d}.");
            }
            difference = Math.Max(difference, d);
        }

        var paths = new Dictionary<string, Func<long>>
        {
            ["batched cuda"] = () => ScoreColumn.ReadAll(((ITransformer)batchedGpu).Transform(data)),
            ["plain cuda"] = () => ScoreColumn.ReadAll(plainGpu.Transform(data)),
            ["apply cuda"] = () => ScoreColumn.ReadAll(applyGpu.Transform(data)),
            ["raw cuda"] = () => ScoringBenchmark.RawBatched(raw, flat, rows, 784, 256, 1),
            ["batched cpu"] = () => ScoreColumn.ReadAll(((ITransformer)batchedCpu).Transform(data)),
        };
        var result = TakingTurns.MedianPerSecond(paths, rows, repetitions);
        result["difference"] = difference;
        return result;
    }

    private static Dictionary<string, double> MeasureCompact(string folder, string key, int? gpu, float[] flat, int rows, int repetitions)
    {
        using var floatSession = OnnxScoringSession.Create(File.ReadAllBytes(Path.Combine(folder, key + "-float32.onnx")), gpu, fallbackToCpu: false);
        using var int4Session = OnnxScoringSession.Create(File.ReadAllBytes(Path.Combine(folder, key + "-int4.onnx")), gpu, fallbackToCpu: false);
        var a = floatSession.Score(flat, rows).Outputs;
        var b = int4Session.Score(flat, rows).Outputs;
        var paths = new Dictionary<string, Func<long>>
        {
            ["float"] = () => floatSession.Score(flat, rows).Outputs.Length,
            ["int4"] = () => int4Session.Score(flat, rows).Outputs.Length,
        };
        var result = TakingTurns.MedianPerSecond(paths, a.Length, repetitions);
        foreach (var k in paths.Keys)
        {
            result[k] *= (double)rows / a.Length;
        }
        result["difference"] = a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
        return result;
    }

    /// <summary>The CbpQuantize step of a reloaded model: the model itself, or the last step of its chain.</summary>
    private static CbpQuantizeTransformer CbpStep(object model) =>
        model as CbpQuantizeTransformer ?? (model as TransformerChain<ITransformer>)?.LastTransformer as CbpQuantizeTransformer
        ?? throw new InvalidOperationException($"The reloaded model ({model.GetType().Name}) does not end with CbpQuantize.");

    private static float[] Scores(IDataView scored) =>
        scored.GetColumn<float[]>("Score").SelectMany(s => s).ToArray();

    private static string GpuName()
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("nvidia-smi", "--query-gpu=name,driver_version --format=csv,noheader") { RedirectStandardOutput = true })!;
            string line = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return line.Length > 0 ? $"GPU {line.Replace(", ", ", driver ", StringComparison.Ordinal)}" : "an unnamed GPU";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "a GPU (nvidia-smi not found)";
        }
    }
}
