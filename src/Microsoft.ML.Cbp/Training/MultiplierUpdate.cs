using System;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// The pseudo-Lagrange multiplier update: one gradient-ASCENT step of Adam on <c>sum_i lambda_i c(w_i)</c>,
/// whose gradient with respect to <c>lambda_i</c> is <c>c(w_i)</c> (docs/CBP.md section 5). Multipliers stay
/// non-negative. One instance holds the Adam state of one weight tensor's multipliers.
/// </summary>
internal sealed class MultiplierUpdate : IDisposable
{
    private readonly Tensor _firstMoment;
    private readonly Tensor _secondMoment;
    private int _steps;

    /// <summary>Creates zero multipliers and Adam state shaped like <paramref name="weight"/>.</summary>
    /// <param name="weight">The constrained weight tensor.</param>
    /// <param name="learningRate">Adam's learning rate (paper: 1e-4).</param>
    /// <param name="beta1">Adam's first-moment decay.</param>
    /// <param name="beta2">Adam's second-moment decay.</param>
    /// <param name="epsilon">Adam's denominator offset.</param>
    public MultiplierUpdate(Tensor weight, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (!(learningRate >= 0) || double.IsInfinity(learningRate))
        {
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "The multiplier learning rate must be a finite number >= 0.");
        }
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        Multipliers = zeros_like(weight).DetachFromDisposeScope();
        _firstMoment = zeros_like(weight).DetachFromDisposeScope();
        _secondMoment = zeros_like(weight).DetachFromDisposeScope();
    }

    /// <summary>The multipliers <c>lambda</c>, one per weight, non-negative.</summary>
    public Tensor Multipliers { get; }

    /// <summary>Adam's learning rate for the ascent.</summary>
    public double LearningRate { get; }

    /// <summary>Adam's first-moment decay.</summary>
    public double Beta1 { get; }

    /// <summary>Adam's second-moment decay.</summary>
    public double Beta2 { get; }

    /// <summary>Adam's denominator offset.</summary>
    public double Epsilon { get; }

    /// <summary>How many ascent steps have been taken.</summary>
    public int Steps => _steps;

    /// <summary>Takes one ascent step with gradient <paramref name="constraintValue"/> (= <c>c(w)</c>, element-wise).</summary>
    /// <param name="constraintValue">The constraint function at the current weights, same shape as the multipliers.</param>
    public void Ascend(Tensor constraintValue)
    {
        ArgumentNullException.ThrowIfNull(constraintValue);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _steps++;
        _firstMoment.MulScalar_(Beta1).AddScaled_(constraintValue, 1 - Beta1);
        _secondMoment.MulScalar_(Beta2).AddProductScaled_(constraintValue, constraintValue, 1 - Beta2);
        double correction1 = 1 - Math.Pow(Beta1, _steps);
        double correction2 = 1 - Math.Pow(Beta2, _steps);
        var denominator = _secondMoment.DivScalar(correction2).sqrt_().AddScalar_(Epsilon);
        Multipliers.AddQuotientScaled_(_firstMoment, denominator, LearningRate / correction1).ClampMinScalar_(0);
    }

    /// <summary>Adam's first moment.</summary>
    internal Tensor FirstMoment => _firstMoment;

    /// <summary>Adam's second moment.</summary>
    internal Tensor SecondMoment => _secondMoment;

    /// <summary>Continues from saved multipliers, moments and step count.</summary>
    internal void Restore(Tensor multipliers, Tensor firstMoment, Tensor secondMoment, int steps)
    {
        using var noGrad = no_grad();
        Multipliers.copy_(multipliers);
        _firstMoment.copy_(firstMoment);
        _secondMoment.copy_(secondMoment);
        _steps = steps;
    }

    /// <summary>Releases the multiplier and Adam tensors.</summary>
    public void Dispose()
    {
        Multipliers.Dispose();
        _firstMoment.Dispose();
        _secondMoment.Dispose();
    }
}
