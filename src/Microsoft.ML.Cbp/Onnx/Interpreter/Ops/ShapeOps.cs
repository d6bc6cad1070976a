using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>Flatten, Reshape, Transpose, Concat, Shape, Gather, Unsqueeze, Squeeze, Pad, Constant.</summary>
internal static class ShapeOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        ops["Flatten"] = c =>
        {
            var x = c.Input(0);
            long axis = c.Int("axis", 1);
            axis = axis < 0 ? axis + x.dim() : axis;
            if (axis < 0 || axis > x.dim())
            {
                throw c.Error($"axis {c.Int("axis", 1)} is out of range for rank {x.dim()}.");
            }
            long outer = x.shape.Take((int)axis).Aggregate(1L, (a, b) => a * b);
            return new[] { x.reshape(outer, -1) };
        };
        ops["Reshape"] = Reshape;
        ops["Transpose"] = c =>
        {
            var x = c.Input(0);
            long[] perm = c.Ints("perm") ?? Enumerable.Range(0, (int)x.dim()).Reverse().Select(i => (long)i).ToArray();
            if (perm.Length != x.dim())
            {
                throw c.Error($"perm has {perm.Length} entries for a tensor of rank {x.dim()}.");
            }
            return new[] { x.permute(perm) };
        };
        ops["Concat"] = c =>
        {
            var inputs = c.Inputs.Where(t => t is not null).Select(t => t!).ToList();
            long axis = c.Axis(c.Int("axis", 0), inputs[0].dim());
            return new[] { cat(inputs, axis) };
        };
        ops["Shape"] = c =>
        {
            var shape = c.Input(0).shape;
            long rank = shape.Length;
            long start = c.Int("start", 0), end = c.Int("end", rank);
            start = Math.Clamp(start < 0 ? start + rank : start, 0, rank);
            end = Math.Clamp(end < 0 ? end + rank : end, 0, rank);
            return new[] { tensor(shape.Skip((int)start).Take((int)Math.Max(0, end - start)).ToArray(), device: c.Input(0).device) };
        };
        ops["Gather"] = c =>
        {
            var data = c.Input(0);
            var indices = c.Input(1).to(int64);
            long axis = c.Axis(c.Int("axis", 0), data.dim());
            long size = data.shape[axis];
            // Negative indices count from the end.
            var flat = indices.flatten();
            flat = where(flat < 0, flat + size, flat);
            var picked = data.index_select(axis, flat);
            var shape = data.shape.Take((int)axis).Concat(indices.shape).Concat(data.shape.Skip((int)axis + 1)).ToArray();
            return new[] { picked.reshape(shape) };
        };
        ops["Unsqueeze"] = c =>
        {
            var x = c.Input(0);
            long[] axes = c.IntsFromInputOrAttribute(1, "axes") ?? throw c.Error("axes are required.");
            long rank = x.dim() + axes.Length;
            var y = x;
            foreach (long axis in axes.Select(a => c.Axis(a, rank)).OrderBy(a => a))
            {
                y = y.unsqueeze(axis);
            }
            return new[] { y };
        };
        ops["Squeeze"] = c =>
        {
            var x = c.Input(0);
            long[]? axes = c.IntsFromInputOrAttribute(1, "axes");
            if (axes is null || axes.Length == 0)
            {
                return new[] { x.reshape(x.shape.Where(d => d != 1).ToArray()) };
            }
            var normalised = axes.Select(a => c.Axis(a, x.dim())).ToHashSet();
            foreach (long axis in normalised.Where(a => x.shape[a] != 1))
            {
                throw c.Error($"cannot squeeze axis {axis} of size {x.shape[axis]}.");
            }
            return new[] { x.reshape(x.shape.Where((_, i) => !normalised.Contains(i)).ToArray()) };
        };
        ops["Pad"] = Pad;
        ops["Constant"] = c =>
        {
            if (OnnxAttributes.Find(c.Node, "value") is { } value)
            {
                return new[] { TorchTensorConversion.ToTorch(value.T) };
            }
            if (OnnxAttributes.Find(c.Node, "value_float") is { } f)
            {
                return new[] { tensor(f.F) };
            }
            if (OnnxAttributes.Find(c.Node, "value_floats") is { } fs)
            {
                return new[] { tensor(fs.Floats.ToArray()) };
            }
            if (OnnxAttributes.Find(c.Node, "value_int") is { } i)
            {
                return new[] { tensor(i.I) };
            }
            if (OnnxAttributes.Find(c.Node, "value_ints") is { } ints)
            {
                return new[] { tensor(ints.Ints.ToArray()) };
            }
            throw c.Unsupported("Constant needs value, value_float(s) or value_int(s); sparse and string constants are not supported.");
        };
    }

    private static Tensor[] Reshape(OnnxOpContext c)
    {
        var x = c.Input(0);
        long[] shape = c.IntsFromInputOrAttribute(1, "shape") ?? throw c.Error("shape is required.");
        bool allowZero = c.Int("allowzero", 0) != 0;
        var target = (long[])shape.Clone();
        for (int i = 0; i < target.Length; i++)
        {
            if (target[i] == 0 && !allowZero)
            {
                if (i >= x.dim())
                {
                    throw c.Error($"shape entry {i} is 0 (copy the input's dimension) but the input has rank {x.dim()}.");
                }
                target[i] = x.shape[i];
            }
        }
        // Old models often fix the batch dimension (say 1) inside Reshape; keep the actual batch so batched training works.
        if (c.FixedBatch is long fixedBatch && target.Length > 0 && x.dim() > 0 && target[0] == fixedBatch && x.shape[0] != fixedBatch
            && shape[0] != 0 && target.Skip(1).All(d => d > 0))
        {
            target[0] = x.shape[0];
        }
        long known = target.Where(d => d != -1).Aggregate(1L, (a, b) => a * b);
        if (target.Count(d => d == -1) > 1 || (target.Contains(-1) ? known == 0 || x.numel() % known != 0 : known != x.numel()))
        {
            throw c.Error($"cannot reshape [{string.Join(", ", x.shape)}] ({x.numel()} elements) to [{string.Join(", ", shape)}].");
        }
        return new[] { x.reshape(target) };
    }

    private static Tensor[] Pad(OnnxOpContext c)
    {
        var x = c.Input(0);
        long rank = x.dim();
        long[] pads = c.IntsFromInputOrAttribute(1, "pads") ?? throw c.Error("pads are required.");
        double value = c.ScalarFromInputOrAttribute(2, "value", 0);
        long[] axes = c.OptionalInput(3) is not null
            ? c.IntsFromInputOrAttribute(3, "axes")!.Select(a => c.Axis(a, rank)).ToArray()
            : Enumerable.Range(0, (int)rank).Select(a => (long)a).ToArray();
        if (pads.Length != 2 * axes.Length)
        {
            throw c.Error($"pads has {pads.Length} values; {axes.Length} padded axes need {2 * axes.Length}.");
        }
        var begin = new long[rank];
        var end = new long[rank];
        for (int i = 0; i < axes.Length; i++)
        {
            begin[axes[i]] = pads[i];
            end[axes[i]] = pads[i + axes.Length];
        }
        // torch wants (last begin, last end, previous begin, previous end, ...) down to the first padded axis.
        int first = Enumerable.Range(0, (int)rank).FirstOrDefault(a => begin[a] != 0 || end[a] != 0, (int)rank);
        if (first == rank)
        {
            return new[] { x.alias() };
        }
        var torchPads = new List<long>();
        for (long a = rank - 1; a >= first; a--)
        {
            torchPads.Add(begin[a]);
            torchPads.Add(end[a]);
        }
        string mode = c.String("mode", "constant");
        var paddingMode = mode switch
        {
            "constant" => PaddingModes.Constant,
            "reflect" => PaddingModes.Reflect,
            "edge" => PaddingModes.Replicate,
            _ => throw c.Unsupported($"Pad mode '{mode}' is not supported (constant, reflect, edge are)."),
        };
        if (paddingMode != PaddingModes.Constant && (first < 2 || rank - first > 2))
        {
            throw c.Unsupported($"Pad mode '{mode}' is supported on the last one or two axes of an [N, C, ...] tensor only.");
        }
        return new[] { nn.functional.pad(x, torchPads.ToArray(), paddingMode, value) };
    }
}
