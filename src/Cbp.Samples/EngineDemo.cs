using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp;
using Microsoft.ML.Cbp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Cbp.Samples;

/// <summary>One row of the engine demo's comparison.</summary>
/// <param name="Method">Float, naive rounding, straight-through or CBP.</param>
/// <param name="Accuracy">Test accuracy of the network as it would be exported.</param>
/// <param name="NormalizedCfs">Scale-normalised CFS of the latent weights (NaN where there are none).</param>
/// <param name="FractionOnLevel">Fraction of latent weights within 1% of a level gap of their level.</param>
/// <param name="Seconds">Training seconds.</param>
public sealed record EngineDemoRow(string Method, double Accuracy, double NormalizedCfs, double FractionOnLevel, double Seconds);

/// <summary>The engine on <see cref="SyntheticTask"/>: float, naive rounding, straight-through and CBP from one checkpoint.</summary>
public static class EngineDemo
{
    /// <summary>Mini-batches per engine epoch in the demo (short epochs make the window schedule advance on small data).</summary>
    public const int BatchesPerEpoch = 5;

    /// <summary>Runs the comparison.</summary>
    /// <param name="constraint">The level set of the hidden layer.</param>
    /// <param name="epochs">Engine epochs of the constrained runs (each <see cref="BatchesPerEpoch"/> batches).</param>
    /// <param name="progress">Receives every epoch report of the constrained runs.</param>
    public static IReadOnlyList<EngineDemoRow> Run(WeightConstraint constraint, int epochs, Action<EpochReport>? progress = null)
    {
        using var task = new SyntheticTask();
        using var train = new InMemoryBatchSource(task.TrainFeatures, task.TrainLabels, 100, shuffle: true, seed: 1);
        using var test = new InMemoryBatchSource(task.TestFeatures, task.TestLabels, 1000, shuffle: false);
        Func<Tensor, Tensor, Tensor> loss = (output, labels) => nn.functional.cross_entropy(output, labels);
        var rows = new List<EngineDemoRow>();

        var model = task.CreateNetwork();
        using (var floatTrainer = new CbpTrainer(model, loss, Array.Empty<string>(), constraint,
            new CbpTrainerOptions { Mode = TrainingMode.Float, Epochs = 20, LearningRate = 1e-2 }))
        {
            var reports = floatTrainer.Fit(train);
            rows.Add(new EngineDemoRow("float", floatTrainer.Evaluate(test).Accuracy ?? double.NaN, double.NaN, double.NaN, reports.Sum(r => r.Seconds)));
        }
        var checkpoint = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope());
        var names = ConstrainedLayerSelection.Select(model);

        model.load_state_dict(checkpoint);
        Baselines.RoundToLevels(model, names, constraint);
        rows.Add(new EngineDemoRow("naive rounding", ModelEvaluation.Evaluate(model, loss, test).Accuracy ?? double.NaN, 0, 1, 0));
        Baselines.ReestimateBatchNorm(model, train);
        rows.Add(new EngineDemoRow("naive rounding + BN re-est.", ModelEvaluation.Evaluate(model, loss, test).Accuracy ?? double.NaN, 0, 1, 0));

        foreach (var (mode, label) in new[] { (TrainingMode.StraightThrough, "straight-through"), (TrainingMode.Cbp, "CBP") })
        {
            model.load_state_dict(checkpoint);
            using var trainer = new CbpTrainer(model, loss, names, constraint, new CbpTrainerOptions
            {
                Mode = mode,
                Epochs = epochs,
                BatchesPerEpoch = BatchesPerEpoch,
                // The demo's settings for its short synthetic runs (the paper's weight rate and scale, a fast multiplier rate).
                LearningRate = 1e-3,
                MultiplierLearningRate = 0.1,
                ScaleMode = ScaleMode.PerLayer,
            });
            var reports = trainer.Fit(train, test, progress is null ? null : new SynchronousProgress(progress));
            var final = reports[^1];
            rows.Add(new EngineDemoRow(label, trainer.Evaluate(test).Accuracy ?? double.NaN, final.NormalizedCfs, final.FractionOnLevel, reports.Sum(r => r.Seconds)));
        }
        foreach (var tensor in checkpoint.Values)
        {
            tensor.Dispose();
        }
        model.Dispose();
        return rows;
    }

    private sealed class SynchronousProgress(Action<EpochReport> action) : IProgress<EpochReport>
    {
        public void Report(EpochReport value) => action(value);
    }
}
