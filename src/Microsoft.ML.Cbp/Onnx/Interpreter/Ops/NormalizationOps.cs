using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>BatchNormalization in evaluation mode (running statistics) and training mode (batch statistics); LayerNormalization.</summary>
internal static class NormalizationOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["BatchNormalization"] = c =>
        {
            var x = c.Input(0);
            var scale = c.Input(1);
            var bias = c.Input(2);
            var mean = c.Input(3);
            var variance = c.Input(4);
            if (x.dim() < 2 || scale.numel() != x.shape[1])
            {
                throw c.Error($"input [{string.Join(", ", x.shape)}] has {(x.dim() < 2 ? 0 : x.shape[1])} channels; scale has {scale.numel()}.");
            }
            double epsilon = c.Float("epsilon", 1e-5f);
            // ONNX: running = running * momentum + batch * (1 - momentum); torch's momentum is the other weight.
            double momentum = c.Float("momentum", 0.9f);
            // In training the running statistics (module buffers) are updated in place; the batch statistics normalise.
            var y = nn.functional.batch_norm(x, mean, variance, scale, bias, c.Training, c.BatchNormMomentum ?? (1 - momentum), epsilon);
            return new[] { y };
        };
        ops["LayerNormalization"] = c =>
        {
            // Normalises over the axes from 'axis' to the last; Scale and B broadcast to the normalised shape.
            var x = c.Input(0);
            long axis = c.Axis(c.Int("axis", -1), x.dim());
            double epsilon = c.Float("epsilon", 1e-5f);
            var dims = Enumerable.Range((int)axis, (int)(x.dim() - axis)).Select(d => (long)d).ToArray();
            var mean = x.mean(dims, keepdim: true);
            var centred = x - mean;
            var inverseStd = centred.square().mean(dims, keepdim: true).AddScalar_(epsilon).rsqrt();
            var y = centred * inverseStd * c.Input(1);
            if (c.OptionalInput(2) is { } bias)
            {
                y = y.Plus(bias);
            }
            return new[] { y, mean, inverseStd };
        };
    }
}
