using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Cbp.Constraints;

/// <summary>
/// The paper's rule for which weight layers are constrained, on names: all of them except the first and the last,
/// with explicit include and exclude lists on top. Shared by TorchSharp modules and ONNX graphs.
/// </summary>
internal static class LayerSelectionRule
{
    /// <param name="weights">Candidate weight names in network order.</param>
    /// <param name="keepFirstAndLastFloat">Leave the first and last candidates unconstrained.</param>
    /// <param name="include">Names to constrain even if the rule leaves them out.</param>
    /// <param name="exclude">Names to keep float even if the rule picks them.</param>
    /// <param name="what">What a candidate is, for the error message.</param>
    public static IReadOnlyList<string> Apply(IReadOnlyList<string> weights, bool keepFirstAndLastFloat, IEnumerable<string>? include, IEnumerable<string>? exclude, string what)
    {
        var chosen = new HashSet<string>(weights, StringComparer.Ordinal);
        if (keepFirstAndLastFloat && weights.Count > 0)
        {
            chosen.Remove(weights[0]);
            chosen.Remove(weights[^1]);
        }
        foreach (string name in include ?? Enumerable.Empty<string>())
        {
            Require(weights, name, nameof(include), what);
            chosen.Add(name);
        }
        foreach (string name in exclude ?? Enumerable.Empty<string>())
        {
            Require(weights, name, nameof(exclude), what);
            chosen.Remove(name);
        }
        return weights.Where(chosen.Contains).ToList();
    }

    private static void Require(IReadOnlyList<string> weights, string name, string parameter, string what)
    {
        if (!weights.Contains(name))
        {
            throw new ArgumentException($"'{name}' is not {what}; candidates are: {string.Join(", ", weights)}.", parameter);
        }
    }
}
