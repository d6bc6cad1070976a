using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>DequantizeLinear (per tensor and per axis), so exported compact models run here too.</summary>
internal static class QuantizationOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["DequantizeLinear"] = c =>
        {
            var x = c.Input(0);
            var scale = c.Input(1);
            var zeroPoint = c.OptionalInput(2);
            if (c.Int("block_size", 0) != 0)
            {
                throw c.Unsupported("blocked DequantizeLinear (block_size) is not supported.");
            }
            if (scale.numel() == 1)
            {
                var values = zeroPoint is null ? x.to(float32) : x.to(float32) - zeroPoint.to(float32).reshape(System.Array.Empty<long>());
                return new[] { values * scale.reshape(System.Array.Empty<long>()) };
            }
            // Per axis: the scale is 1-D along 'axis' (default 1).
            long axis = c.Axis(c.Int("axis", 1), x.dim());
            var shape = Enumerable.Repeat(1L, (int)x.dim()).ToArray();
            shape[axis] = scale.numel();
            if (scale.numel() != x.shape[axis])
            {
                throw c.Error($"scale has {scale.numel()} values but axis {axis} of the input has {x.shape[axis]}.");
            }
            var y = (zeroPoint is null ? x.to(float32) : x.to(float32) - zeroPoint.to(float32).reshape(shape)) * scale.reshape(shape);
            return new[] { y };
        };
    }
}
