using System;
using System.Collections.Generic;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>The engine's state between epochs (<see cref="CbpTrainer.CaptureState"/>): CPU copies of its tensors, and its counters.</summary>
/// <param name="Tensors">Momentum buffers, latent weights, scales, multipliers and their Adam moments, by name.</param>
/// <param name="AdamSteps">Multiplier ascent steps taken, by constrained parameter.</param>
/// <param name="Schedule">The pseudo-Lagrange schedule.</param>
/// <param name="History">The epoch reports so far.</param>
/// <param name="Pass">Passes opened so far.</param>
/// <param name="StreamBatches">Batches used from the current pass when epochs are shorter than a pass; -1 when no pass is open.</param>
internal sealed record TrainerState(
    IReadOnlyDictionary<string, Tensor> Tensors, IReadOnlyDictionary<string, int> AdamSteps, ScheduleState Schedule, IReadOnlyList<EpochReport> History, int Pass, int StreamBatches)
    : IDisposable
{
    /// <summary>Releases the tensors.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors.Values)
        {
            t.Dispose();
        }
    }
}

/// <summary>The pseudo-Lagrange schedule's state (<see cref="PseudoLagrangeSchedule"/>).</summary>
/// <param name="G">The window counter.</param>
/// <param name="Updates">Multiplier updates so far.</param>
/// <param name="EpochsSinceUpdate">Epochs since the last update.</param>
/// <param name="LearningRateFactor">The learning-rate factor.</param>
/// <param name="PreviousLagrangian">The plateau detector's memory, or null.</param>
internal sealed record ScheduleState(int G, int Updates, int EpochsSinceUpdate, double LearningRateFactor, double? PreviousLagrangian);
