using System;

namespace Microsoft.ML.Cbp.Training;

/// <summary>The checks every options class of the library runs on its public values; each error names the option and the valid range.</summary>
internal static class OptionChecks
{
    /// <summary>A finite number greater than 0.</summary>
    /// <param name="value">The value.</param>
    /// <param name="option">The option's name.</param>
    public static void Positive(double value, string option)
    {
        if (!(value > 0) || double.IsInfinity(value))
        {
            throw new ArgumentException($"{option} must be a finite number greater than 0; got {value}.", option);
        }
    }

    /// <summary>A finite number in [low, high] (or [low, high) when <paramref name="upperOpen"/>).</summary>
    /// <param name="value">The value.</param>
    /// <param name="low">Lowest valid value.</param>
    /// <param name="high">Highest valid value (excluded when <paramref name="upperOpen"/>).</param>
    /// <param name="option">The option's name.</param>
    /// <param name="upperOpen">Whether <paramref name="high"/> itself is invalid.</param>
    public static void InRange(double value, double low, double high, string option, bool upperOpen = false)
    {
        bool ok = value >= low && (upperOpen ? value < high : value <= high) && double.IsFinite(value);
        if (!ok)
        {
            string upper = high == double.MaxValue ? "" : $", {high}{(upperOpen ? ")" : "]")}";
            string range = high == double.MaxValue ? $"{low} or more" : $"in [{low}{upper}";
            throw new ArgumentException($"{option} must be {range}; got {value}.", option);
        }
    }

    /// <summary>A named value of its enum.</summary>
    /// <typeparam name="TEnum">The enum.</typeparam>
    /// <param name="value">The value.</param>
    /// <param name="option">The option's name.</param>
    public static void Defined<TEnum>(TEnum value, string option)
        where TEnum : struct, Enum
    {
        if (!Enum.IsDefined(value))
        {
            throw new ArgumentException($"{option} {value} is not one of {string.Join(", ", Enum.GetNames<TEnum>())}.", option);
        }
    }
}
