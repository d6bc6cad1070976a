using System;
using Microsoft.ML.Cbp.Constraints;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// When the pseudo-Lagrange multipliers move, and the window counter <c>g</c> and learning-rate schedule that
/// go with them (docs/CBP.md section 5). Pure bookkeeping: no tensors, so it can be tested on its own.
/// </summary>
/// <remarks>
/// <para>A multiplier update happens once before training starts (with <c>g = 1</c>), then at the end of an
/// epoch whose summed Lagrangian did not decrease compared with the previous epoch (a plateau), or when
/// <see cref="Period"/> epochs have passed since the last update.</para>
/// <para>At each later update, before the ascent step, <c>g</c> grows by 1 while below 10 and by 10 after
/// that (1, 2, ..., 10, 20, 30, ...); when <c>g</c> reaches <see cref="LearningRateDropAtG"/> the weight
/// learning rate is multiplied by <see cref="LearningRateDropFactor"/>. After an update the plateau detector
/// forgets the previous epoch, since the multipliers changed the Lagrangian.</para>
/// </remarks>
internal sealed class PseudoLagrangeSchedule
{
    private double? _previousLagrangian;

    /// <summary>Creates a schedule.</summary>
    /// <param name="period">Update at the latest after this many epochs (the paper uses 20); at least 1.</param>
    /// <param name="learningRateDropAtG">The value of <c>g</c> at which the learning rate drops (paper: 20).</param>
    /// <param name="learningRateDropFactor">The factor applied then (paper: 0.1), in (0, 1].</param>
    public PseudoLagrangeSchedule(int period = 20, int learningRateDropAtG = 20, double learningRateDropFactor = 0.1)
    {
        if (period < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(period), period, "The multiplier update period must be at least 1 epoch.");
        }
        if (learningRateDropAtG < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(learningRateDropAtG), learningRateDropAtG, "The learning-rate drop must happen at g >= 2.");
        }
        if (!(learningRateDropFactor > 0 && learningRateDropFactor <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(learningRateDropFactor), learningRateDropFactor, "The learning-rate drop factor must be in (0, 1].");
        }
        Period = period;
        LearningRateDropAtG = learningRateDropAtG;
        LearningRateDropFactor = learningRateDropFactor;
    }

    /// <summary>Epochs after which an update happens even without a plateau.</summary>
    public int Period { get; }

    /// <summary>The value of <c>g</c> at which the weight learning rate is multiplied by <see cref="LearningRateDropFactor"/>.</summary>
    public int LearningRateDropAtG { get; }

    /// <summary>The learning-rate multiplier applied when <c>g</c> reaches <see cref="LearningRateDropAtG"/>.</summary>
    public double LearningRateDropFactor { get; }

    /// <summary>The window counter <c>g</c> (1 before and at the first update).</summary>
    public int G { get; private set; } = 1;

    /// <summary>The window parameter <c>u = 1 - 1/g</c>.</summary>
    public double U => ConstraintFunction.WindowFromCounter(G);

    /// <summary>How many multiplier updates have happened, the initial one included.</summary>
    public int Updates { get; private set; }

    /// <summary>Epochs finished since the last multiplier update.</summary>
    public int EpochsSinceUpdate { get; private set; }

    /// <summary>The factor on the base weight learning rate (1, then the drop factor once g reached the drop point).</summary>
    public double LearningRateFactor { get; private set; } = 1.0;

    /// <summary>Records the initial multiplier update, made before training starts with <c>g = 1</c>.</summary>
    /// <exception cref="InvalidOperationException">The schedule has already started.</exception>
    public void Start()
    {
        if (Updates != 0)
        {
            throw new InvalidOperationException("The pseudo-Lagrange schedule has already started.");
        }
        Updates = 1;
        EpochsSinceUpdate = 0;
        _previousLagrangian = null;
    }

    /// <summary>
    /// Ends an epoch. Returns <see langword="true"/> when a multiplier update is due now, in which case
    /// <see cref="G"/>, <see cref="U"/> and <see cref="LearningRateFactor"/> have already advanced and the caller
    /// performs the ascent step with the new window.
    /// </summary>
    /// <param name="lagrangianSum">The Lagrangian summed over the epoch's mini-batches.</param>
    public bool EndEpoch(double lagrangianSum)
    {
        if (Updates == 0)
        {
            throw new InvalidOperationException("Call Start() (the initial multiplier update) before the first epoch ends.");
        }
        EpochsSinceUpdate++;
        bool plateau = _previousLagrangian is double previous && !(lagrangianSum < previous);
        _previousLagrangian = lagrangianSum;
        if (!plateau && EpochsSinceUpdate < Period)
        {
            return false;
        }
        int before = G;
        G = G < 10 ? G + 1 : G + 10;
        if (before < LearningRateDropAtG && G >= LearningRateDropAtG)
        {
            LearningRateFactor *= LearningRateDropFactor;
        }
        Updates++;
        EpochsSinceUpdate = 0;
        _previousLagrangian = null;
        return true;
    }

    /// <summary>The schedule's state, for checkpoints.</summary>
    internal ScheduleState CaptureState() => new(G, Updates, EpochsSinceUpdate, LearningRateFactor, _previousLagrangian);

    /// <summary>Continues from a captured state.</summary>
    /// <param name="state">The state.</param>
    internal void RestoreState(ScheduleState state)
    {
        G = state.G;
        Updates = state.Updates;
        EpochsSinceUpdate = state.EpochsSinceUpdate;
        LearningRateFactor = state.LearningRateFactor;
        _previousLagrangian = state.PreviousLagrangian;
    }
}
