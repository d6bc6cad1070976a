using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Constraints;

/// <summary>
/// The quantizer <c>Q</c> of a <see cref="WeightConstraint"/> on tensors: maps each weight to the nearest
/// allowed value <c>s * f</c> (thresholds at the midpoints, a tie goes to the upper level), with the
/// straight-through estimator for the backward pass.
/// </summary>
/// <remarks>
/// Holds the level set as small tensors on one device; create one per device and dispose it when done.
/// All tensor arguments are in weight units; <c>scale</c> is a scalar tensor (per-layer scale) or a tensor
/// that broadcasts against the weight (per-output-channel scale, shape <c>[out, 1, ...]</c>).
/// </remarks>
internal sealed class Quantizer : IDisposable
{
    private readonly Tensor _levels;
    private readonly Tensor _thresholds;
    private readonly Tensor _gapAbove;
    private readonly Tensor _gapBelow;
    private readonly double[] _levelValues;
    private readonly double[] _thresholdValues;
    private readonly bool _uniform;
    private readonly double _inverseStep;
    private readonly double _indexOffset;

    /// <summary>Creates the quantizer of <paramref name="constraint"/> with its tensors on <paramref name="device"/>.</summary>
    /// <param name="constraint">The level set.</param>
    /// <param name="device">Where the weights live; <see langword="null"/> for the CPU.</param>
    public Quantizer(WeightConstraint constraint, Device? device = null)
    {
        Constraint = constraint ?? throw new ArgumentNullException(nameof(constraint));
        device ??= CPU;
        var levels = constraint.Levels.ToArray();
        int n = levels.Length;
        // Gap of the interval above / below each level; beyond the outer levels there is no interval, so
        // the window never applies there (infinite gap).
        var above = new float[n];
        var below = new float[n];
        for (int i = 0; i < n; i++)
        {
            above[i] = i + 1 < n ? (float)(levels[i + 1] - levels[i]) : float.PositiveInfinity;
            below[i] = i > 0 ? (float)(levels[i] - levels[i - 1]) : float.PositiveInfinity;
        }
        _levels = tensor(levels.Select(v => (float)v).ToArray(), device: device);
        _thresholds = tensor(constraint.Thresholds.Select(v => (float)v).ToArray(), device: device);
        _gapAbove = tensor(above, device: device);
        _gapBelow = tensor(below, device: device);
        _levelValues = levels;
        _thresholdValues = constraint.Thresholds.ToArray();
        // Evenly spaced levels (binary, ternary, Uniform(bits)) have closed forms; others use one step per threshold.
        double step = (levels[n - 1] - levels[0]) / (n - 1);
        _uniform = Enumerable.Range(0, n - 1).All(i => Math.Abs(levels[i + 1] - levels[i] - step) <= 1e-12 * step);
        _inverseStep = 1.0 / step;
        _indexOffset = -levels[0] / step;
    }

    /// <summary>The level set this quantizer implements.</summary>
    public WeightConstraint Constraint { get; }

    /// <summary>Index of the nearest level of each normalised value <paramref name="x"/> (int64, same shape).</summary>
    /// <param name="x">Weights divided by their scale.</param>
    public Tensor NearestIndex(Tensor x) => bucketize(x, _thresholds, outInt32: false, right: true);

    /// <summary>The normalised level at each index returned by <see cref="NearestIndex"/>.</summary>
    /// <param name="index">Level indices.</param>
    public Tensor LevelAt(Tensor index) => _levels[index];

    /// <summary>
    /// The gap of the interval between a value's nearest level and its other neighbour: the interval above the
    /// level where <paramref name="above"/> is true, below it elsewhere; infinite beyond the outer levels.
    /// </summary>
    /// <param name="index">Nearest-level indices.</param>
    /// <param name="above">Where the value is at or above its nearest level.</param>
    public Tensor IntervalGap(Tensor index, Tensor above) => where(above, _gapAbove[index], _gapBelow[index]);

    /// <summary>
    /// <c>Q(x)</c> in normalised units, element-wise: the level nearest to each <paramref name="x"/> (a tie goes to the
    /// upper level). Uses only element-wise arithmetic (no search, no gather), so it costs a few passes over the tensor.
    /// </summary>
    /// <param name="x">Weights divided by their scale.</param>
    public Tensor NormalizedLevel(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var scope = NewDisposeScope();
        Tensor level;
        if (_uniform)
        {
            // Nearest index floor(y + 1/2) of the continuous index y; level = (index - offset) / (1 / step), which is
            // exact for the built-in grids (offset and 1/step are integers or halves).
            level = ContinuousIndex(x).AddScalar_(0.5).floor_().SubScalar_(_indexOffset).DivScalar_(_inverseStep);
        }
        else
        {
            // Walk up the thresholds: where x reaches threshold k the level becomes q_k+1. level * (1 - h) + q * h with
            // h in {0, 1} selects exactly (no rounding accumulates, unlike summing the gaps).
            level = ScalarArithmetic.FullLike(x, _levelValues[0]);
            for (int k = 0; k < _thresholdValues.Length; k++)
            {
                var reached = StepUp(x, _thresholdValues[k], tieGoesUp: true);
                level.mul_(reached.neg().AddScalar_(1)).AddScaled_(reached, _levelValues[k + 1]);
            }
        }
        return level.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// 1 where <paramref name="x"/> lies inside the unconstrained window of width <paramref name="u"/> (docs/CBP.md section 3:
    /// strictly closer to a threshold than <c>(1 - u) d / 2</c>, so <c>c(x) &gt; d u</c>), 0 elsewhere; never 1 beyond the
    /// outer levels. Element-wise arithmetic only.
    /// </summary>
    /// <param name="x">Weights divided by their scale.</param>
    /// <param name="u">Window parameter in [0, 1]; 1 means no window.</param>
    public Tensor WindowIndicator(Tensor x, double u)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!(u >= 0 && u <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(u), u, "The window parameter u must be in [0, 1].");
        }
        if (u >= 1)
        {
            return zeros_like(x);
        }
        using var scope = NewDisposeScope();
        double halfWidth = (1 - u) / 2;
        Tensor inside;
        if (_uniform)
        {
            // Distance from the interval's midpoint in units of the gap; 1/2 on a level and beyond the outer levels.
            var y = ContinuousIndex(x);
            var fromMidpoint = y.sub(y.floor()).SubScalar_(0.5).abs_();
            inside = fromMidpoint.neg_().AddScalar_(halfWidth).sign_().ClampScalar_(0, 1);
        }
        else
        {
            inside = zeros_like(x);
            for (int k = 0; k < _thresholdValues.Length; k++)
            {
                double width = halfWidth * (_levelValues[k + 1] - _levelValues[k]);
                inside.Add_(StepUp(x, _thresholdValues[k] - width, tieGoesUp: false))
                      .sub_(StepUp(x, _thresholdValues[k] + width, tieGoesUp: true));
            }
        }
        return inside.MoveToOuterDisposeScope();
    }

    /// <summary>The continuous level index <c>(x - q_0) / d</c> of an evenly spaced grid, clamped to the outer levels.</summary>
    private Tensor ContinuousIndex(Tensor x) => x.SubScalar(_levelValues[0]).MulScalar_(_inverseStep).ClampScalar_(0, _levelValues.Length - 1);

    /// <summary>1 where <c>x &gt; t</c>, 0 where <c>x &lt; t</c>, and at <c>x = t</c> 1 if <paramref name="tieGoesUp"/> else 0.</summary>
    private static Tensor StepUp(Tensor x, double t, bool tieGoesUp)
    {
        var sign = x.SubScalar(t).sign_();
        return tieGoesUp ? sign.AddScalar_(1).ClampScalar_(0, 1) : sign.ClampScalar_(0, 1);
    }

    /// <summary><c>Q(w)</c>: each weight replaced by its nearest allowed value <c>scale * f</c>. No gradient flows.</summary>
    /// <param name="weight">Weights, any shape.</param>
    /// <param name="scale">The layer scale (scalar, or broadcastable per output channel).</param>
    public Tensor Quantize(Tensor weight, Tensor scale)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return NormalizedLevel(weight / scale).mul_(scale).MoveToOuterDisposeScope();
    }

    /// <summary>Releases the level tensors.</summary>
    public void Dispose()
    {
        _levels.Dispose();
        _thresholds.Dispose();
        _gapAbove.Dispose();
        _gapBelow.Dispose();
    }
}
