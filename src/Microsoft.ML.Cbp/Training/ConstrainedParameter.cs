using System;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// One constrained weight tensor under training: the module parameter (which always holds <c>Q(w)</c>, so the
/// module is the constrained network at every moment), the latent full-precision weights <c>w</c>, the
/// layer scale, the multipliers and the SGD momentum of the latent weights.
/// </summary>
/// <remarks>
/// Keeping <c>Q(w)</c> in the parameter and <c>w</c> beside it implements the straight-through estimator
/// exactly: the gradient the module computes with respect to its parameter is the gradient with respect to
/// <c>Q(w)</c>, and it is applied unchanged to <c>w</c>.
/// </remarks>
internal sealed class ConstrainedParameter : IDisposable
{
    private Tensor _normalized;
    private Tensor _diff;

    internal ConstrainedParameter(string name, Parameter parameter, WeightConstraint constraint, ScaleMode scaleMode, double multiplierLearningRate)
    {
        Name = name;
        Parameter = parameter;
        Constraint = constraint;
        Quantizer = new Quantizer(constraint, parameter.device);
        using var noGrad = no_grad();
        Scale = LayerScale.Compute(parameter, constraint, scaleMode).DetachFromDisposeScope();
        Latent = parameter.detach().clone().DetachFromDisposeScope();
        MomentumBuffer = zeros_like(parameter).DetachFromDisposeScope();
        Multipliers = new MultiplierUpdate(parameter, multiplierLearningRate);
        _normalized = empty(0).DetachFromDisposeScope();
        _diff = empty(0).DetachFromDisposeScope();
        Requantize();
    }

    /// <summary>The parameter's name in the module (for example <c>1.weight</c>).</summary>
    public string Name { get; }

    /// <summary>The module parameter; holds <c>Q(w)</c> exactly.</summary>
    public Parameter Parameter { get; }

    /// <summary>The level set.</summary>
    public WeightConstraint Constraint { get; }

    /// <summary>The level set's quantizer, on the parameter's device.</summary>
    public Quantizer Quantizer { get; }

    /// <summary>The layer scale <c>s</c>, fixed at the start of constrained training (scalar or per output channel).</summary>
    public Tensor Scale { get; }

    /// <summary>The latent full-precision weights <c>w</c>.</summary>
    public Tensor Latent { get; }

    /// <summary>SGD momentum of the latent weights.</summary>
    internal Tensor MomentumBuffer { get; }

    /// <summary>The multipliers and their Adam state.</summary>
    public MultiplierUpdate Multipliers { get; }

    /// <summary>The latent weights divided by the scale, <c>x = w / s</c> (as of the last requantization).</summary>
    internal Tensor NormalizedLatent => _normalized;

    /// <summary><c>w / s - Q(w) / s</c>, normalised (as of the last requantization).</summary>
    internal Tensor NormalizedDiff => _diff;

    /// <summary>Number of weights.</summary>
    public long Count => Latent.numel();

    /// <summary>Writes <c>Q(latent)</c> into the parameter and caches the quantities the constraint needs.</summary>
    internal void Requantize()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Latent / Scale;
        var level = Quantizer.NormalizedLevel(x);
        Parameter.copy_(level * Scale);
        _normalized.Dispose();
        _diff.Dispose();
        _diff = (x - level).DetachFromDisposeScope();
        _normalized = x.DetachFromDisposeScope();
    }

    /// <summary>The constraint function <c>c(w)</c> of the latent weights at window <paramref name="u"/>, in weight units.</summary>
    /// <param name="u">Window parameter; 1 for no window.</param>
    public Tensor ConstraintValue(double u)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var active = ConstraintFunction.ActiveMask(Quantizer, _normalized, u);
        return ConstraintFunction.ValueFromTerms(_diff, active, Scale).MoveToOuterDisposeScope();
    }

    /// <summary>Releases the latent weights, scale, state and quantizer (the parameter stays with its module).</summary>
    public void Dispose()
    {
        Quantizer.Dispose();
        Scale.Dispose();
        Latent.Dispose();
        MomentumBuffer.Dispose();
        Multipliers.Dispose();
        _normalized.Dispose();
        _diff.Dispose();
    }
}
