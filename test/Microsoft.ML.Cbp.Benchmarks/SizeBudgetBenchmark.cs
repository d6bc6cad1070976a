using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Cbp.Samples;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// Accuracy against compact bytes: the small CNN on the Fashion-MNIST subset trained by the estimator with one level set for
/// every constrained layer (binary at 1 bit, ternary at 2, 2-bit shift at 4) and with MaxModelBytes set to each uniform
/// file's size and to the points between them. Accuracy is the fitted transformer's on the test images (ONNX Runtime).
/// </summary>
internal static class SizeBudgetBenchmark
{
    private sealed record Run(string Name, long? Budget, int Seed, long Bytes, double Accuracy, string Layers, double Seconds);

    public static string Report(bool quick, int seeds, string command)
    {
        var ml = new MLContext(seed: 1);
        int trainRows = quick ? 1000 : int.MaxValue, testRows = quick ? 300 : int.MaxValue;
        var train = ml.Data.LoadFromEnumerable(FashionMnistData.Read(FashionMnistData.SubsetDirectory, "train", trainRows));
        var test = ml.Data.LoadFromEnumerable(FashionMnistData.Read(FashionMnistData.SubsetDirectory, "t10k", testRows));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        var keyedTrain = keys.Transform(train);
        var keyedTest = keys.Transform(test);
        var runs = new List<Run>();
        Run Fit(string name, int seed, Action<CbpQuantizeOptions> configure)
        {
            var options = new CbpQuantizeOptions
            {
                InputShape = new[] { 1, 28, 28 },
                Architecture = CbpArchitecture.SmallCnn(),
                PretrainEpochs = quick ? 1 : 5,
                Epochs = quick ? 2 : 12,
                Seed = seed,
                TrainingDevice = CbpTrainingDevice.Cpu,
            };
            configure(options);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var transformer = ml.Transforms.CbpQuantize(options).Fit(keyedTrain);
            double seconds = clock.Elapsed.TotalSeconds;
            var metrics = ml.MulticlassClassification.Evaluate(transformer.Transform(keyedTest));
            var report = transformer.TrainingReport!;
            string layers = string.Join(", ", report.WeightLayers.Where(l => l.State is CbpWeightLayerState.Constrained or CbpWeightLayerState.FloatByBudget)
                .Select(l => $"{l.Name.Replace(".weight", "", StringComparison.Ordinal)} {l.Precision} ({l.BitsPerWeight} bit)"));
            var run = new Run(name, options.MaxModelBytes, seed, report.CompactModelBytes, metrics.MicroAccuracy, layers, seconds);
            Console.WriteLine($"{run.Name} seed {seed}: {run.Bytes:N0} bytes, accuracy {run.Accuracy:P2} ({layers}), {seconds:F0} s");
            runs.Add(run);
            return run;
        }
        var uniform = new (string Name, WeightConstraint Constraint, WeightStorage Storage)[]
        {
            ("binary (1 bit)", WeightConstraint.Binary, WeightStorage.OneBit),
            ("ternary (2 bits)", WeightConstraint.Ternary, WeightStorage.Int2),
            ("2-bit shift (4 bits)", WeightConstraint.TwoBitShift, WeightStorage.Int4),
        };
        var sizes = new List<long>();
        foreach (var (name, constraint, storage) in uniform)
        {
            for (int seed = 1; seed <= seeds; seed++)
            {
                var run = Fit("uniform " + name, seed, o => { o.Constraint = constraint; o.WeightStorage = storage; });
                if (seed == 1)
                {
                    sizes.Add(run.Bytes);
                }
            }
        }
        var budgets = new List<(string Name, long Bytes)>();
        for (int i = 0; i < sizes.Count; i++)
        {
            budgets.Add(($"budget = {uniform[i].Name} size", sizes[i]));
            if (i + 1 < sizes.Count)
            {
                budgets.Add(($"budget between {uniform[i].Name} and {uniform[i + 1].Name}", (sizes[i] + sizes[i + 1]) / 2));
            }
        }
        foreach (var (name, bytes) in budgets)
        {
            for (int seed = 1; seed <= seeds; seed++)
            {
                Fit(name, seed, o => o.MaxModelBytes = bytes);
            }
        }

        var text = new StringBuilder();
        text.AppendLine("# Mixed precision under a size budget: accuracy against compact bytes");
        text.AppendLine();
        text.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `{command}` on {Environment.ProcessorCount} cores ({RuntimeInformation.OSDescription.Trim()}): " +
            $"the small CNN on the Fashion-MNIST subset ({(quick ? "1,000" : "6,000")} training images, {(quick ? "300" : "1,000")} test images), " +
            $"{(quick ? "1 float + 2" : "5 float + 12")} CBP epochs, {seeds} seed(s), trained by the estimator (first and last layers float); " +
            "accuracy of the fitted transformer on the test images (ONNX Runtime). Uniform runs store every constrained layer in its narrowest storage; " +
            "budget runs set MaxModelBytes (default MixedConstraints: 2-bit shift, ternary, binary).");
        text.AppendLine();
        text.AppendLine("| run | MaxModelBytes | compact bytes | accuracy (mean over seeds) | per-layer choice (seed 1) |");
        text.AppendLine("|---|---:|---:|---:|---|");
        foreach (var group in runs.GroupBy(r => r.Name))
        {
            var first = group.First();
            double mean = group.Average(r => r.Accuracy);
            string spread = group.Count() > 1 ? $" (sd {Math.Sqrt(group.Sum(r => (r.Accuracy - mean) * (r.Accuracy - mean)) / (group.Count() - 1)):P2})" : "";
            text.AppendLine($"| {group.Key} | {(first.Budget is long b ? b.ToString("N0") : "")} | {first.Bytes:N0} | {mean:P2}{spread} | {first.Layers} |");
        }
        return text.ToString();
    }
}
