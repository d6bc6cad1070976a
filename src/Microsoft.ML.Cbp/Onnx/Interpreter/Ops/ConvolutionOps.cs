using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>Conv (1-D and 2-D; groups, dilations, strides, pads, auto_pad).</summary>
internal static class ConvolutionOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["Conv"] = Conv;
    }

    private static Tensor[] Conv(OnnxOpContext c)
    {
        var x = c.Input(0);
        var w = c.Input(1);
        var bias = c.OptionalInput(2);
        long[] kernel = c.Ints("kernel_shape") ?? w.shape.Skip(2).ToArray();
        var window = SpatialWindow.Resolve(c, x, kernel);
        long groups = c.Int("group", 1);
        if (x.shape[1] != w.shape[1] * groups)
        {
            throw c.Error($"input has {x.shape[1]} channels but the weight [{string.Join(", ", w.shape)}] with group {groups} expects {w.shape[1] * groups}.");
        }
        var lifted = SpatialWindow.Lift(x);
        var weight = w.dim() == 3 ? w.unsqueeze(2) : w;
        long[] padding = new long[] { 0, 0 };
        if (window.Symmetric)
        {
            padding = SpatialWindow.As2D(window.PadBegin, 0);
        }
        else
        {
            lifted = window.PadExplicitly(lifted, 0);
        }
        var y = nn.functional.conv2d(lifted, weight, bias, SpatialWindow.As2D(window.Strides, 1), padding, SpatialWindow.As2D(window.Dilations, 1), groups);
        return new[] { SpatialWindow.Lower(y, x) };
    }
}
