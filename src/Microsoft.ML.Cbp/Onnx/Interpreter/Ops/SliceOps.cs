using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>Slice, Split and Expand: views and copies of parts of a tensor, as ONNX numbers them.</summary>
internal static class SliceOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["Slice"] = Slice;
        ops["Split"] = Split;
        ops["Expand"] = c =>
        {
            var x = c.Input(0);
            long[] shape = c.IntsFromInputOrAttribute(1, "shape") ?? throw c.Error("shape is required.");
            return new[] { x.broadcast_to(Broadcast(c, x.shape, shape)).contiguous() };
        };
    }

    /// <summary>Numpy's two-way broadcast of two shapes; throws naming the node when they do not broadcast.</summary>
    private static long[] Broadcast(OnnxOpContext c, long[] a, long[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            long da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            long db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
            {
                throw c.Error($"cannot expand [{string.Join(", ", a)}] to [{string.Join(", ", b)}]: dimension {i} is {da} and {db}.");
            }
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    private static Tensor[] Slice(OnnxOpContext c)
    {
        var x = c.Input(0);
        long rank = x.dim();
        // Opset 10 moved starts, ends, axes and steps from attributes to inputs.
        long[] starts = c.IntsFromInputOrAttribute(1, "starts") ?? throw c.Error("starts are required.");
        long[] ends = c.IntsFromInputOrAttribute(2, "ends") ?? throw c.Error("ends are required.");
        long[] axes = c.IntsFromInputOrAttribute(3, "axes") ?? Enumerable.Range(0, starts.Length).Select(a => (long)a).ToArray();
        long[] steps = c.OptionalInput(4) is not null ? c.IntsFromInputOrAttribute(4, "steps")! : Enumerable.Repeat(1L, starts.Length).ToArray();
        if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length)
        {
            throw c.Error($"starts, ends, axes and steps have {starts.Length}, {ends.Length}, {axes.Length} and {steps.Length} entries; they need one each per sliced axis.");
        }
        var y = x;
        for (int i = 0; i < starts.Length; i++)
        {
            long axis = c.Axis(axes[i], rank);
            long size = x.shape[axis];
            long step = steps[i];
            if (step == 0)
            {
                throw c.Error($"step 0 on axis {axis}; steps must be non-zero.");
            }
            if (size == 0)
            {
                continue;
            }
            long start = starts[i] < 0 ? starts[i] + size : starts[i];
            long end = ends[i] < 0 ? Math.Max(ends[i], -size - 1) + size : ends[i];
            if (step > 0)
            {
                start = Math.Clamp(start, 0, size);
                end = Math.Clamp(end, 0, size);
                y = y.slice(axis, start, Math.Max(start, end), step);
            }
            else
            {
                // Backwards: start clamps to [0, size - 1], end to [-1, size - 1]; torch slices forwards only, so pick the indices.
                start = Math.Clamp(start, 0, size - 1);
                end = Math.Clamp(end, -1, size - 1);
                long count = Math.Max(0, (start - end + (-step) - 1) / -step);
                using var indices = arange(start, start + count * step, step, int64, device: x.device);
                y = y.index_select(axis, indices);
            }
        }
        return new[] { y };
    }

    private static Tensor[] Split(OnnxOpContext c)
    {
        var x = c.Input(0);
        long axis = c.Axis(c.Int("axis", 0), x.dim());
        long size = x.shape[axis];
        // Opset 13 moved the sizes from an attribute to an optional input; opset 18 added num_outputs for even splits.
        long[]? sizes = c.IntsFromInputOrAttribute(1, "split");
        int outputs = c.Node.Output.Count;
        if (sizes is null || sizes.Length == 0)
        {
            // Opset 18 splits unevenly (the last part smaller) into num_outputs parts; before it the axis must divide evenly.
            long parts = c.Opset >= 18 ? c.Int("num_outputs", outputs) : outputs;
            if (parts < 1 || parts != outputs)
            {
                throw c.Error($"num_outputs is {parts} but the node has {outputs} outputs.");
            }
            if (c.Opset < 18 && size % parts != 0)
            {
                throw c.Error($"axis {axis} has {size} entries, which do not split evenly into {parts} outputs; give the sizes.");
            }
            long chunk = (size + parts - 1) / parts;
            sizes = Enumerable.Range(0, (int)parts).Select(i => Math.Max(0, Math.Min(chunk, size - i * chunk))).ToArray();
        }
        if (sizes.Length != outputs)
        {
            throw c.Error($"split has {sizes.Length} sizes but the node has {outputs} outputs.");
        }
        if (sizes.Sum() != size || sizes.Any(s => s < 0))
        {
            throw c.Error($"split sizes [{string.Join(", ", sizes)}] do not add up to the {size} entries of axis {axis}.");
        }
        return x.split(sizes, axis);
    }
}
