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
        using var s = value.ToScalar();
        return t.add_(s);
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
