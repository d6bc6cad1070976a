using System;
using System.Collections.Generic;
using System.IO;
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

    private sealed record Study(string Title, CbpArchitecture Architecture, int TrainRows, int PretrainEpochs, int Epochs, int Seeds);

    /// <summary>Runs the study for the small CNN (<paramref name="seeds"/> seeds) and, unless <paramref name="networks"/> says
    /// otherwise, ResNet-20 at one seed; returns the Markdown report.</summary>
    public static string Report(bool quick, int seeds, string networks, string command)
    {
        var ml = new MLContext(seed: 1);
        bool wholeTest = !quick && File.Exists(Path.Combine(FashionMnistData.FullDataDirectory, "t10k-images-idx3-ubyte.gz"));
        var train = FashionMnistData.Read(FashionMnistData.SubsetDirectory, "train", quick ? 1000 : int.MaxValue);
        var test = ml.Data.LoadFromEnumerable(wholeTest
            ? FashionMnistData.Read(FashionMnistData.FullDataDirectory, "t10k")
            : FashionMnistData.Read(FashionMnistData.SubsetDirectory, "t10k", quick ? 300 : int.MaxValue));
        long testRows = test.GetRowCount() ?? 0;
        var studies = new List<Study>();
        if (networks is "all" or "cnn")
        {
            studies.Add(new Study("Small CNN", CbpArchitecture.SmallCnn(), train.Count, quick ? 1 : 5, quick ? 2 : 12, seeds));
        }
        if (networks is "all" or "resnet20")
        {
            studies.Add(new Study("ResNet-20", CbpArchitecture.ResNet(20), quick ? 500 : 3000, quick ? 1 : 3, quick ? 1 : 6, 1));
        }
        if (studies.Count == 0)
        {
            throw new ArgumentException($"--network {networks} is not one of all, cnn, resnet20.");
        }

        var text = new StringBuilder();
        text.AppendLine("# Mixed precision under a size budget: accuracy against compact bytes");
        text.AppendLine();
        text.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `{command}` on {Environment.ProcessorCount} cores ({RuntimeInformation.OSDescription.Trim()}). " +
            $"Training data: the Fashion-MNIST subset shipped with the samples (first rows as stated per network); accuracy: the fitted transformer's (ONNX Runtime) " +
            $"on {testRows:N0} test images ({(wholeTest ? "the whole Fashion-MNIST test set" : "the subset's test images")}). " +
            "Every run is trained by the estimator with the first and last layers float. Uniform runs give every constrained layer one level set in its narrowest " +
            "storage; budget runs set MaxModelBytes to each uniform file's size and to the points halfway between (default MixedConstraints: 2-bit shift, ternary, binary).");
        foreach (var study in studies)
        {
            text.AppendLine();
            text.Append(RunStudy(ml, study, train, test));
        }
        return text.ToString();
    }

    private static string RunStudy(MLContext ml, Study study, List<FashionMnistImage> trainImages, IDataView test)
    {
        var train = ml.Data.LoadFromEnumerable(trainImages.Take(study.TrainRows));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        var keyedTrain = keys.Transform(train);
        var keyedTest = keys.Transform(test);
        var runs = new List<Run>();
        Run Fit(string name, int seed, Action<CbpQuantizeOptions> configure)
        {
            var options = new CbpQuantizeOptions
            {
                InputShape = new[] { 1, 28, 28 },
                Architecture = study.Architecture,
                PretrainEpochs = study.PretrainEpochs,
                Epochs = study.Epochs,
                Seed = seed,
                TrainingDevice = CbpTrainingDevice.Cpu,
            };
            configure(options);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var transformer = ml.Transforms.CbpQuantize(options).Fit(keyedTrain);
            double seconds = clock.Elapsed.TotalSeconds;
            var metrics = ml.MulticlassClassification.Evaluate(transformer.Transform(keyedTest));
            var report = transformer.TrainingReport!;
            var chosen = report.WeightLayers.Where(l => l.State is CbpWeightLayerState.Constrained or CbpWeightLayerState.FloatByBudget).ToList();
            string layers = chosen.Count <= 4
                ? string.Join(", ", chosen.Select(l => $"{l.Name.Replace(".weight", "", StringComparison.Ordinal)} {l.Precision} ({l.BitsPerWeight} bit)"))
                : string.Join(", ", chosen.GroupBy(l => $"{l.Precision} ({l.BitsPerWeight} bit)").Select(g => $"{g.Count()} layers {g.Key}"));
            var run = new Run(name, options.MaxModelBytes, seed, report.CompactModelBytes, metrics.MicroAccuracy, layers, seconds);
            Console.WriteLine($"{study.Title}, {run.Name} seed {seed}: {run.Bytes:N0} bytes, accuracy {run.Accuracy:P2} ({layers}), {seconds:F0} s");
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
            for (int seed = 1; seed <= study.Seeds; seed++)
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
            for (int seed = 1; seed <= study.Seeds; seed++)
            {
                Fit(name, seed, o => o.MaxModelBytes = bytes);
            }
        }

        var text = new StringBuilder();
        text.AppendLine($"## {study.Title}");
        text.AppendLine();
        text.AppendLine($"{study.TrainRows:N0} training images, {study.PretrainEpochs} float + {study.Epochs} CBP epochs, {study.Seeds} seed(s); " +
            $"{runs.Sum(r => r.Seconds) / 60:N0} minutes of training in all.");
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
