using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Constraints;

/// <summary>
/// The CBP constraint function with its unconstrained window (docs/CBP.md section 3), on tensors.
/// </summary>
/// <remarks>
/// <para>Between neighbouring allowed values <c>q_k &lt; q_k+1</c> (gap <c>d</c>) the function is the triangle
/// <c>c(w) = 2 min(w - q_k, q_k+1 - w)</c>, set to zero where <c>c(w) &gt; d * u</c> (the window around the
/// midpoint); below the lowest level <c>c = 2 (q_0 - w)</c> and above the highest <c>c = 2 (w - q_K)</c>,
/// never windowed. Equivalently <c>c(w) = 2 |w - Q(w)|</c> outside the window. Its derivative is
/// <c>2 sign(w - Q(w))</c> where the constraint is active and zero inside the window and exactly on a level.</para>
/// <para><c>u = 1 - 1/g</c> comes from the window counter <c>g</c>; <c>u = 1</c> means no window.</para>
/// </remarks>
internal static class ConstraintFunction
{
    /// <summary>The window width <c>u = 1 - 1/g</c> for window counter <paramref name="g"/> (g &gt;= 1).</summary>
    /// <param name="g">The window counter.</param>
    public static double WindowFromCounter(int g)
    {
        if (g < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(g), g, "The window counter g starts at 1.");
        }
        return 1.0 - 1.0 / g;
    }

    /// <summary>Evaluates <c>c(w)</c> element-wise, in weight units.</summary>
    /// <param name="quantizer">The level set's quantizer.</param>
    /// <param name="weight">Latent weights.</param>
    /// <param name="scale">The layer scale (scalar or broadcastable per output channel).</param>
    /// <param name="u">Window parameter in [0, 1]; 1 disables the window.</param>
    public static Tensor Value(Quantizer quantizer, Tensor weight, Tensor scale, double u)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (diff, active) = Terms(quantizer, weight / scale, u);
        return ValueFromTerms(diff, active, scale).MoveToOuterDisposeScope();
    }

    /// <summary>Evaluates <c>dc/dw</c> element-wise: +-2 where the constraint is active, 0 elsewhere.</summary>
    /// <param name="quantizer">The level set's quantizer.</param>
    /// <param name="weight">Latent weights.</param>
    /// <param name="scale">The layer scale.</param>
    /// <param name="u">Window parameter in [0, 1].</param>
    public static Tensor Gradient(Quantizer quantizer, Tensor weight, Tensor scale, double u)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (diff, active) = Terms(quantizer, weight / scale, u);
        return GradientFromTerms(diff, active).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The building blocks shared by value and gradient, in normalised units: <c>x - Q(x)</c> and a float
    /// mask of where the constraint is active (outside the window).
    /// </summary>
    /// <param name="quantizer">The level set's quantizer.</param>
    /// <param name="x">Weights divided by their scale.</param>
    /// <param name="u">Window parameter in [0, 1].</param>
    public static (Tensor Diff, Tensor Active) Terms(Quantizer quantizer, Tensor x, double u)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        var diff = x - quantizer.NormalizedLevel(x);
        return (diff, ActiveMask(quantizer, x, u));
    }

    /// <summary>
    /// Where the constraint is active: <c>c(x) &lt;= d * u</c> with <c>d</c> the gap of the interval the value lies in
    /// (always beyond the outer levels). Returned as a float tensor of 0 and 1.
    /// </summary>
    /// <param name="quantizer">The level set's quantizer.</param>
    /// <param name="x">Weights divided by their scale.</param>
    /// <param name="u">Window parameter in [0, 1].</param>
    public static Tensor ActiveMask(Quantizer quantizer, Tensor x, double u)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        return quantizer.WindowIndicator(x, u).neg_().AddScalar_(1);
    }

    /// <summary>
    /// <c>c(w) = 2 |x - Q(x)| s</c> where the constraint is active, from the terms of <see cref="Terms"/> (the engine
    /// caches <c>x - Q(x)</c> per weight tensor and calls this directly).
    /// </summary>
    /// <param name="diff"><c>x - Q(x)</c>, normalised.</param>
    /// <param name="active">The mask of <see cref="ActiveMask"/>.</param>
    /// <param name="scale">The layer scale.</param>
    public static Tensor ValueFromTerms(Tensor diff, Tensor active, Tensor scale)
    {
        ArgumentNullException.ThrowIfNull(diff);
        return diff.abs().mul_(active).mul_(scale).MulScalar_(2);
    }

    /// <summary><c>dc/dw = 2 sign(x - Q(x))</c> where the constraint is active, from the terms of <see cref="Terms"/>.</summary>
    /// <param name="diff"><c>x - Q(x)</c>, normalised.</param>
    /// <param name="active">The mask of <see cref="ActiveMask"/>.</param>
    public static Tensor GradientFromTerms(Tensor diff, Tensor active)
    {
        ArgumentNullException.ThrowIfNull(diff);
        return diff.sign().mul_(active).MulScalar_(2);
    }
}
