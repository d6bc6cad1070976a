using System;
using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp;

/// <summary>The phase a <see cref="CbpProgressReport"/> belongs to.</summary>
public enum CbpPhase
{
    /// <summary>Checking and counting the training (and validation) data, and reading it into memory when it is cached.</summary>
    LoadingData,

    /// <summary>Float training before CBP.</summary>
    Pretraining,

    /// <summary>Constrained backpropagation.</summary>
    Cbp,

    /// <summary>Projection onto the levels and export of the compact model.</summary>
    Exporting,
}

/// <summary>
/// Progress of <see cref="CbpQuantizeEstimator.Fit"/>: at the end of every epoch (<see cref="Epoch"/> is set) and, in long
/// epochs, every few seconds within it (<see cref="Epoch"/> is null and <see cref="Batch"/> counts the batches done).
/// </summary>
/// <param name="Phase">What is running.</param>
/// <param name="EpochNumber">1-based epoch of the phase.</param>
/// <param name="Epochs">The phase's epoch budget.</param>
/// <param name="Batch">Mini-batches done in the epoch.</param>
/// <param name="Batches">Mini-batches per epoch.</param>
/// <param name="Epoch">The finished epoch's report (loss, validation accuracy, CFS, g, multipliers, seconds), or null within an epoch.</param>
public sealed record CbpProgressReport(CbpPhase Phase, int EpochNumber, int Epochs, int Batch, int Batches, EpochReport? Epoch)
{
    /// <summary>Training rows per second in the epoch so far (or over the finished epoch), every rank's rows together under data-parallel training; null when not measured (loading, exporting).</summary>
    public double? RowsPerSecond { get; init; }

    /// <summary>One line for logs.</summary>
    public override string ToString()
    {
        if (Epoch is not { } e)
        {
            string speed = RowsPerSecond is double r ? $", {r:N0} rows/s" : "";
            return $"{Phase} epoch {EpochNumber}/{Epochs}: batch {Batch}/{Batches} ({(double)Batch / Math.Max(1, Batches):P0}){speed}";
        }
        string validation = e.ValidationAccuracy is double a ? $", validation accuracy {a:P2}" : e.ValidationLoss is double l ? $", validation loss {l:G4}" : "";
        string constraint = Phase == CbpPhase.Cbp ? $", CFS {e.Cfs:G3} (scale-normalised {e.NormalizedCfs:G3}), on level {e.FractionOnLevel:P1}, g {e.G}, multipliers mean {e.MultiplierMean:G3} max {e.MultiplierMax:G3}" : "";
        string rate = RowsPerSecond is double rows ? $", {rows:N0} rows/s" : "";
        return $"{Phase} epoch {EpochNumber}/{Epochs}: loss {e.TaskLoss:G4}{validation}{constraint}, {e.Seconds:F1} s{rate}";
    }
}
