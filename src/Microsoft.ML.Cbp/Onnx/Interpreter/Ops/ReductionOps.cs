using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>ReduceMean, ReduceSum, ReduceMax, Softmax and LogSoftmax (with the opset-13 change of Softmax semantics).</summary>
internal static class ReductionOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["ReduceMean"] = c => new[] { Reduce(c, (x, axes, keep) => x.mean(axes, keepdim: keep)) };
        ops["ReduceSum"] = c => new[] { Reduce(c, (x, axes, keep) => x.sum(axes, keepdim: keep, type: x.dtype)) };
        ops["ReduceMax"] = c => new[] { Reduce(c, (x, axes, keep) => x.amax(axes, keepdim: keep)) };
        ops["Softmax"] = c => new[] { Normalise(c, log: false) };
        ops["LogSoftmax"] = c => new[] { Normalise(c, log: true) };
    }

    private static Tensor Reduce(OnnxOpContext c, System.Func<Tensor, long[], bool, Tensor> reduce)
    {
        var x = c.Input(0);
        // ReduceSum (opset 13) and the others (opset 18) moved axes from an attribute to an optional input.
        long[]? axes = c.IntsFromInputOrAttribute(1, "axes");
        bool keep = c.Int("keepdims", 1) != 0;
        if (axes is null || axes.Length == 0)
        {
            if (c.Int("noop_with_empty_axes", 0) != 0)
            {
                return x.alias();
            }
            axes = Enumerable.Range(0, (int)x.dim()).Select(a => (long)a).ToArray();
        }
        return reduce(x, axes.Select(a => c.Axis(a, x.dim())).Distinct().ToArray(), keep);
    }

    private static Tensor Normalise(OnnxOpContext c, bool log)
    {
        var x = c.Input(0);
        if (c.Opset >= 13)
        {
            long axis = c.Axis(c.Int("axis", -1), x.dim());
            return log ? x.log_softmax(axis) : x.softmax(axis);
        }
        // Before opset 13: the input is seen as 2-D [prod(dims before axis), prod(dims from axis)], normalised per row.
        long flatAxis = c.Axis(c.Int("axis", 1), x.dim());
        long outer = x.shape.Take((int)flatAxis).Aggregate(1L, (a, b) => a * b);
        var flat = x.reshape(outer, -1);
        return (log ? flat.log_softmax(1) : flat.softmax(1)).reshape(x.shape);
    }
}
