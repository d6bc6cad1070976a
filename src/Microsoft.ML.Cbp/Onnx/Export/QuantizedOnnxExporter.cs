using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>One constrained weight to export: its initializer, level set and scale (one value, or one per first-dimension slice).</summary>
/// <param name="Initializer">Initializer name in the graph.</param>
/// <param name="Constraint">The level set.</param>
/// <param name="Scale">The layer scale <c>s</c>; one value per layer, or one per slice along the first dimension.</param>
public sealed record QuantizedInitializer(string Initializer, WeightConstraint Constraint, float[] Scale)
{
    /// <summary>This weight's storage, overriding the one the export is given (mixed precision); null: the export's.</summary>
    public WeightStorage? Storage { get; init; }
}

/// <summary>
/// Writes the graph of an <see cref="OnnxGraphModule"/> back to ONNX with its current (trained) initializers, storing
/// constrained weights compactly: integer codes plus <c>DequantizeLinear</c> with the layer's scale.
/// </summary>
/// <remarks>
/// <para>Each constrained initializer <c>W</c> becomes initializers <c>W_cbp_codes</c> (INT8, INT4 or INT2) and
/// <c>W_cbp_scale</c> (float: a scalar, or 1-D along axis 0 for per-channel scales) and a node
/// <c>DequantizeLinear(W_cbp_codes, W_cbp_scale) -&gt; W</c> at the head of the graph, so every consumer is unchanged.
/// Decoded weights are <c>code * s * unit</c> (see <see cref="LevelCodes"/>), exactly <c>s * level</c> whenever the unit
/// is a power of two (all paper sets).</para>
/// <para>The opset is raised when the storage needs it (INT8 per-channel: 13, INT4: 21, INT2: 25; see
/// <see cref="OnnxOpsetUpgrader"/>). The batch dimension of the graph input and outputs becomes symbolic ("N") and
/// intermediate value_info is dropped, so old models with a fixed batch of 1 score in batches.</para>
/// <para>metadata_props, format version <see cref="FormatVersion"/>:
/// <c>cbp.format_version</c> = "1"; <c>cbp.constraint</c> = level set name; <c>cbp.levels</c> = comma-separated
/// normalised levels (invariant culture, round-trip format); <c>cbp.weight_storage</c> = Float32 | Int8 | Int4 | Int2;
/// <c>cbp.constrained_initializers</c> = comma-separated initializer names. Other metadata entries are kept.</para>
/// </remarks>
public static class QuantizedOnnxExporter
{
    /// <summary>Version of the metadata written (see remarks).</summary>
    public const int FormatVersion = 1;

    /// <summary>Exports the module's graph with its current initializer values.</summary>
    /// <param name="module">The trained module (its constrained parameters must hold <c>s * level</c>).</param>
    /// <param name="constrained">The constrained initializers with their level sets and scales.</param>
    /// <param name="storage">How constrained weights are stored.</param>
    /// <exception cref="ArgumentException">A weight is not on its levels, or the storage cannot hold the level set.</exception>
    public static ModelProto Export(OnnxGraphModule module, IReadOnlyList<QuantizedInitializer> constrained, WeightStorage storage)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(constrained);
        if (!Enum.IsDefined(storage))
        {
            throw new ArgumentException($"WeightStorage {storage} is not Float32, Int8, Int4, Int2 or OneBit.", nameof(storage));
        }
        var model = module.Model.Clone();
        var graph = model.Graph;
        using (var scope = NewDisposeScope())
        {
            for (int i = 0; i < graph.Initializer.Count; i++)
            {
                var original = graph.Initializer[i];
                if (original.DataType is OnnxTensorConversion.DataTypes.Float or OnnxTensorConversion.DataTypes.Double)
                {
                    graph.Initializer[i] = TorchTensorConversion.FromFloat(original.Name, module.InitializerValue(original.Name));
                }
            }
        }
        var stored = constrained.Where(c => (c.Storage ?? storage) != WeightStorage.Float32).ToList();
        if (stored.Count > 0)
        {
            // The opset every storage used needs: per-channel INT8 13, INT4 21, INT2 25, one bit 10 (Mod, Slice inputs).
            int needed = stored.Max(c => (c.Storage ?? storage) switch
            {
                WeightStorage.Int8 => c.Scale.Length > 1 ? 13 : 10,
                WeightStorage.Int4 => 21,
                WeightStorage.OneBit => 10,
                _ => 25,
            });
            OnnxOpsetUpgrader.Upgrade(model, needed, OnnxOpRegistry.Supported);
            var nodes = new List<NodeProto>();
            foreach (var c in stored)
            {
                var layerStorage = c.Storage ?? storage;
                if (!Enum.IsDefined(layerStorage))
                {
                    throw new ArgumentException($"'{c.Initializer}': WeightStorage {layerStorage} is not Float32, Int8, Int4, Int2 or OneBit.", nameof(constrained));
                }
                var (codes, codesOf) = Codes(module, c, layerStorage);
                RemoveFloatWeight(graph, c.Initializer);
                nodes.AddRange(layerStorage == WeightStorage.OneBit ? OneBitDecode.Nodes(graph, c.Initializer, codes.Dims, codes.Values, Scales(c, codesOf))
                    : new[] { Compact(graph, c, codes, codesOf, Bits(layerStorage)) });
            }
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                graph.Node.Insert(0, nodes[i]);
            }
        }
        model.IrVersion = Math.Max(model.IrVersion, OnnxOpsetUpgrader.MinimumIrVersion(OnnxModelFile.DefaultOpset(model)));
        MakeBatchSymbolic(model, module.Input.Name);
        WriteMetadata(model, constrained, storage);
        return model;
    }

    /// <summary>
    /// Checks that <paramref name="storage"/> can hold the integer codes of <paramref name="constraint"/>'s levels (so a Fit
    /// can refuse the combination before training instead of failing at export).
    /// </summary>
    /// <param name="constraint">The level set.</param>
    /// <param name="storage">The storage of constrained weights.</param>
    /// <param name="what">What is stored, for the message (an initializer or "the constrained weights").</param>
    /// <exception cref="ArgumentException">The levels have no common unit (only Float32 can store them), or their codes do not fit the width.</exception>
    internal static LevelCodes? CheckStorage(WeightConstraint constraint, WeightStorage storage, string what)
    {
        if (storage == WeightStorage.Float32)
        {
            return null;
        }
        int bits = Bits(storage);
        var codesOf = LevelCodes.For(constraint)
            ?? throw new ArgumentException($"The levels of {constraint} are not integer multiples of a common unit; store {what} with WeightStorage.Float32.", nameof(WeightStorage));
        if (storage == WeightStorage.OneBit)
        {
            if (codesOf.Codes.Length != 2 || codesOf.Codes.Order().First() != -codesOf.Codes.Max())
            {
                throw new ArgumentException(
                    $"WeightStorage OneBit holds two levels -a and +a (binary); {constraint} has {constraint.Levels.Count}: use Int2 (binary and ternary) or Int4.", nameof(WeightStorage));
            }
            return codesOf;
        }
        if (!codesOf.FitsSigned(bits))
        {
            throw new ArgumentException(
                $"{constraint} needs codes {codesOf.Range.Min}..{codesOf.Range.Max}, which do not fit {bits}-bit integers (WeightStorage {storage}); " +
                (bits == 2 ? "Int2 holds binary and ternary only; use Int4." : "use a wider WeightStorage."), nameof(WeightStorage));
        }
        return codesOf;
    }

    /// <summary>Bits per stored weight: 32 (Float32), 8, 4, 2 or 1.</summary>
    /// <param name="storage">The storage.</param>
    internal static int Bits(WeightStorage storage) => storage switch
    {
        WeightStorage.Float32 => 32,
        WeightStorage.Int8 => 8,
        WeightStorage.Int4 => 4,
        WeightStorage.Int2 => 2,
        WeightStorage.OneBit => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(storage), storage, "Unknown WeightStorage."),
    };

    /// <summary>The scale of code 1 for each slice (the layer's scale times the level set's unit).</summary>
    private static float[] Scales(QuantizedInitializer c, LevelCodes codesOf) => c.Scale.Select(s => (float)(s * codesOf.Unit)).ToArray();

    /// <summary>The integer code of every weight of <paramref name="c"/>, checked to be exactly scale x a level.</summary>
    private static ((long[] Dims, sbyte[] Values) Codes, LevelCodes CodesOf) Codes(OnnxGraphModule module, QuantizedInitializer c, WeightStorage storage)
    {
        var codesOf = CheckStorage(c.Constraint, storage, $"'{c.Initializer}'")!;
        var value = module.InitializerValue(c.Initializer).detach().cpu().to(float64);
        long[] dims = value.shape;
        double[] weights = value.data<double>().ToArray();
        if (c.Scale.Length != 1 && c.Scale.Length != dims[0])
        {
            throw new ArgumentException($"'{c.Initializer}' has {dims[0]} slices along its first dimension but {c.Scale.Length} scales.", nameof(c));
        }
        long slice = weights.Length / Math.Max(1, dims[0]);
        var allowed = new HashSet<int>(codesOf.Codes);
        var codes = new sbyte[weights.Length];
        for (int i = 0; i < weights.Length; i++)
        {
            double step = c.Scale[c.Scale.Length == 1 ? 0 : (int)(i / slice)] * codesOf.Unit;
            double exact = weights[i] / step;
            int code = (int)Math.Round(exact);
            if (!allowed.Contains(code) || Math.Abs(exact - code) > 1e-4)
            {
                throw new ArgumentException(
                    $"Weight {i} of '{c.Initializer}' is {weights[i]}, which is not scale x a level of {c.Constraint} (nearest code {code}); " +
                    "export after training has projected the weights onto their levels.", nameof(c));
            }
            codes[i] = (sbyte)code;
        }
        return ((dims, codes), codesOf);
    }

    private static NodeProto Compact(GraphProto graph, QuantizedInitializer c, (long[] Dims, sbyte[] Values) stored, LevelCodes codesOf, int bits)
    {
        var (dims, codes) = stored;
        string codesName = c.Initializer + "_cbp_codes", scaleName = c.Initializer + "_cbp_scale";
        graph.Initializer.Add(OnnxTensorConversion.FromSignedCodes(codesName, dims, codes, bits));
        var scales = Scales(c, codesOf);
        using (var scaleTensor = scales.Length == 1 ? tensor(scales[0]) : tensor(scales))
        {
            graph.Initializer.Add(TorchTensorConversion.FromFloat(scaleName, scaleTensor));
        }
        var node = new NodeProto { OpType = "DequantizeLinear", Name = c.Initializer + "_cbp_dequantize" };
        node.Input.Add(codesName);
        node.Input.Add(scaleName);
        node.Output.Add(c.Initializer);
        if (scales.Length > 1)
        {
            node.Attribute.Add(OnnxAttributes.Create("axis", 0L));
        }
        return node;
    }

    /// <summary>Removes the float initializer (and its graph-input entry) that stored codes replace.</summary>
    private static void RemoveFloatWeight(GraphProto graph, string name)
    {
        int index = graph.Initializer.ToList().FindIndex(t => t.Name == name);
        if (index < 0)
        {
            throw new ArgumentException($"'{name}' is not an initializer of the graph.", "constrained");
        }
        graph.Initializer.RemoveAt(index);
        if (graph.Input.FirstOrDefault(i => i.Name == name) is { } listed)
        {
            graph.Input.Remove(listed);
        }
    }

    private static void MakeBatchSymbolic(ModelProto model, string inputName)
    {
        var graph = model.Graph;
        foreach (var info in graph.Input.Where(i => i.Name == inputName).Concat(graph.Output))
        {
            var shape = info.Type?.TensorType?.Shape;
            if (shape is { Dim.Count: > 0 })
            {
                shape.Dim[0] = new TensorShapeProto.Types.Dimension { DimParam = "N" };
            }
        }
        graph.ValueInfo.Clear();
    }

    private static string Levels(WeightConstraint constraint) => string.Join(",", constraint.Levels.Select(l => l.ToString("R", CultureInfo.InvariantCulture)));

    private static void WriteMetadata(ModelProto model, IReadOnlyList<QuantizedInitializer> constrained, WeightStorage storage)
    {
        var entries = new Dictionary<string, string>
        {
            ["cbp.format_version"] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["cbp.weight_storage"] = storage.ToString(),
            ["cbp.constrained_initializers"] = string.Join(",", constrained.Select(c => c.Initializer)),
        };
        if (constrained.Count > 0)
        {
            // One level set for every layer (the usual case), or "Mixed" with each layer's own in cbp.layers.
            var constraint = constrained[0].Constraint;
            bool uniform = constrained.All(c => c.Constraint.Levels.SequenceEqual(constraint.Levels) && (c.Storage ?? storage) == (constrained[0].Storage ?? storage));
            entries["cbp.constraint"] = uniform ? constraint.Name : "Mixed";
            if (uniform)
            {
                entries["cbp.levels"] = Levels(constraint);
                if (constrained[0].Storage is { } only)
                {
                    entries["cbp.weight_storage"] = only.ToString();
                }
            }
            else
            {
                entries["cbp.weight_storage"] = "Mixed";
                // A file re-quantized from a uniform one must not keep its old level set.
                if (model.MetadataProps.FirstOrDefault(p => p.Key == "cbp.levels") is { } stale)
                {
                    model.MetadataProps.Remove(stale);
                }
            }
            entries["cbp.layers"] = string.Join(";", constrained.Select(c => $"{c.Initializer}={c.Constraint.Name}:{c.Storage ?? storage}:{Levels(c.Constraint)}"));
        }
        foreach (var (key, value) in entries)
        {
            var existing = model.MetadataProps.FirstOrDefault(p => p.Key == key);
            if (existing is null)
            {
                model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
            }
            else
            {
                existing.Value = value;
            }
        }
    }
}
