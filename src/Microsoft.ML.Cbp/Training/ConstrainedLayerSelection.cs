using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>Chooses which weight tensors of a module are constrained (docs/CBP.md section 1).</summary>
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
        return LayerSelectionRule.Apply(weights, keepFirstAndLastFloat, include, exclude, "a weight tensor of the module");
    }
}
