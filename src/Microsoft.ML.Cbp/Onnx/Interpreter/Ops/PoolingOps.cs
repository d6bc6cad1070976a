using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>MaxPool, AveragePool (1-D and 2-D; pads, auto_pad, ceil_mode, count_include_pad) and GlobalAveragePool.</summary>
internal static class PoolingOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["MaxPool"] = MaxPool;
        ops["AveragePool"] = AveragePool;
        ops["GlobalAveragePool"] = c =>
        {
            var x = c.Input(0);
            if (x.dim() < 3)
            {
                throw c.Error($"input must be [N, C, spatial...]; got [{string.Join(", ", x.shape)}].");
            }
            return new[] { x.mean(Enumerable.Range(2, (int)x.dim() - 2).Select(i => (long)i).ToArray(), keepdim: true) };
        };
    }

    private static Tensor[] MaxPool(OnnxOpContext c)
    {
        var x = c.Input(0);
        if (c.Node.Output.Count > 1 && !string.IsNullOrEmpty(c.Node.Output[1]))
        {
            throw c.Unsupported("the Indices output of MaxPool is not supported.");
        }
        var window = SpatialWindow.Resolve(c, x, Kernel(c));
        var lifted = SpatialWindow.Lift(x);
        if (window.HasPadding)
        {
            // ONNX pads MaxPool with -infinity; explicit padding also covers asymmetric pads.
            lifted = window.PadExplicitly(lifted, double.NegativeInfinity);
        }
        var y = nn.functional.max_pool2d(lifted, SpatialWindow.As2D(window.Kernel, 1), SpatialWindow.As2D(window.Strides, 1),
            new long[] { 0, 0 }, SpatialWindow.As2D(window.Dilations, 1), c.Int("ceil_mode", 0) != 0);
        return new[] { SpatialWindow.Lower(y, x) };
    }

    private static Tensor[] AveragePool(OnnxOpContext c)
    {
        var x = c.Input(0);
        var window = SpatialWindow.Resolve(c, x, Kernel(c));
        if (window.Dilations.Any(d => d != 1))
        {
            throw c.Unsupported("AveragePool with dilations is not supported.");
        }
        bool countPad = c.Int("count_include_pad", 0) != 0;
        bool ceil = c.Int("ceil_mode", 0) != 0;
        var kernel = SpatialWindow.As2D(window.Kernel, 1);
        var strides = SpatialWindow.As2D(window.Strides, 1);
        var lifted = SpatialWindow.Lift(x);
        Tensor y;
        var begin = SpatialWindow.As2D(window.PadBegin, 0);
        if (window.Symmetric && begin[0] * 2 <= kernel[0] && begin[1] * 2 <= kernel[1])
        {
            y = nn.functional.avg_pool2d(lifted, kernel, strides, begin, ceil, countPad);
        }
        else
        {
            // Asymmetric or large pads: pool the zero-padded input, and divide by the count of real cells where pads don't count.
            var padded = window.PadExplicitly(lifted, 0);
            y = nn.functional.avg_pool2d(padded, kernel, strides, new long[] { 0, 0 }, ceil, true);
            if (!countPad && window.HasPadding)
            {
                using var mask = ones(1, 1, lifted.shape[2], lifted.shape[3], dtype: lifted.dtype, device: lifted.device);
                var fraction = nn.functional.avg_pool2d(window.PadExplicitly(mask, 0), kernel, strides, new long[] { 0, 0 }, ceil, true);
                y = y / fraction;
            }
        }
        return new[] { SpatialWindow.Lower(y, x) };
    }

    private static long[] Kernel(OnnxOpContext c) =>
        c.Ints("kernel_shape") ?? throw c.Error("kernel_shape is required.");
}
