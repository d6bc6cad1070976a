using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>
/// The sliding-window attributes shared by Conv, MaxPool and AveragePool (kernel, strides, dilations, pads, auto_pad),
/// resolved to explicit begin/end pads, with 1-D windows lifted to 2-D so one torch kernel serves both.
/// </summary>
internal sealed class SpatialWindow
{
    private SpatialWindow(long[] kernel, long[] strides, long[] dilations, long[] padBegin, long[] padEnd)
    {
        Kernel = kernel;
        Strides = strides;
        Dilations = dilations;
        PadBegin = padBegin;
        PadEnd = padEnd;
    }

    public long[] Kernel { get; }
    public long[] Strides { get; }
    public long[] Dilations { get; }
    public long[] PadBegin { get; }
    public long[] PadEnd { get; }

    /// <summary>Whether begin and end pads agree in every dimension (torch's own padding argument then applies).</summary>
    public bool Symmetric => PadBegin.SequenceEqual(PadEnd);

    public bool HasPadding => PadBegin.Any(p => p != 0) || PadEnd.Any(p => p != 0);

    /// <summary>Reads the attributes for an input of shape [N, C, spatial...] and a kernel of the given spatial size.</summary>
    public static SpatialWindow Resolve(OnnxOpContext c, Tensor input, long[] kernel)
    {
        int rank = (int)input.dim() - 2;
        if (rank < 1 || rank > 2)
        {
            throw c.Unsupported($"only 1-D and 2-D windows are supported; the input has shape [{string.Join(", ", input.shape)}].");
        }
        if (kernel.Length != rank)
        {
            throw c.Error($"kernel has {kernel.Length} spatial dimensions but the input has {rank}.");
        }
        long[] strides = c.Ints("strides") ?? Enumerable.Repeat(1L, rank).ToArray();
        long[] dilations = c.Ints("dilations") ?? Enumerable.Repeat(1L, rank).ToArray();
        long[] pads = c.Ints("pads") ?? new long[2 * rank];
        if (strides.Length != rank || dilations.Length != rank || pads.Length != 2 * rank)
        {
            throw c.Error($"strides, dilations and pads must have {rank}, {rank} and {2 * rank} values for a {rank}-D window.");
        }
        string autoPad = c.String("auto_pad", "NOTSET");
        long[] begin = pads.Take(rank).ToArray();
        long[] end = pads.Skip(rank).ToArray();
        switch (autoPad)
        {
            case "NOTSET":
                break;
            case "VALID":
                begin = new long[rank];
                end = new long[rank];
                break;
            case "SAME_UPPER" or "SAME_LOWER":
                for (int i = 0; i < rank; i++)
                {
                    long size = input.shape[2 + i];
                    long output = (size + strides[i] - 1) / strides[i];
                    long total = Math.Max(0, (output - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size);
                    long small = total / 2, large = total - small;
                    (begin[i], end[i]) = autoPad == "SAME_UPPER" ? (small, large) : (large, small);
                }
                break;
            default:
                throw c.Error($"auto_pad '{autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID.");
        }
        return new SpatialWindow(kernel, strides, dilations, begin, end);
    }

    /// <summary>The input lifted to 4-D ([N, C, 1, L] for 1-D windows).</summary>
    public static Tensor Lift(Tensor input) => input.dim() == 3 ? input.unsqueeze(2) : input.alias();

    /// <summary>The output brought back to the input's rank.</summary>
    public static Tensor Lower(Tensor output, Tensor input) => input.dim() == 3 ? output.squeeze(2) : output;

    /// <summary>A 2-D version of a per-dimension list (1-D lists get <paramref name="fill"/> for the added height).</summary>
    public static long[] As2D(long[] values, long fill) => values.Length == 1 ? new[] { fill, values[0] } : values;

    /// <summary>Pads a 4-D tensor explicitly (torch order: last dimension first).</summary>
    public Tensor PadExplicitly(Tensor lifted, double value)
    {
        var b = As2D(PadBegin, 0);
        var e = As2D(PadEnd, 0);
        return nn.functional.pad(lifted, new[] { b[1], e[1], b[0], e[0] }, PaddingModes.Constant, value);
    }
}
