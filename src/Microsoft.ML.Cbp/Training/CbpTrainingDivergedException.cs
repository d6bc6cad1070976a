using System;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// Training stopped because the loss became NaN or infinite, or stayed past a million times the loss of the run's first
/// batch for three batches in a row: the weights would otherwise be exported as a NaN or chance-level model. Lower the learning rate.
/// </summary>
public sealed class CbpTrainingDivergedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="mode">What was training (float pre-training, straight-through or CBP).</param>
    /// <param name="epoch">1-based epoch.</param>
    /// <param name="batch">1-based batch within the epoch.</param>
    /// <param name="loss">The loss of that batch.</param>
    /// <param name="firstLoss">The loss of the run's first batch.</param>
    /// <param name="learningRate">The learning rate in use.</param>
    public CbpTrainingDivergedException(TrainingMode mode, int epoch, int batch, double loss, double firstLoss, double learningRate)
        : base($"Training diverged ({mode} training, epoch {epoch}, batch {batch}): the loss is {loss:G4}" +
               (double.IsFinite(loss) ? $", more than {DivergenceFactor:G0} times the first batch's {firstLoss:G4} for {DivergenceBatches} batches in a row" : "") +
               $". Lower the learning rate (it is {learningRate:G3}; try {learningRate / 10:G3}), or check the features for extreme values.")
    {
        Mode = mode;
        Epoch = epoch;
        Batch = batch;
        Loss = loss;
    }

    /// <summary>How many times the first batch's loss counts as divergence.</summary>
    public const double DivergenceFactor = 1e6;

    /// <summary>How many batches in a row past <see cref="DivergenceFactor"/> count as divergence.</summary>
    internal const int DivergenceBatches = 3;

    /// <summary>What was training.</summary>
    public TrainingMode Mode { get; }

    /// <summary>1-based epoch.</summary>
    public int Epoch { get; }

    /// <summary>1-based batch within the epoch.</summary>
    public int Batch { get; }

    /// <summary>The loss that stopped training.</summary>
    public double Loss { get; }
}
