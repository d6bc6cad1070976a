using System;
using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>
/// The one mapping from the estimator's options to the engine's: every knob the estimator exposes is copied here, and
/// every knob it does not expose keeps the engine's default (<see cref="CbpTrainerOptions"/>, whose shared defaults come
/// from <see cref="TrainingDefaults"/>), so no default is stated twice.
/// </summary>
internal static class EngineOptions
{
    /// <summary>Float pre-training epochs when <see cref="CbpQuantizeOptions.PretrainEpochs"/> is null and a built-in architecture trains from scratch.</summary>
    public const int DefaultPretrainEpochsFromScratch = 10;

    /// <summary>The float pre-training epochs: the option, or <see cref="DefaultPretrainEpochsFromScratch"/> for a built-in network and 0 for a pretrained model.</summary>
    /// <param name="options">The estimator's options.</param>
    public static int PretrainEpochs(CbpQuantizeOptions options) =>
        options.PretrainEpochs ?? (IsPretrained(options) ? 0 : DefaultPretrainEpochsFromScratch);

    /// <summary>Whether the options name a pretrained model (and no built-in architecture).</summary>
    /// <param name="options">The estimator's options.</param>
    public static bool IsPretrained(CbpQuantizeOptions options) =>
        options.Architecture is null && (options.PretrainedModelPath is not null || options.PretrainedModelBytes is not null);

    /// <summary>The engine's options for float pre-training.</summary>
    /// <param name="options">The estimator's options.</param>
    /// <param name="epochs">From <see cref="PretrainEpochs"/>.</param>
    public static CbpTrainerOptions Pretraining(CbpQuantizeOptions options, int epochs) => new()
    {
        Mode = TrainingMode.Float,
        Epochs = epochs,
        LearningRate = options.PretrainLearningRate,
    };

    /// <summary>
    /// The engine's options for CBP: each pass over the data is split into <see cref="CbpQuantizeOptions.ScheduleEpochsPerPass"/>
    /// schedule epochs (at most one per mini-batch) of equal length.
    /// </summary>
    /// <param name="options">The estimator's options.</param>
    /// <param name="batchesPerPass">Mini-batches in one pass over the training data.</param>
    public static CbpTrainerOptions Cbp(CbpQuantizeOptions options, int batchesPerPass)
    {
        int steps = Math.Min(options.ScheduleEpochsPerPass, batchesPerPass);
        return new CbpTrainerOptions
        {
            Mode = TrainingMode.Cbp,
            Epochs = options.Epochs * steps,
            BatchesPerEpoch = (batchesPerPass + steps - 1) / steps,
            LearningRate = options.LearningRate,
            MultiplierLearningRate = options.MultiplierLearningRate,
            MultiplierUpdatePeriod = options.MultiplierUpdatePeriod,
            FinalAnnealFraction = options.FinalAnnealFraction,
            ScaleMode = options.ScaleMode,
        };
    }
}
