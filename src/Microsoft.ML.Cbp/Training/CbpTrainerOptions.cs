using System;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// Settings of the CBP training engine. Defaults follow the paper where it suits small problems and say so
/// where they differ (the paper's values were tuned for ImageNet runs of many epochs).
/// </summary>
public sealed class CbpTrainerOptions
{
    /// <summary>What to train: CBP (default), the straight-through baseline, or full precision.</summary>
    public TrainingMode Mode { get; set; } = TrainingMode.Cbp;

    /// <summary>Number of engine epochs (see <see cref="BatchesPerEpoch"/>). Default 30.</summary>
    public int Epochs { get; set; } = 30;

    /// <summary>
    /// Mini-batches per engine epoch; <see langword="null"/> (default) means one full pass over the data.
    /// The plateau detector and the multiplier updates work per epoch, so short epochs make the window
    /// schedule advance faster on small data.
    /// </summary>
    public int? BatchesPerEpoch { get; set; }

    /// <summary>Weight learning rate of SGD. Default 0.01 (the paper's 1e-3 suits ImageNet runs of many epochs; docs/CBP.md).</summary>
    public double LearningRate { get; set; } = TrainingDefaults.LearningRate;

    /// <summary>SGD momentum. Default 0.9 (the paper's).</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>L2 weight decay on weight tensors (two or more dimensions); biases and normalisation parameters get none. Default 1e-4.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>Every gradient element is clipped to [-GradientClip, GradientClip] before the step. Default 1.</summary>
    public double GradientClip { get; set; } = 1.0;

    /// <summary>Latent constrained weights are clamped to [-LatentClamp, LatentClamp] after each step. Default 1.</summary>
    public double LatentClamp { get; set; } = 1.0;

    /// <summary>
    /// Adam learning rate of the multiplier ascent. Default 0.01. The paper uses 1e-4 for ImageNet, where
    /// hundreds of updates happen; with tens of updates the multipliers then stay near 1e-3 and never
    /// dominate the task gradient (docs/CBP.md section 8); 0.1 pins a CNN's weights to levels before the task chose them.
    /// </summary>
    public double MultiplierLearningRate { get; set; } = TrainingDefaults.MultiplierLearningRate;

    /// <summary>A multiplier update happens at the latest after this many epochs without one. Default 2 (paper: 20), so the window narrows within short budgets.</summary>
    public int MultiplierUpdatePeriod { get; set; } = TrainingDefaults.MultiplierUpdatePeriod;

    /// <summary>The window counter value at which the learning rate drops. Default 20 (the paper's).</summary>
    public int LearningRateDropAtG { get; set; } = 20;

    /// <summary>The learning-rate multiplier applied at <see cref="LearningRateDropAtG"/>. Default 0.1 (the paper's).</summary>
    public double LearningRateDropFactor { get; set; } = 0.1;

    /// <summary>
    /// Fraction of the epoch budget at its end over which the weight learning rate anneals to zero along a
    /// half cosine. Default 0.25. With a fixed rate, the sign-like constraint force makes latent weights chatter
    /// around their level by a few learning-rate steps (momentum amplifies it); annealing lets them settle on
    /// the level, so CFS truly reaches zero within the budget. 0 keeps the paper's schedule (no annealing).
    /// </summary>
    public double FinalAnnealFraction { get; set; } = TrainingDefaults.FinalAnnealFraction;

    /// <summary>
    /// How each layer's scale is chosen. Default <see cref="ScaleMode.MinimumError"/>: the least rounding error, which is
    /// mean |w| (the paper's choice) for binary levels; <see cref="ScaleMode.PerLayer"/> keeps mean |w| for every level set.
    /// </summary>
    public ScaleMode ScaleMode { get; set; } = TrainingDefaults.Scale;

    /// <summary>
    /// Stop early once the scale-normalised CFS (CFS divided by the layer scale, averaged over constrained
    /// weights) falls below this value at an epoch end. Default 0 (never stop early); 0.001 is a good choice
    /// when every epoch counts.
    /// </summary>
    public double StopAtNormalizedCfs { get; set; }

    /// <summary>
    /// A latent weight counts as "on its level" when it is within this fraction of the level gap of its nearest
    /// level (reported as <see cref="EpochReport.FractionOnLevel"/>). Default 0.01.
    /// </summary>
    public double OnLevelTolerance { get; set; } = 0.01;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        OptionChecks.Defined(Mode, nameof(Mode));
        OptionChecks.Positive(Epochs, nameof(Epochs));
        if (BatchesPerEpoch is int b && b < 1)
        {
            throw new ArgumentException($"BatchesPerEpoch must be at least 1 or null for a full pass; got {b}.", nameof(BatchesPerEpoch));
        }
        OptionChecks.Positive(LearningRate, nameof(LearningRate));
        OptionChecks.InRange(Momentum, 0, 1, nameof(Momentum), upperOpen: true);
        OptionChecks.InRange(WeightDecay, 0, double.MaxValue, nameof(WeightDecay));
        OptionChecks.Positive(GradientClip, nameof(GradientClip));
        OptionChecks.Positive(LatentClamp, nameof(LatentClamp));
        OptionChecks.InRange(MultiplierLearningRate, 0, double.MaxValue, nameof(MultiplierLearningRate));
        OptionChecks.Positive(MultiplierUpdatePeriod, nameof(MultiplierUpdatePeriod));
        if (LearningRateDropAtG < 2)
        {
            throw new ArgumentException($"LearningRateDropAtG must be at least 2; got {LearningRateDropAtG}.", nameof(LearningRateDropAtG));
        }
        if (!(LearningRateDropFactor > 0 && LearningRateDropFactor <= 1))
        {
            throw new ArgumentException($"LearningRateDropFactor must be in (0, 1]; got {LearningRateDropFactor}.", nameof(LearningRateDropFactor));
        }
        OptionChecks.InRange(FinalAnnealFraction, 0, 1, nameof(FinalAnnealFraction));
        OptionChecks.Defined(ScaleMode, nameof(ScaleMode));
        OptionChecks.InRange(StopAtNormalizedCfs, 0, double.MaxValue, nameof(StopAtNormalizedCfs));
        OptionChecks.InRange(OnLevelTolerance, 0, 0.5, nameof(OnLevelTolerance));
    }
}
