using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>One measured network: seconds per training step in each mode, same network, batch and data.</summary>
/// <param name="Network">Which network.</param>
/// <param name="BatchSize">Rows per step.</param>
/// <param name="ConstrainedWeights">Weights under the constraint.</param>
/// <param name="TotalWeights">All parameters.</param>
/// <param name="FloatStepMs">Median milliseconds per float step.</param>
/// <param name="StraightThroughStepMs">Median milliseconds per straight-through step.</param>
/// <param name="CbpStepMs">Median milliseconds per CBP step.</param>
public sealed record StepTiming(string Network, int BatchSize, long ConstrainedWeights, long TotalWeights, double FloatStepMs, double StraightThroughStepMs, double CbpStepMs)
{
    /// <summary>CBP step time over float step time.</summary>
    public double CbpOverFloat => CbpStepMs / FloatStepMs;
}

/// <summary>Training-step time of CBP versus float training, measured through the same engine code path.</summary>
public static class TrainingStepBenchmark
{
    /// <summary>The small CNN of the design (three conv-BN-ReLU-maxpool blocks and a hidden fully-connected layer) for 28x28 inputs.</summary>
    public static nn.Module<Tensor, Tensor> SmallCnn()
    {
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding: 1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding: 1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding: 1), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 10));
    }

    /// <summary>The 784-512-512-10 MLP with batch normalisation.</summary>
    public static nn.Module<Tensor, Tensor> Mlp()
    {
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.BatchNorm1d(512), nn.ReLU(),
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 10));
    }

    /// <summary>Measures one network.</summary>
    /// <param name="name">Label.</param>
    /// <param name="factory">Creates the network (called once per mode with the same seed).</param>
    /// <param name="batchSize">Rows per step.</param>
    /// <param name="steps">Timed steps per repetition.</param>
    /// <param name="repetitions">Timed repetitions (the median is reported); one untimed warm-up precedes them.</param>
    public static StepTiming Measure(string name, Func<nn.Module<Tensor, Tensor>> factory, int batchSize, int steps, int repetitions)
    {
        using var generator = new Generator(3);
        using var x = rand(batchSize * 4, 1, 28, 28, generator: generator);
        using var y = randint(10, new long[] { batchSize * 4 }, generator: generator);
        using var data = new InMemoryBatchSource(x, y, batchSize, shuffle: false);
        var modes = new[] { TrainingMode.Float, TrainingMode.StraightThrough, TrainingMode.Cbp };
        var models = new List<nn.Module<Tensor, Tensor>>();
        var trainers = new List<CbpTrainer>();
        var seconds = modes.ToDictionary(m => m, _ => new List<double>());
        try
        {
            foreach (var mode in modes)
            {
                random.manual_seed(1);
                var model = factory();
                models.Add(model);
                trainers.Add(new CbpTrainer(model, (o, l) => nn.functional.cross_entropy(o, l), ConstrainedLayerSelection.Select(model), WeightConstraint.Binary,
                    new CbpTrainerOptions { Mode = mode, BatchesPerEpoch = steps, Epochs = repetitions + 1, FinalAnnealFraction = 0, LearningRate = 1e-3, MultiplierLearningRate = 0.1, ScaleMode = ScaleMode.PerLayer }));
            }
            // Round-robin: one epoch of each mode per repetition, so drift in the machine's speed hits every mode alike.
            for (int repetition = 0; repetition <= repetitions; repetition++)
            {
                for (int i = 0; i < modes.Length; i++)
                {
                    var report = trainers[i].TrainEpoch(data);
                    if (repetition > 0)
                    {
                        seconds[modes[i]].Add(report.Seconds);
                    }
                }
            }
            var ms = modes.ToDictionary(m => m, m => seconds[m].OrderBy(v => v).ElementAt(seconds[m].Count / 2) / steps * 1000);
            long constrained = trainers.Max(t => t.ConstrainedParameters.Sum(p => p.Count));
            long total = models[0].parameters().Sum(p => p.numel());
            return new StepTiming(name, batchSize, constrained, total, ms[TrainingMode.Float], ms[TrainingMode.StraightThrough], ms[TrainingMode.Cbp]);
        }
        finally
        {
            trainers.ForEach(t => t.Dispose());
            models.ForEach(m => m.Dispose());
        }
    }
}
