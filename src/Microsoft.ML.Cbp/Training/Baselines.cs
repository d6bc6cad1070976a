using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// The baselines every comparison includes (docs/CBP.md section 7) that are not training runs: naive rounding of
/// pretrained weights, and batch-norm statistics re-estimated afterwards. (The straight-through baseline is
/// <see cref="CbpTrainer"/> in <see cref="TrainingMode.StraightThrough"/>.)
/// </summary>
public static class Baselines
{
    /// <summary>
    /// Naive rounding: replaces each named weight tensor by <c>Q(w)</c> with its scale computed from the weights
    /// themselves (the same quantizer and scale rule CBP uses), with no training.
    /// </summary>
    /// <param name="model">The pretrained network; modified in place.</param>
    /// <param name="parameterNames">Weight tensors to round (for example from <see cref="ConstrainedLayerSelection.Select"/>).</param>
    /// <param name="constraint">The level set.</param>
    /// <param name="scaleMode">How scales are computed.</param>
    /// <returns>The scale of each rounded tensor by name (scalar or per-channel values, flattened).</returns>
    public static IReadOnlyDictionary<string, float[]> RoundToLevels(
        nn.Module model, IEnumerable<string> parameterNames, WeightConstraint constraint, ScaleMode scaleMode = ScaleMode.PerLayer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(parameterNames);
        ArgumentNullException.ThrowIfNull(constraint);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var scales = new Dictionary<string, float[]>();
        foreach (string name in parameterNames)
        {
            if (!parameters.TryGetValue(name, out var parameter))
            {
                throw new ArgumentException($"'{name}' is not a parameter of the module.", nameof(parameterNames));
            }
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            using var quantizer = new Quantizer(constraint, parameter.device);
            var scale = LayerScale.Compute(parameter, constraint, scaleMode);
            parameter.copy_(quantizer.Quantize(parameter, scale));
            scales[name] = scale.cpu().flatten().data<float>().ToArray();
        }
        return scales;
    }

    /// <summary>
    /// Re-estimates the running mean and variance of every batch-normalisation layer from training data (a
    /// cumulative average over the given batches, as PyTorch does with <c>momentum = None</c>), leaving every
    /// other parameter unchanged. Cheap, and recovers most of the accuracy naive rounding loses in a CNN.
    /// </summary>
    /// <param name="model">A network whose normalisation layers are TorchSharp <c>BatchNorm</c> modules (left in evaluation mode).
    /// For an ONNX graph use <c>OnnxGraphModule.ReestimateBatchNorm</c>.</param>
    /// <param name="data">Training batches (labels unused).</param>
    /// <param name="maxBatches">At most this many batches of one pass; null for the whole pass.</param>
    /// <returns>How many batch-norm layers were re-estimated.</returns>
    /// <exception cref="ArgumentException">The module has no BatchNorm layer but a ReestimateBatchNorm method of its own.</exception>
    public static int ReestimateBatchNorm(nn.Module<Tensor, Tensor> model, IBatchSource data, int? maxBatches = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        var layers = model.modules().OfType<BatchNorm>().ToList();
        if (layers.Count == 0)
        {
            if (model.GetType().GetMethod(nameof(ReestimateBatchNorm)) is not null)
            {
                // A module that keeps its running statistics outside TorchSharp's BatchNorm layers and re-estimates them
                // itself (an ONNX graph does): doing nothing here would report a baseline that never ran.
                throw new ArgumentException(
                    $"The module ({model.GetType().Name}) keeps its batch-norm statistics itself; call its own ReestimateBatchNorm " +
                    "(OnnxGraphModule.ReestimateBatchNorm for an ONNX graph).", nameof(model));
            }
            model.eval();
            return 0;
        }
        var momenta = layers.Select(l => l.momentum).ToList();
        foreach (var layer in layers)
        {
            layer.reset_running_stats();
            layer.momentum = null;
        }
        try
        {
            model.train();
            using var noGrad = no_grad();
            using var batches = data.Pass(0).GetEnumerator();
            for (int i = 0; maxBatches is null || i < maxBatches; i++)
            {
                using var scope = NewDisposeScope();
                if (!batches.MoveNext())
                {
                    break;
                }
                model.forward(batches.Current.Features);
            }
        }
        finally
        {
            for (int i = 0; i < layers.Count; i++)
            {
                layers[i].momentum = momenta[i];
            }
            model.eval();
        }
        return layers.Count;
    }
}
