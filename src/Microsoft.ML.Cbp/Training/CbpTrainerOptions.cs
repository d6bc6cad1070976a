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

    /// <summary>Weight learning rate of SGD. Default 1e-3 (the paper's).</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>SGD momentum. Default 0.9 (the paper's).</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>L2 weight decay on weight tensors (two or more dimensions); biases and normalisation parameters get none. Default 1e-4.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>Every gradient element is clipped to [-GradientClip, GradientClip] before the step. Default 1.</summary>
    public double GradientClip { get; set; } = 1.0;

    /// <summary>Latent constrained weights are clamped to [-LatentClamp, LatentClamp] after each step. Default 1.</summary>
    public double LatentClamp { get; set; } = 1.0;

    /// <summary>
    /// Adam learning rate of the multiplier ascent. Default 0.1. The paper uses 1e-4 for ImageNet, where
    /// hundreds of updates happen; with tens of updates the multipliers then stay near 1e-3 and never
    /// dominate the task gradient (CBP.md section 8).
    /// </summary>
    public double MultiplierLearningRate { get; set; } = 0.1;

    /// <summary>A multiplier update happens at the latest after this many epochs without one. Default 2 (paper: 20), so the window narrows within short budgets.</summary>
    public int MultiplierUpdatePeriod { get; set; } = 2;

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
    public double FinalAnnealFraction { get; set; } = 0.25;

    /// <summary>How each layer's scale is chosen. Default <see cref="ScaleMode.PerLayer"/> (mean |w|, the paper's).</summary>
    public ScaleMode ScaleMode { get; set; } = ScaleMode.PerLayer;

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
        if (!Enum.IsDefined(Mode))
        {
            throw new ArgumentException($"Mode {Mode} is not a TrainingMode (Cbp, StraightThrough or Float).", nameof(Mode));
        }
        RequirePositive(Epochs, nameof(Epochs));
        if (BatchesPerEpoch is int b && b < 1)
        {
            throw new ArgumentException($"BatchesPerEpoch must be at least 1 or null for a full pass; got {b}.", nameof(BatchesPerEpoch));
        }
        RequirePositive(LearningRate, nameof(LearningRate));
        RequireRange(Momentum, 0, 1, nameof(Momentum), upperOpen: true);
        RequireRange(WeightDecay, 0, double.MaxValue, nameof(WeightDecay));
        RequirePositive(GradientClip, nameof(GradientClip));
        RequirePositive(LatentClamp, nameof(LatentClamp));
        RequireRange(MultiplierLearningRate, 0, double.MaxValue, nameof(MultiplierLearningRate));
        RequirePositive(MultiplierUpdatePeriod, nameof(MultiplierUpdatePeriod));
        if (LearningRateDropAtG < 2)
        {
            throw new ArgumentException($"LearningRateDropAtG must be at least 2; got {LearningRateDropAtG}.", nameof(LearningRateDropAtG));
        }
        if (!(LearningRateDropFactor > 0 && LearningRateDropFactor <= 1))
        {
            throw new ArgumentException($"LearningRateDropFactor must be in (0, 1]; got {LearningRateDropFactor}.", nameof(LearningRateDropFactor));
        }
        RequireRange(FinalAnnealFraction, 0, 1, nameof(FinalAnnealFraction));
        if (!Enum.IsDefined(ScaleMode))
        {
            throw new ArgumentException($"ScaleMode {ScaleMode} is not PerLayer, PerOutputChannel or MinimumError.", nameof(ScaleMode));
        }
        RequireRange(StopAtNormalizedCfs, 0, double.MaxValue, nameof(StopAtNormalizedCfs));
        RequireRange(OnLevelTolerance, 0, 0.5, nameof(OnLevelTolerance));
    }

    private static void RequirePositive(double value, string name)
    {
        if (!(value > 0) || double.IsInfinity(value))
        {
            throw new ArgumentException($"{name} must be a finite number greater than 0; got {value}.", name);
        }
    }

    private static void RequireRange(double value, double low, double high, string name, bool upperOpen = false)
    {
        bool ok = value >= low && (upperOpen ? value < high : value <= high) && double.IsFinite(value);
        if (!ok)
        {
            throw new ArgumentException($"{name} must be in [{low}, {high}{(upperOpen ? ")" : "]")}; got {value}.", name);
        }
    }
}
