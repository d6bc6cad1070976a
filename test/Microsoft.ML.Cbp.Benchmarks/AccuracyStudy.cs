using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Cbp.Samples;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Cbp.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>Settings of an accuracy study run.</summary>
/// <param name="DataDirectory">Fashion-MNIST IDX folder.</param>
/// <param name="TrainRows">Training images used (the first ones).</param>
/// <param name="TestRows">Test images used.</param>
/// <param name="PretrainEpochs">Float epochs of the shared checkpoint.</param>
/// <param name="Epochs">Epochs (passes) of every method after the checkpoint: float, straight-through, CBP.</param>
/// <param name="Seeds">Seeds of the binary small-CNN runs (the first seed is used everywhere else).</param>
/// <param name="Constraints">Level sets studied.</param>
/// <param name="Networks">"cnn", "mlp" or both.</param>
public sealed record StudySettings(string DataDirectory, int TrainRows, int TestRows, int PretrainEpochs, int Epochs, int[] Seeds,
    WeightConstraint[] Constraints, string[] Networks)
{
    /// <summary>Mini-batch size of every run.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Schedule epochs per pass for straight-through and CBP (as the estimator does).</summary>
    public int ScheduleEpochsPerPass { get; init; } = 4;

    /// <summary>How constrained layers' scales are chosen, for naive rounding, straight-through and CBP alike. Default mean |w| per layer (the paper's).</summary>
    public ScaleMode ScaleMode { get; init; } = ScaleMode.PerLayer;

    /// <summary>Adam learning rate of CBP's multipliers (the estimator's default).</summary>
    public double MultiplierLearningRate { get; init; } = 0.01;
}

/// <summary>One measured result of the study.</summary>
/// <param name="Network">The network.</param>
/// <param name="Constraint">The level set ("-" for float).</param>
/// <param name="Method">float, naive rounding, naive rounding + BN re-estimation, straight-through, CBP.</param>
/// <param name="Seed">Shuffling seed of the run after the checkpoint.</param>
/// <param name="Accuracy">Test accuracy of the exported ONNX model scored by ONNX Runtime.</param>
/// <param name="Cfs">CFS before the final projection (weight units).</param>
/// <param name="NormalizedCfs">CFS divided by the layer scale.</param>
/// <param name="FractionOnLevel">Fraction of latent weights on their level before the final projection.</param>
/// <param name="Epochs">Passes over the training data after the checkpoint.</param>
/// <param name="Seconds">Training seconds after the checkpoint.</param>
public sealed record StudyRow(string Network, string Constraint, string Method, int Seed, double Accuracy, double Cfs, double NormalizedCfs,
    double FractionOnLevel, int Epochs, double Seconds);

/// <summary>
/// CBP against its baselines from one float checkpoint with equal epoch budgets: float training continued, naive
/// rounding with and without batch-norm re-estimation, straight-through (multipliers held at zero) and CBP, for each
/// level set; accuracy of the exported ONNX model scored by ONNX Runtime.
/// </summary>
public static class AccuracyStudy
{
    /// <summary>Runs the study.</summary>
    /// <param name="settings">What to run.</param>
    /// <param name="log">Receives progress lines.</param>
    public static List<StudyRow> Run(StudySettings settings, Action<string> log)
    {
        var train = FashionMnistData.Read(settings.DataDirectory, "train", settings.TrainRows);
        var test = FashionMnistData.Read(settings.DataDirectory, "t10k", settings.TestRows);
        var rows = new List<StudyRow>();
        foreach (string network in settings.Networks)
        {
            rows.AddRange(RunNetwork(network, settings, train, test, log));
        }
        return rows;
    }

    private static IEnumerable<StudyRow> RunNetwork(string network, StudySettings settings, List<FashionMnistImage> train, List<FashionMnistImage> test, Action<string> log)
    {
        var (name, architecture, shape) = network == "cnn"
            ? ("small CNN", CbpArchitecture.SmallCnn(), new long[] { 1, 28, 28 })
            : ("MLP 784-512-512-10 (BN)", CbpArchitecture.Mlp(new[] { 512, 512 }), new long[] { 784 });
        int seed = settings.Seeds[0];
        random.manual_seed(seed);
        var model = architecture.Build(shape, 10, seed);
        using var module = new OnnxGraphModule(model);
        using var trainX = tensor(train.SelectMany(i => i.Features).ToArray()).reshape(new long[] { train.Count }.Concat(shape).ToArray());
        using var trainY = tensor(train.Select(i => (long)Array.IndexOf(FashionMnistData.ClassNames, i.Label)).ToArray());
        var testX = test.SelectMany(i => i.Features).ToArray();
        var testY = test.Select(i => Array.IndexOf(FashionMnistData.ClassNames, i.Label)).ToArray();
        Func<Tensor, Tensor, Tensor> loss = (o, y) => nn.functional.cross_entropy(o, y);
        int batches = (train.Count + settings.BatchSize - 1) / settings.BatchSize;

        // The shared float checkpoint.
        using (var data = new InMemoryBatchSource(trainX, trainY, settings.BatchSize, shuffle: true, seed: seed))
        using (var pretrain = new CbpTrainer(module, loss, Array.Empty<string>(), WeightConstraint.Binary,
            new CbpTrainerOptions { Mode = TrainingMode.Float, Epochs = settings.PretrainEpochs, LearningRate = 0.05 }))
        {
            pretrain.Fit(data);
        }
        var checkpoint = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
        var selected = ConstrainedInitializerSelection.Select(model);
        var names = selected.Select(module.MemberName).ToList();
        log($"{name}: float checkpoint after {settings.PretrainEpochs} epochs on {train.Count:N0} images; constrained: {string.Join(", ", selected)}.");
        try
        {
            var results = new List<StudyRow>();
            void Add(StudyRow row)
            {
                results.Add(row);
                log($"  {row.Constraint,-12} {row.Method,-36} seed {row.Seed}: accuracy {row.Accuracy:P2}, CFS/s {row.NormalizedCfs:F4}, on level {row.FractionOnLevel:P1}, {row.Seconds:F0} s");
            }

            // Float training continued for the same budget.
            Restore(module, checkpoint);
            var floatRun = Train(module, loss, trainX, trainY, names, WeightConstraint.Binary, TrainingMode.Float, settings, seed, batches);
            Add(new StudyRow(name, "-", "float", seed, Accuracy(module, Array.Empty<QuantizedInitializer>(), testX, testY, shape),
                double.NaN, double.NaN, double.NaN, settings.Epochs, floatRun.Seconds));

            foreach (var constraint in settings.Constraints)
            {
                Restore(module, checkpoint);
                var scales = Baselines.RoundToLevels(module, names, constraint, settings.ScaleMode);
                Add(new StudyRow(name, constraint.Name, "naive rounding", seed, Accuracy(module, Quantized(module, scales, constraint), testX, testY, shape), 0, 0, 1, 0, 0));
                using (var data = new InMemoryBatchSource(trainX, trainY, settings.BatchSize, shuffle: false))
                {
                    module.ReestimateBatchNorm(data.Pass(0).Select(b => b.Features));
                }
                Add(new StudyRow(name, constraint.Name, "naive rounding + BN re-estimation", seed, Accuracy(module, Quantized(module, scales, constraint), testX, testY, shape), 0, 0, 1, 0, 0));

                var seeds = network == "cnn" && constraint.Name == WeightConstraint.Binary.Name ? settings.Seeds : new[] { seed };
                foreach (var mode in new[] { TrainingMode.StraightThrough, TrainingMode.Cbp })
                {
                    foreach (int runSeed in seeds)
                    {
                        Restore(module, checkpoint);
                        var run = Train(module, loss, trainX, trainY, names, constraint, mode, settings, runSeed, batches);
                        Add(new StudyRow(name, constraint.Name, mode == TrainingMode.Cbp ? "CBP" : "straight-through", runSeed,
                            Accuracy(module, run.Quantized, testX, testY, shape), run.Cfs, run.NormalizedCfs, run.FractionOnLevel, settings.Epochs, run.Seconds));
                    }
                }
            }
            return results;
        }
        finally
        {
            foreach (var t in checkpoint.Values)
            {
                t.Dispose();
            }
        }
    }

    private sealed record RunResult(double Seconds, double Cfs, double NormalizedCfs, double FractionOnLevel, List<QuantizedInitializer> Quantized);

    private static RunResult Train(OnnxGraphModule module, Func<Tensor, Tensor, Tensor> loss, Tensor x, Tensor y, List<string> names,
        WeightConstraint constraint, TrainingMode mode, StudySettings settings, int seed, int batches)
    {
        random.manual_seed(seed);
        int steps = mode == TrainingMode.Float ? 1 : Math.Min(settings.ScheduleEpochsPerPass, batches);
        using var data = new InMemoryBatchSource(x, y, settings.BatchSize, shuffle: true, seed: seed);
        using var trainer = new CbpTrainer(module, loss, names, constraint, new CbpTrainerOptions
        {
            Mode = mode,
            Epochs = settings.Epochs * steps,
            BatchesPerEpoch = (batches + steps - 1) / steps,
            LearningRate = 0.01,
            MultiplierLearningRate = settings.MultiplierLearningRate,
            ScaleMode = settings.ScaleMode,
        });
        var clock = Stopwatch.StartNew();
        trainer.Fit(data);
        double seconds = clock.Elapsed.TotalSeconds;
        if (mode == TrainingMode.Float)
        {
            return new RunResult(seconds, double.NaN, double.NaN, double.NaN, new List<QuantizedInitializer>());
        }
        var statistics = trainer.MeasureConstraint();
        trainer.ProjectToLevels();
        var quantized = trainer.ConstrainedParameters
            .Select(p => new QuantizedInitializer(module.InitializerName(p.Name), constraint, p.Scale.cpu().data<float>().ToArray())).ToList();
        return new RunResult(seconds, statistics.Cfs, statistics.NormalizedCfs, statistics.FractionOnLevel, quantized);
    }

    private static List<QuantizedInitializer> Quantized(OnnxGraphModule module, IReadOnlyDictionary<string, float[]> scales, WeightConstraint constraint) =>
        scales.Select(kv => new QuantizedInitializer(module.InitializerName(kv.Key), constraint, kv.Value)).ToList();

    /// <summary>Exports the module (constrained layers as INT4 codes) and scores the test set with ONNX Runtime.</summary>
    private static double Accuracy(OnnxGraphModule module, IReadOnlyList<QuantizedInitializer> quantized, float[] x, int[] y, long[] shape)
    {
        var exported = QuantizedOnnxExporter.Export(module, quantized, quantized.Count == 0 ? WeightStorage.Float32 : WeightStorage.Int4);
        using var session = OnnxScoringSession.Create(OnnxModelFile.ToBytes(exported));
        var (logits, width) = session.Score(x, y.Length);
        int correct = 0;
        for (int row = 0; row < y.Length; row++)
        {
            var span = logits.AsSpan(row * width, width);
            int best = 0;
            for (int c = 1; c < width; c++)
            {
                best = span[c] > span[best] ? c : best;
            }
            correct += best == y[row] ? 1 : 0;
        }
        return (double)correct / y.Length;
    }

    private static void Restore(OnnxGraphModule module, Dictionary<string, Tensor> checkpoint)
    {
        using var noGrad = no_grad();
        foreach (var (key, value) in module.state_dict())
        {
            value.copy_(checkpoint[key]);
        }
    }
}
