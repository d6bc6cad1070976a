namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// The quantizer as a scalar loop written straight from docs/CBP.md section 2, the independent reference the tests check
/// the library's element-wise kernels and exported codes against (the library itself only quantizes tensors).
/// </summary>
internal static class ScalarReference
{
    /// <summary>
    /// The level nearest to <paramref name="x"/> (in normalised units). A value exactly on a threshold (a midpoint) goes
    /// to the upper level; values beyond the outer levels go to the outer level.
    /// </summary>
    /// <param name="constraint">The level set.</param>
    /// <param name="x">A weight divided by its scale.</param>
    public static double Quantize(this WeightConstraint constraint, double x)
    {
        var levels = constraint.Levels;
        int index = 0;
        while (index < levels.Count - 1 && x >= 0.5 * (levels[index] + levels[index + 1]))
        {
            index++;
        }
        return levels[index];
    }
}
