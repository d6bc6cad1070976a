using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>Chooses which weight tensors of a module are constrained (CBP.md section 1).</summary>
public static class ConstrainedLayerSelection
{
    /// <summary>
    /// The weight tensors (parameters with two or more dimensions: convolution and fully-connected weights) in
    /// module order, except the first and the last, which stay full precision by default (the paper's choice).
    /// </summary>
    /// <param name="model">The network.</param>
    /// <param name="keepFirstAndLastFloat">Leave the first and last weight tensors unconstrained (default true).</param>
    /// <param name="include">Names to constrain even if the rule leaves them out.</param>
    /// <param name="exclude">Names to keep float even if the rule picks them.</param>
    /// <exception cref="ArgumentException">A name in <paramref name="include"/> or <paramref name="exclude"/> is not a weight tensor of the module.</exception>
    public static IReadOnlyList<string> Select(
        nn.Module model,
        bool keepFirstAndLastFloat = true,
        IEnumerable<string>? include = null,
        IEnumerable<string>? exclude = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var weights = model.named_parameters().Where(p => p.parameter.dim() >= 2).Select(p => p.name).ToList();
        var chosen = new List<string>(weights);
        if (keepFirstAndLastFloat && chosen.Count > 0)
        {
            chosen.RemoveAt(0);
            if (chosen.Count > 0)
            {
                chosen.RemoveAt(chosen.Count - 1);
            }
        }
        foreach (string name in include ?? Enumerable.Empty<string>())
        {
            Require(weights, name, nameof(include));
            if (!chosen.Contains(name))
            {
                chosen.Add(name);
            }
        }
        foreach (string name in exclude ?? Enumerable.Empty<string>())
        {
            Require(weights, name, nameof(exclude));
            chosen.Remove(name);
        }
        return weights.Where(chosen.Contains).ToList();
    }

    private static void Require(List<string> weights, string name, string parameterName)
    {
        if (!weights.Contains(name))
        {
            throw new ArgumentException(
                $"'{name}' is not a weight tensor of the module; weight tensors are: {string.Join(", ", weights)}.", parameterName);
        }
    }
}
