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
public sealed class Quantizer : IDisposable
{
    private readonly Tensor _levels;
    private readonly Tensor _thresholds;
    private readonly Tensor _gapAbove;
    private readonly Tensor _gapBelow;
    private readonly float[] _gapAboveValues;
    private readonly float[] _gapBelowValues;
    private readonly Device _device;
    private Tensor? _windowAbove;
    private Tensor? _windowBelow;
    private double _windowU = double.NaN;

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
        _gapAboveValues = above;
        _gapBelowValues = below;
        _device = device;
        // For "how close to its level": beyond the outer levels, measure against the outermost gap.
        MinGap = Enumerable.Range(0, n - 1).Min(i => levels[i + 1] - levels[i]);
    }

    /// <summary>The level set this quantizer implements.</summary>
    public WeightConstraint Constraint { get; }

    /// <summary>The smallest gap between neighbouring normalised levels.</summary>
    public double MinGap { get; }

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
    /// Per element, the largest <c>|x - Q(x)|</c> at which the constraint is still active for window <paramref name="u"/>:
    /// <c>d u / 2</c> with <c>d</c> the gap of the interval the value lies in (the constraint <c>c = 2 |x - Q(x)|</c> is
    /// active where <c>c &lt;= d u</c>), and infinity beyond the outer levels, which are never windowed.
    /// </summary>
    /// <param name="index">Nearest-level indices.</param>
    /// <param name="above">Where the value is at or above its nearest level.</param>
    /// <param name="u">Window parameter in [0, 1].</param>
    public Tensor WindowThreshold(Tensor index, Tensor above, double u)
    {
        if (u != _windowU)
        {
            // Small per-level tables, rebuilt only when the window changes (at multiplier updates).
            _windowAbove?.Dispose();
            _windowBelow?.Dispose();
            _windowAbove = tensor(_gapAboveValues.Select(g => float.IsInfinity(g) ? g : (float)(g * u / 2)).ToArray(), device: _device).DetachFromDisposeScope();
            _windowBelow = tensor(_gapBelowValues.Select(g => float.IsInfinity(g) ? g : (float)(g * u / 2)).ToArray(), device: _device).DetachFromDisposeScope();
            _windowU = u;
        }
        return where(above, _windowAbove![index], _windowBelow![index]);
    }

    /// <summary><c>Q(w)</c>: each weight replaced by its nearest allowed value <c>scale * f</c>. No gradient flows.</summary>
    /// <param name="weight">Weights, any shape.</param>
    /// <param name="scale">The layer scale (scalar, or broadcastable per output channel).</param>
    public Tensor Quantize(Tensor weight, Tensor scale)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = weight / scale;
        return (LevelAt(NearestIndex(x)) * scale).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>Q(w)</c> in the forward pass with the straight-through estimator in the backward pass: the gradient
    /// with respect to the result flows unchanged to <paramref name="weight"/> (<c>w + (Q(w) - w).detach()</c>).
    /// </summary>
    /// <param name="weight">Latent full-precision weights (usually requiring grad).</param>
    /// <param name="scale">The layer scale.</param>
    public Tensor QuantizeStraightThrough(Tensor weight, Tensor scale)
    {
        using var scope = NewDisposeScope();
        var q = Quantize(weight, scale);
        return (weight + (q - weight).detach()).MoveToOuterDisposeScope();
    }

    /// <summary>Releases the level tensors.</summary>
    public void Dispose()
    {
        _levels.Dispose();
        _thresholds.Dispose();
        _gapAbove.Dispose();
        _gapBelow.Dispose();
        _windowAbove?.Dispose();
        _windowBelow?.Dispose();
    }
}
