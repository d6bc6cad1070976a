namespace Microsoft.ML.Cbp.Training;

/// <summary>What happened in one engine epoch: the progress record that the trainer and later layers surface.</summary>
public sealed record EpochReport
{
    /// <summary>1-based epoch number.</summary>
    public int Epoch { get; init; }

    /// <summary>Training mode of the epoch.</summary>
    public TrainingMode Mode { get; init; }

    /// <summary>Mini-batches in the epoch.</summary>
    public int Batches { get; init; }

    /// <summary>Mean task loss per mini-batch (of the network with <c>Q(w)</c> in constrained modes).</summary>
    public double TaskLoss { get; init; }

    /// <summary>The Lagrangian (task loss + sum lambda c(w)) summed over the epoch's mini-batches: what the plateau detector compares.</summary>
    public double LagrangianSum { get; init; }

    /// <summary>Constraint-function satisfaction at the epoch end: mean <c>c(w)</c> over constrained weights with no window, in weight units.</summary>
    public double Cfs { get; init; }

    /// <summary>CFS with each weight's <c>c(w)</c> divided by its layer scale: comparable across layers and networks.</summary>
    public double NormalizedCfs { get; init; }

    /// <summary>Fraction of constrained latent weights within the on-level tolerance (a fraction of the level gap) of their level.</summary>
    public double FractionOnLevel { get; init; }

    /// <summary>Window counter <c>g</c> after the epoch.</summary>
    public int G { get; init; }

    /// <summary>Window parameter <c>u = 1 - 1/g</c> after the epoch.</summary>
    public double U { get; init; }

    /// <summary>Whether a multiplier update happened at the end of this epoch.</summary>
    public bool MultiplierUpdated { get; init; }

    /// <summary>Mean multiplier over constrained weights.</summary>
    public double MultiplierMean { get; init; }

    /// <summary>Largest multiplier.</summary>
    public double MultiplierMax { get; init; }

    /// <summary>Weight learning rate used during the epoch.</summary>
    public double LearningRate { get; init; }

    /// <summary>Mean loss on the validation data, when given.</summary>
    public double? ValidationLoss { get; init; }

    /// <summary>Classification accuracy on the validation data, when given and the task is classification.</summary>
    public double? ValidationAccuracy { get; init; }

    /// <summary>Wall-clock seconds of the epoch's training steps (validation and statistics excluded).</summary>
    public double Seconds { get; init; }
}
