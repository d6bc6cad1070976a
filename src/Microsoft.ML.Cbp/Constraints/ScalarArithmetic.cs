using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Constraints;

/// <summary>
/// Tensor arithmetic with a number, keeping the native scalar alive until the operation returns.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 turns a <see cref="double"/> into a <see cref="Scalar"/> implicitly and leaves it to the garbage
/// collector; its methods pass the scalar's handle to native code without keeping the object alive, so under
/// allocation pressure the finalizer can free the scalar while libtorch still reads it ("Unknown scalar type" or
/// wrong values; see dotnet/TorchSharp pull requests 1434 and 1496). Every number in the engine's per-step arithmetic
/// goes through these methods, which create the scalar in a <c>using</c> and dispose it after the call.
/// </remarks>
internal static class ScalarArithmetic
{
    public static Tensor AddScalar_(this Tensor t, double value)
    {
        // add_(Scalar) passes an implicit alpha Scalar 1 as well: both are held here.
        using var s = value.ToScalar();
        using var one = 1.0.ToScalar();
        return t.add_(s, one);
    }

    public static Tensor SubScalar_(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.sub_(s);
    }

    public static Tensor MulScalar_(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.mul_(s);
    }

    public static Tensor DivScalar_(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.div_(s);
    }

    public static Tensor SubScalar(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.sub(s);
    }

    public static Tensor DivScalar(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.div(s);
    }

    public static Tensor ClampScalar_(this Tensor t, double min, double max)
    {
        using var low = min.ToScalar();
        using var high = max.ToScalar();
        return t.clamp_(low, high);
    }

    /// <summary><c>t += other</c> (TorchSharp's <c>add_(Tensor)</c> passes an implicit Scalar 1, which the finalizer can free mid-call).</summary>
    public static Tensor Add_(this Tensor t, Tensor other) => t.AddScaled_(other, 1);

    /// <summary>
    /// <c>a + b</c> as a new tensor: TorchSharp's <c>add(Tensor)</c>, and so its <c>+</c> operator, passes an implicit Scalar 1
    /// that the finalizer can free while libtorch still reads it.
    /// </summary>
    public static Tensor Plus(this Tensor a, Tensor b)
    {
        // libtorch refuses a floating alpha when both operands are integers (shape arithmetic in ONNX graphs).
        using var one = torch.is_integral(a.dtype) && torch.is_integral(b.dtype) ? 1L.ToScalar() : 1.0.ToScalar();
        return a.add(b, one);
    }

    /// <summary><c>t * value</c> as a new tensor.</summary>
    public static Tensor MulScalar(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.mul(s);
    }

    /// <summary><c>t + alpha * other</c> as a new tensor.</summary>
    public static Tensor AddScaled(this Tensor t, Tensor other, double alpha)
    {
        using var s = alpha.ToScalar();
        return t.add(other, s);
    }

    /// <summary><c>t += alpha * other</c>.</summary>
    public static Tensor AddScaled_(this Tensor t, Tensor other, double alpha)
    {
        using var s = alpha.ToScalar();
        return t.add_(other, alpha: s);
    }

    /// <summary><c>t += value * a * b</c>.</summary>
    public static Tensor AddProductScaled_(this Tensor t, Tensor a, Tensor b, double value)
    {
        using var s = value.ToScalar();
        return t.addcmul_(a, b, value: s);
    }

    /// <summary><c>t += value * a / b</c>.</summary>
    public static Tensor AddQuotientScaled_(this Tensor t, Tensor a, Tensor b, double value)
    {
        using var s = value.ToScalar();
        return t.addcdiv_(a, b, value: s);
    }

    public static Tensor ClampMinScalar_(this Tensor t, double min)
    {
        using var s = min.ToScalar();
        return t.clamp_min_(s);
    }

    public static Tensor FullLike(Tensor like, double value)
    {
        using var s = value.ToScalar();
        return full_like(like, s);
    }
}
