namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// The one statement of each training default that the engine (<see cref="CbpTrainerOptions"/>) and the estimator's
/// options share: both initialise their properties from here, so the two can never disagree. The values were measured
/// on Fashion-MNIST (docs/benchmarks/accuracy-study*.md); docs/CBP.md lists where they depart from the paper and why.
/// </summary>
internal static class TrainingDefaults
{
    /// <summary>Weight learning rate of SGD (paper: 1e-3, tuned for ImageNet runs of many epochs).</summary>
    public const double LearningRate = 0.01;

    /// <summary>
    /// Adam learning rate of the multiplier ascent (paper: 1e-4). 0.1 pinned the small CNN's ternary weights to levels
    /// before the task chose them (67.0% versus 89.4% with 0.01, float 89.2%).
    /// </summary>
    public const double MultiplierLearningRate = 0.01;

    /// <summary>Epochs after which a multiplier update happens even without a plateau (paper: 20).</summary>
    public const int MultiplierUpdatePeriod = 2;

    /// <summary>Fraction of the epoch budget at its end over which the learning rate anneals to 0 (paper: none).</summary>
    public const double FinalAnnealFraction = 0.25;

    /// <summary>How each layer's scale is chosen (paper: mean |w| per layer, which equals this for binary levels).</summary>
    public const ScaleMode Scale = ScaleMode.MinimumError;
}
