using System;
using System.Collections.Generic;
using System.Linq;
using Onnx;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>
/// Raises a model's default-domain opset for the ops the interpreter supports, rewriting what changed between
/// versions: attributes that became inputs (Slice 10, Clip 11, Pad 11, Dropout 12, Squeeze/Unsqueeze/Split/ReduceSum 13,
/// ReduceMean/ReduceMax 18), Split's num_outputs (18),
/// removed attributes (BatchNormalization's spatial, is_test, consumed_inputs; Dropout's is_test), and the
/// opset-13 change of Softmax/LogSoftmax semantics (rewritten as Flatten, normalise, Reshape).
/// </summary>
internal static class OnnxOpsetUpgrader
{
    /// <summary>
    /// The newest default-domain opset ONNX Runtime 1.31 (the scoring engine) implements: a model that imports a newer one
    /// could be trained but never scored, so it is refused when loaded.
    /// </summary>
    public const int MaximumOpset = 25;

    /// <summary>The lowest IR version that may carry each default-domain opset (ONNX's release table).</summary>
    /// <param name="opset">Default-domain opset.</param>
    public static long MinimumIrVersion(int opset) => opset switch
    {
        <= 8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        <= 24 => 11,
        _ => 12,
    };

    /// <summary>Rewrites <paramref name="model"/> in place to opset <paramref name="target"/> (no-op when already there or later).</summary>
    /// <param name="model">The model (modified).</param>
    /// <param name="target">The default-domain opset wanted.</param>
    /// <param name="supportedOps">The ops whose history between opsets is accounted for (the interpreter's ops); any other op is refused.</param>
    /// <exception cref="NotSupportedException">The model uses an op outside <paramref name="supportedOps"/>.</exception>
    public static void Upgrade(ModelProto model, int target, IReadOnlyCollection<string> supportedOps)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(supportedOps);
        int from = OnnxModelFile.DefaultOpset(model);
        if (from >= target)
        {
            return;
        }
        var graph = model.Graph;
        var rewritten = new List<NodeProto>();
        int counter = 0;
        foreach (var node in graph.Node)
        {
            if (node.Domain is not ("" or "ai.onnx"))
            {
                rewritten.Add(node);
                continue;
            }
            if (!supportedOps.Contains(node.OpType))
            {
                throw new NotSupportedException($"{OnnxAttributes.Describe(node)} cannot be upgraded from opset {from} to {target}: the op is not supported.");
            }
            string Constant(string suffix, TensorProto value)
            {
                value.Name = $"{(string.IsNullOrEmpty(node.Name) ? node.Output[0] : node.Name)}_{suffix}_upgraded_{counter++}";
                graph.Initializer.Add(value);
                return value.Name;
            }
            switch (node.OpType)
            {
                case "BatchNormalization":
                    RemoveAttributes(node, "spatial", "is_test", "consumed_inputs");
                    break;
                case "Dropout":
                    RemoveAttributes(node, "is_test");
                    if (from < 12 && target >= 12 && OnnxAttributes.Find(node, "ratio") is { } ratio)
                    {
                        node.Input.Add(Constant("ratio", FloatScalar(ratio.F)));
                        RemoveAttributes(node, "ratio");
                    }
                    break;
                case "Clip" when from < 11 && target >= 11:
                    {
                        var min = OnnxAttributes.Find(node, "min");
                        var max = OnnxAttributes.Find(node, "max");
                        node.Input.Add(min is null ? "" : Constant("min", FloatScalar(min.F)));
                        if (max is not null)
                        {
                            node.Input.Add(Constant("max", FloatScalar(max.F)));
                        }
                        RemoveAttributes(node, "min", "max");
                    }
                    break;
                case "Pad" when from < 11 && target >= 11:
                    {
                        long[] pads = OnnxAttributes.Ints(node, "pads") ?? Array.Empty<long>();
                        node.Input.Add(Constant("pads", OnnxTensorConversion.FromInt64("", new long[] { pads.Length }, pads)));
                        if (OnnxAttributes.Find(node, "value") is { } value)
                        {
                            node.Input.Add(Constant("value", FloatScalar(value.F)));
                        }
                        RemoveAttributes(node, "pads", "value");
                    }
                    break;
                case "Squeeze" or "Unsqueeze" when from < 13 && target >= 13:
                    MoveIntsToInput(node, "axes", Constant);
                    break;
                case "ReduceMean" or "ReduceMax" when from < 18 && target >= 18:
                    MoveIntsToInput(node, "axes", Constant);
                    break;
                case "ReduceSum" when from < 13 && target >= 13:
                    MoveIntsToInput(node, "axes", Constant);
                    break;
                case "Slice" when from < 10 && target >= 10:
                    {
                        long[] starts = OnnxAttributes.Ints(node, "starts") ?? Array.Empty<long>();
                        long[] ends = OnnxAttributes.Ints(node, "ends") ?? Array.Empty<long>();
                        node.Input.Add(Constant("starts", OnnxTensorConversion.FromInt64("", new long[] { starts.Length }, starts)));
                        node.Input.Add(Constant("ends", OnnxTensorConversion.FromInt64("", new long[] { ends.Length }, ends)));
                        if (OnnxAttributes.Ints(node, "axes") is { } axes)
                        {
                            node.Input.Add(Constant("axes", OnnxTensorConversion.FromInt64("", new long[] { axes.Length }, axes)));
                        }
                        RemoveAttributes(node, "starts", "ends", "axes");
                    }
                    break;
                case "Split":
                    if (from < 13 && target >= 13)
                    {
                        MoveIntsToInput(node, "split", Constant);
                    }
                    // Opset 18: without sizes, the number of parts is an attribute (then required).
                    if (from < 18 && target >= 18 && (node.Input.Count < 2 || string.IsNullOrEmpty(node.Input[1])))
                    {
                        node.Attribute.Add(OnnxAttributes.Create("num_outputs", (long)node.Output.Count));
                    }
                    break;
                case "Softmax" or "LogSoftmax" when from < 13 && target >= 13:
                    rewritten.AddRange(FlattenedSoftmax(node, () => counter++));
                    continue;
            }
            rewritten.Add(node);
        }
        graph.Node.Clear();
        graph.Node.AddRange(rewritten);
        foreach (var entry in model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx"))
        {
            entry.Version = target;
        }
        model.IrVersion = Math.Max(model.IrVersion, MinimumIrVersion(target));
    }

    private static void RemoveAttributes(NodeProto node, params string[] names)
    {
        foreach (var attribute in node.Attribute.Where(a => names.Contains(a.Name)).ToList())
        {
            node.Attribute.Remove(attribute);
        }
    }

    private static void MoveIntsToInput(NodeProto node, string attribute, Func<string, TensorProto, string> constant)
    {
        if (OnnxAttributes.Ints(node, attribute) is { } values)
        {
            while (node.Input.Count < 1)
            {
                node.Input.Add("");
            }
            node.Input.Add(constant(attribute, OnnxTensorConversion.FromInt64("", new long[] { values.Length }, values)));
            RemoveAttributes(node, attribute);
        }
    }

    /// <summary>Old Softmax(x, axis) = Reshape(Softmax13(Flatten(x, axis), axis = -1), Shape(x)).</summary>
    private static IEnumerable<NodeProto> FlattenedSoftmax(NodeProto node, Func<int> next)
    {
        string x = node.Input[0];
        string prefix = $"{node.Output[0]}_opset13_{next()}";
        long axis = OnnxAttributes.Int(node, "axis", 1);
        var shape = new NodeProto { OpType = "Shape", Name = prefix + "_shape" };
        shape.Input.Add(x);
        shape.Output.Add(prefix + "_shape");
        var flatten = new NodeProto { OpType = "Flatten", Name = prefix + "_flatten" };
        flatten.Input.Add(x);
        flatten.Output.Add(prefix + "_flat");
        flatten.Attribute.Add(OnnxAttributes.Create("axis", axis));
        var normalise = new NodeProto { OpType = node.OpType, Name = string.IsNullOrEmpty(node.Name) ? prefix : node.Name };
        normalise.Input.Add(prefix + "_flat");
        normalise.Output.Add(prefix + "_normalised");
        normalise.Attribute.Add(OnnxAttributes.Create("axis", -1L));
        var reshape = new NodeProto { OpType = "Reshape", Name = prefix + "_reshape" };
        reshape.Input.Add(prefix + "_normalised");
        reshape.Input.Add(prefix + "_shape");
        reshape.Output.Add(node.Output[0]);
        return new[] { shape, flatten, normalise, reshape };
    }

    private static TensorProto FloatScalar(float value)
    {
        return OnnxTensorConversion.FromFloat("", Array.Empty<long>(), new[] { value });
    }
}
