using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Onnx;

using Microsoft.ML.Cbp.Onnx;

namespace Microsoft.ML.Cbp.Scoring;

/// <summary>
/// Turns a trained (compact) network into the two scoring graphs the ML.NET transformer uses: a batched one that our
/// session runs one <c>Run</c> per batch, and a per-row one that ML.NET's <c>OnnxTransformer</c> runs (the form that
/// is saved inside an ML.NET model zip and loads with plain ML.NET).
/// </summary>
/// <remarks>
/// <para>Both graphs share the network's nodes exactly and add the same head (Softmax and ArgMax, or a reshape for
/// regression). They differ only in reshapes at the input and the outputs, so ONNX Runtime computes every row bit for
/// bit alike in both (the tests check it).</para>
/// <para>Integer weight codes are decoded by <c>Cast</c> and <c>Mul</c> on constants instead of <c>DequantizeLinear</c>:
/// ONNX Runtime folds them into float weights at session creation with its default settings (which ML.NET uses and
/// cannot change), so Conv-BatchNorm fusion happens and the compact model scores at float speed in both sessions;
/// <c>DequantizeLinear</c> would only be folded with <c>session.disable_quant_qdq</c>. The codes live in <c>Constant</c>
/// nodes because ML.NET's ONNX reader rejects INT4 and INT2 initializers. Decoded values equal those of
/// <c>DequantizeLinear</c> (the same single float product).</para>
/// </remarks>
internal static class ScoringGraph
{
    /// <summary>The output with the probabilities (classification) or the value (regression): the Score column.</summary>
    private const string ScoreOutput = ScoringOutput.Score;

    /// <summary>The per-row output with the predicted label value (classification): the PredictedLabel column.</summary>
    private const string PredictedLabelOutput = ScoringOutput.PredictedLabel;

    /// <summary>The batched output with the arg-max class index (int64), for classification.</summary>
    public const string ClassOutput = "cbp_class";

    /// <summary>The input name of the batched graph.</summary>
    public const string BatchedInput = "cbp_features";

    private const string Prefix = "cbp_";

    /// <summary>The per-row head's names: the network's score and label before rows with non-finite features are masked, and the mask's nodes.</summary>
    private const string ScoreNetwork = Prefix + "score_network", LabelNetwork = Prefix + "label_network", NonFinitePrefix = Prefix + "nonfinite_",
        NonFiniteFlag = NonFinitePrefix + "flag";

    /// <summary>Metadata keys a scoring graph carries, and the two values of the form key.</summary>
    private const string FormKey = "cbp.scoring.form", PerRowForm = "per_row", BatchedForm = "batched", TaskKey = "cbp.scoring.task", OutputsKey = "cbp.scoring.outputs", InputShapeKey = "cbp.scoring.input_shape";

    /// <summary>
    /// The per-row scoring graph for ML.NET's <c>OnnxTransformer</c>: input <paramref name="featureColumn"/> [rowWidth];
    /// outputs <see cref="ScoreOutput"/> [C] (or [1]) and, for classification, <see cref="PredictedLabelOutput"/> [1]
    /// (the entry of <paramref name="labelValues"/> at the arg-max class, or a Boolean for <see cref="ScoringTask.Binary"/>).
    /// </summary>
    /// <param name="network">The network: one data input whose non-batch dimensions are fixed, one output [N, outputs].</param>
    /// <param name="inputName">The network's data input.</param>
    /// <param name="outputName">The network's output.</param>
    /// <param name="task">The head to add.</param>
    /// <param name="outputs">Values per row of <paramref name="outputName"/>.</param>
    /// <param name="featureColumn">Name of the graph input: the ML.NET feature column it reads.</param>
    /// <param name="labelValues">For <see cref="ScoringTask.Multiclass"/>: a 1-D tensor of the label value of each class.</param>
    public static ModelProto PerRow(ModelProto network, string inputName, string outputName, ScoringTask task, int outputs, string featureColumn, TensorProto? labelValues)
    {
        if (task == ScoringTask.Multiclass && labelValues is null)
        {
            throw new ArgumentNullException(nameof(labelValues), "A multiclass per-row graph needs the label value of each class.");
        }
        return BuildPerRow(network, inputName, outputName, task, outputs, featureColumn, labelValues);
    }

    /// <summary>
    /// The batched form of a per-row scoring graph made by <see cref="PerRow"/>: input <see cref="BatchedInput"/> [N, rowWidth];
    /// outputs <see cref="ScoreOutput"/> [N, C] (or [N, 1]) and, for classification, <see cref="ClassOutput"/> [N]. Only the
    /// reshapes at the input and outputs change; every network and head node stays as it is.
    /// </summary>
    /// <param name="perRow">A per-row scoring graph (metadata <c>cbp.scoring.form = per_row</c>), not modified.</param>
    /// <exception cref="ArgumentException">The model is not a per-row scoring graph made here.</exception>
    public static ModelProto ToBatched(ModelProto perRow)
    {
        ArgumentNullException.ThrowIfNull(perRow);
        var (task, outputs, rowShape) = Describe(perRow);
        var model = perRow.Clone();
        var graph = model.Graph;
        string featureInput = graph.Input[0].Name;
        long width = rowShape.Aggregate(1L, (a, b) => a * b);
        graph.Input[0] = Float(BatchedInput, new object[] { "N", width });
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
            {
                node.Input[i] = node.Input[i] == featureInput ? BatchedInput : node.Input[i];
            }
        }
        Replace(graph, OnnxTensorConversion.FromInt64(Prefix + "input_shape", new long[] { rowShape.Length + 1 }, new[] { -1L }.Concat(rowShape).ToArray()));
        graph.Output.Clear();
        // The batched session's reader masks rows with non-finite features itself (BatchedScoringDataView): the per-row
        // mask goes, and the network's score and label are the outputs. Graphs saved before the mask existed (version
        // 0.1) have none, and their head writes Score and PredictedLabel directly.
        bool masked = graph.Node.Any(n => n.Output.Contains(NonFiniteFlag));
        foreach (var node in graph.Node.Where(n => n.Output.Any(o => o.StartsWith(NonFinitePrefix, StringComparison.Ordinal))).ToList())
        {
            graph.Node.Remove(node);
        }
        if (task == ScoringTask.Regression)
        {
            Replace(graph, OnnxTensorConversion.FromInt64(Prefix + "score_shape", new long[] { 2 }, new[] { -1L, 1L }));
            if (masked)
            {
                graph.Node.Remove(graph.Node.Single(n => n.Output.Contains(ScoreOutput)));
                Rename(graph, ScoreNetwork, ScoreOutput);
            }
            RemoveUnusedInitializers(graph);
            graph.Output.Add(Float(ScoreOutput, new object[] { "N", 1L }));
        }
        else
        {
            // The softmax writes Score directly; the per-row reshape, the mask and the label lookup go.
            var head = new[] { ScoreOutput, PredictedLabelOutput, ScoreNetwork, LabelNetwork };
            foreach (var node in graph.Node.Where(n => n.Output.Any(head.Contains)).ToList())
            {
                graph.Node.Remove(node);
            }
            foreach (var node in graph.Node)
            {
                for (int i = 0; i < node.Output.Count; i++)
                {
                    node.Output[i] = node.Output[i] == Prefix + "probabilities" ? ScoreOutput : node.Output[i];
                }
            }
            RemoveUnusedInitializers(graph);
            graph.Output.Add(Float(ScoreOutput, new object[] { "N", (long)outputs }));
            graph.Output.Add(ValueInfo(ClassOutput, OnnxTensorConversion.DataTypes.Int64, new object[] { "N" }));
        }
        SetMetadata(model, FormKey, BatchedForm);
        return model;
    }

    /// <summary>Whether <paramref name="model"/> is a per-row scoring graph made by <see cref="PerRow"/> (as found inside a saved model zip).</summary>
    /// <param name="model">Any ONNX model.</param>
    public static bool IsPerRow(ModelProto model) =>
        model.MetadataProps.Any(p => p.Key == FormKey && p.Value == PerRowForm);

    /// <summary>Reads the task, outputs per row and input row shape recorded in a scoring graph's metadata.</summary>
    /// <param name="scoringGraph">A graph made by <see cref="PerRow"/> or <see cref="ToBatched"/>.</param>
    /// <exception cref="ArgumentException">The metadata is missing or malformed.</exception>
    public static (ScoringTask Task, int Outputs, long[] InputShape) Describe(ModelProto scoringGraph)
    {
        ArgumentNullException.ThrowIfNull(scoringGraph);
        string? Get(string key) => scoringGraph.MetadataProps.FirstOrDefault(p => p.Key == key)?.Value;
        if (Get(FormKey) is null || !Enum.TryParse<ScoringTask>(Get(TaskKey), out var task)
            || !int.TryParse(Get(OutputsKey), NumberStyles.Integer, CultureInfo.InvariantCulture, out int outputs)
            || Get(InputShapeKey) is not { } shape)
        {
            throw new ArgumentException("The model is not a Microsoft.ML.Cbp scoring graph (its cbp.scoring.* metadata is missing).", nameof(scoringGraph));
        }
        return (task, outputs, shape.Split(',').Select(d => long.Parse(d, CultureInfo.InvariantCulture)).ToArray());
    }

    /// <summary>Finds a per-row scoring graph's label values (multiclass), as ML.NET represents them: text as <see cref="ReadOnlyMemory{T}"/> of char, numbers as themselves.</summary>
    /// <param name="perRow">A per-row multiclass scoring graph.</param>
    /// <returns>The values, or null when the graph has none.</returns>
    public static Array? ReadLabelValues(ModelProto perRow)
    {
        ArgumentNullException.ThrowIfNull(perRow);
        var tensor = perRow.Graph.Initializer.FirstOrDefault(t => t.Name == Prefix + "label_values");
        // A masked head appends the missing label value after the classes' values (BuildPerRow).
        int count = tensor is null ? 0 : (int)tensor.Dims[0] - (perRow.Graph.Node.Any(n => n.Output.Contains(NonFiniteFlag)) ? 1 : 0);
        Array? values = tensor?.DataType switch
        {
            null => null,
            OnnxTensorConversion.DataTypes.String => tensor.StringData.Select(b => b.ToStringUtf8().AsMemory()).ToArray(),
            OnnxTensorConversion.DataTypes.Float => tensor.FloatData.ToArray(),
            OnnxTensorConversion.DataTypes.Double => tensor.DoubleData.ToArray(),
            OnnxTensorConversion.DataTypes.Int32 => tensor.Int32Data.ToArray(),
            OnnxTensorConversion.DataTypes.Int64 => tensor.Int64Data.ToArray(),
            OnnxTensorConversion.DataTypes.UInt32 => tensor.Uint64Data.Select(v => (uint)v).ToArray(),
            var other => throw new ArgumentException($"Label values of ONNX type {other} are not supported.", nameof(perRow)),
        };
        if (values is null || values.Length == count)
        {
            return values;
        }
        var classes = Array.CreateInstance(values.GetType().GetElementType()!, count);
        Array.Copy(values, classes, count);
        return classes;
    }

    private static void Replace(GraphProto graph, TensorProto tensor)
    {
        int index = graph.Initializer.ToList().FindIndex(t => t.Name == tensor.Name);
        if (index < 0)
        {
            throw new ArgumentException($"The scoring graph has no initializer '{tensor.Name}'.", nameof(graph));
        }
        graph.Initializer[index] = tensor;
    }

    /// <summary>
    /// Replaces every <c>DequantizeLinear</c> whose codes and scale are initializers by <c>Constant</c> codes, <c>Cast</c>
    /// to float and <c>Mul</c> by the scale (reshaped to broadcast along its axis). Other nodes are untouched.
    /// </summary>
    /// <param name="model">A model, not modified.</param>
    /// <returns>A decoded copy.</returns>
    public static ModelProto DecodeWithCastAndMul(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var copy = model.Clone();
        var graph = copy.Graph;
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        for (int i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            if (node.OpType != "DequantizeLinear" || node.Input.Count < 2
                || !initializers.TryGetValue(node.Input[0], out var codes) || !initializers.TryGetValue(node.Input[1], out var scale)
                || (node.Input.Count > 2 && !string.IsNullOrEmpty(node.Input[2])) || OnnxAttributes.Find(node, "block_size") is { I: > 0 })
            {
                continue;
            }
            graph.Initializer.Remove(codes);
            var scaleCopy = scale.Clone();
            scaleCopy.Name = node.Name + "_cbp_broadcast_scale";
            if (scale.Dims.Count == 1 && codes.Dims.Count > 1)
            {
                long axis = OnnxAttributes.Int(node, "axis", 1);
                axis = axis < 0 ? axis + codes.Dims.Count : axis;
                scaleCopy.Dims.Clear();
                for (int d = 0; d < codes.Dims.Count; d++)
                {
                    scaleCopy.Dims.Add(d == axis ? codes.Dims[d] : 1);
                }
            }
            graph.Initializer.Add(scaleCopy);
            var constant = new NodeProto { OpType = "Constant", Name = node.Name + "_cbp_codes" };
            constant.Output.Add(codes.Name);
            constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = codes });
            var cast = new NodeProto { OpType = "Cast", Name = node.Name + "_cbp_cast" };
            cast.Input.Add(codes.Name);
            cast.Output.Add(codes.Name + "_cbp_float");
            cast.Attribute.Add(OnnxAttributes.Create("to", (long)OnnxTensorConversion.DataTypes.Float));
            var mul = new NodeProto { OpType = "Mul", Name = node.Name + "_cbp_mul" };
            mul.Input.Add(cast.Output[0]);
            mul.Input.Add(scaleCopy.Name);
            mul.Output.Add(node.Output[0]);
            graph.Node.RemoveAt(i);
            graph.Node.Insert(i, mul);
            graph.Node.Insert(i, cast);
            graph.Node.Insert(i, constant);
            i += 2;
        }
        RemoveUnusedInitializers(graph);
        return copy;
    }

    /// <summary>A 1-D tensor holding one label value per class, for <see cref="PerRow"/>.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="values">The values: strings, or float, double, int, long or uint numbers.</param>
    /// <exception cref="ArgumentException">The value type has no ONNX counterpart here.</exception>
    public static TensorProto LabelValues(string name, Array values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var tensor = new TensorProto { Name = name };
        tensor.Dims.Add(values.Length);
        switch (values)
        {
            case string[] s:
                tensor.DataType = OnnxTensorConversion.DataTypes.String;
                tensor.StringData.AddRange(s.Select(Google.Protobuf.ByteString.CopyFromUtf8));
                break;
            case float[] f:
                tensor.DataType = OnnxTensorConversion.DataTypes.Float;
                tensor.FloatData.AddRange(f);
                break;
            case double[] d:
                tensor.DataType = OnnxTensorConversion.DataTypes.Double;
                tensor.DoubleData.AddRange(d);
                break;
            case int[] i:
                tensor.DataType = OnnxTensorConversion.DataTypes.Int32;
                tensor.Int32Data.AddRange(i);
                break;
            case long[] l:
                tensor.DataType = OnnxTensorConversion.DataTypes.Int64;
                tensor.Int64Data.AddRange(l);
                break;
            case uint[] u:
                tensor.DataType = OnnxTensorConversion.DataTypes.UInt32;
                tensor.Uint64Data.AddRange(u.Select(v => (ulong)v));
                break;
            default:
                throw new ArgumentException(
                    $"Label values of type {values.GetType().GetElementType()?.Name} cannot be stored in ONNX here; use text, Single, Double, Int32, Int64 or UInt32 key values.",
                    nameof(values));
        }
        return tensor;
    }

    private static ModelProto BuildPerRow(ModelProto network, string inputName, string outputName, ScoringTask task, int outputs, string graphInput, TensorProto? labelValues)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentException.ThrowIfNullOrEmpty(inputName);
        ArgumentException.ThrowIfNullOrEmpty(outputName);
        ArgumentException.ThrowIfNullOrEmpty(graphInput);
        if (!Enum.IsDefined(task))
        {
            throw new ArgumentOutOfRangeException(nameof(task), task, "Unknown scoring task.");
        }
        if (outputs < 1 || (task == ScoringTask.Binary && outputs != 2) || (task == ScoringTask.Regression && outputs != 1))
        {
            throw new ArgumentException($"A {task} head needs {(task == ScoringTask.Binary ? "2 outputs" : task == ScoringTask.Regression ? "1 output" : "at least 1 output")} per row; the network has {outputs}.", nameof(outputs));
        }
        var model = DecodeWithCastAndMul(network);
        var graph = model.Graph;
        var input = graph.Input.FirstOrDefault(i => i.Name == inputName)
            ?? throw new ArgumentException($"'{inputName}' is not an input of the graph.", nameof(inputName));
        var rowShape = input.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue).ToArray();
        if (rowShape.Length == 0 || rowShape.Any(d => d <= 0))
        {
            throw new ArgumentException($"Input '{inputName}' must have fixed non-batch dimensions to be scored by rows.", nameof(inputName));
        }
        long width = rowShape.Aggregate(1L, (a, b) => a * b);

        // Names the head uses must not already name a tensor of the network.
        foreach (string reserved in new[] { graphInput, ScoreOutput, PredictedLabelOutput, ClassOutput })
        {
            if (reserved != inputName && TensorNames(graph).Contains(reserved))
            {
                Rename(graph, reserved, reserved + "_cbp_network");
                outputName = outputName == reserved ? reserved + "_cbp_network" : outputName;
            }
        }
        if (TensorNames(graph).Any(n => n.StartsWith(Prefix, StringComparison.Ordinal) && !n.Contains("_cbp_", StringComparison.Ordinal)))
        {
            // Our own head names start with the prefix; a network using it would be ambiguous.
            throw new ArgumentException($"The network uses tensor names starting with '{Prefix}', which the scoring head reserves.", nameof(network));
        }
        string networkInput = inputName;
        if (networkInput == graphInput)
        {
            networkInput = inputName + "_cbp_network";
            Rename(graph, inputName, networkInput);
        }
        graph.Input.Remove(graph.Input.First(i => i.Name == networkInput));
        graph.Input.Insert(0, Float(graphInput, new object[] { width }));
        graph.Initializer.Add(OnnxTensorConversion.FromInt64(Prefix + "input_shape", new long[] { rowShape.Length + 1 }, new[] { 1L }.Concat(rowShape).ToArray()));
        graph.Node.Insert(0, Node("Reshape", new[] { graphInput, Prefix + "input_shape" }, networkInput));

        graph.Output.Clear();
        // A row with a NaN or infinite feature gets no prediction: Score NaN, PredictedLabel the missing key (a label value
        // outside the key's values, which MapValueToKey maps to the missing key) or false. The flag needs opset 10 (IsInf).
        AddNonFiniteFlag(model, graphInput);
        if (task == ScoringTask.Regression)
        {
            graph.Initializer.Add(OnnxTensorConversion.FromInt64(Prefix + "score_shape", new long[] { 1 }, new[] { 1L }));
            graph.Node.Add(Node("Reshape", new[] { outputName, Prefix + "score_shape" }, ScoreNetwork));
            AddWhereNonFinite(graph, ScoreNetwork, NaNs(Prefix + "score_missing", 1), ScoreOutput);
            graph.Output.Add(Float(ScoreOutput, new object[] { 1L }));
        }
        else
        {
            string probabilities = Prefix + "probabilities";
            graph.Node.Add(Node("Softmax", new[] { outputName }, probabilities, OnnxAttributes.Create("axis", 1L)));
            graph.Node.Add(Node("ArgMax", new[] { outputName }, ClassOutput, OnnxAttributes.Create("axis", 1L), OnnxAttributes.Create("keepdims", 0L)));
            graph.Initializer.Add(OnnxTensorConversion.FromInt64(Prefix + "score_shape", new long[] { 1 }, new long[] { outputs }));
            graph.Node.Add(Node("Reshape", new[] { probabilities, Prefix + "score_shape" }, ScoreNetwork));
            AddWhereNonFinite(graph, ScoreNetwork, NaNs(Prefix + "score_missing", outputs), ScoreOutput);
            graph.Output.Add(Float(ScoreOutput, new object[] { (long)outputs }));
            if (task == ScoringTask.Multiclass)
            {
                // The mask picks an index, not a value: ONNX Runtime's Where has no kernel for some label types (UInt32 keys),
                // Gather takes every type. Index K (after the K classes' values) holds the missing label value.
                var values = WithMissingLabelValue(labelValues!);
                values.Name = Prefix + "label_values";
                graph.Initializer.Add(values);
                long missingIndex = values.Dims[0] - 1;
                AddWhereNonFinite(graph, ClassOutput, OnnxTensorConversion.FromInt64(Prefix + "label_missing_index", new long[] { 1 }, new[] { missingIndex }), NonFinitePrefix + "label_index");
                graph.Node.Add(Node("Gather", new[] { values.Name, NonFinitePrefix + "label_index" }, PredictedLabelOutput, OnnxAttributes.Create("axis", 0L)));
                graph.Output.Add(ValueInfo(PredictedLabelOutput, values.DataType, new object[] { 1L }));
            }
            else
            {
                graph.Initializer.Add(OnnxTensorConversion.FromInt64(Prefix + "true_class", Array.Empty<long>(), new[] { 1L }));
                graph.Node.Add(Node("Equal", new[] { ClassOutput, Prefix + "true_class" }, LabelNetwork));
                graph.Node.Add(Node("Not", new[] { NonFiniteFlag }, NonFinitePrefix + "finite"));
                graph.Node.Add(Node("And", new[] { LabelNetwork, NonFinitePrefix + "finite" }, PredictedLabelOutput));
                graph.Output.Add(ValueInfo(PredictedLabelOutput, OnnxTensorConversion.DataTypes.Bool, new object[] { 1L }));
            }
        }
        graph.ValueInfo.Clear();
        SetMetadata(model, FormKey, PerRowForm);
        SetMetadata(model, TaskKey, task.ToString());
        SetMetadata(model, OutputsKey, outputs.ToString(CultureInfo.InvariantCulture));
        SetMetadata(model, InputShapeKey, string.Join(",", rowShape));
        return model;
    }

    /// <summary>
    /// Adds <see cref="NonFiniteFlag"/>: a boolean scalar, true when any value of the per-row input is NaN or infinite.
    /// Raises the model to opset 11 first when it is older (IsInf needs opset 10).
    /// </summary>
    private static void AddNonFiniteFlag(ModelProto model, string input)
    {
        if (OnnxModelFile.DefaultOpset(model) < 11)
        {
            // Every op of the graph was loaded by the interpreter (the graph is a trained network): the upgrader may pass them.
            OnnxOpsetUpgrader.Upgrade(model, 11, model.Graph.Node.Select(n => n.OpType).Distinct().ToList());
            model.IrVersion = Math.Max(model.IrVersion, OnnxOpsetUpgrader.MinimumIrVersion(11));
        }
        var graph = model.Graph;
        graph.Node.Add(Node("IsNaN", new[] { input }, NonFinitePrefix + "nan"));
        graph.Node.Add(Node("IsInf", new[] { input }, NonFinitePrefix + "inf"));
        graph.Node.Add(Node("Or", new[] { NonFinitePrefix + "nan", NonFinitePrefix + "inf" }, NonFinitePrefix + "any"));
        graph.Node.Add(Node("Cast", new[] { NonFinitePrefix + "any" }, NonFinitePrefix + "int", OnnxAttributes.Create("to", (long)OnnxTensorConversion.DataTypes.Int32)));
        graph.Node.Add(Node("ReduceMax", new[] { NonFinitePrefix + "int" }, NonFinitePrefix + "max", OnnxAttributes.Create("keepdims", 0L)));
        graph.Node.Add(Node("Cast", new[] { NonFinitePrefix + "max" }, NonFiniteFlag, OnnxAttributes.Create("to", (long)OnnxTensorConversion.DataTypes.Bool)));
    }

    /// <summary>Adds <c>output = Where(NonFiniteFlag, missing, value)</c>; <paramref name="missing"/> becomes an initializer.</summary>
    private static void AddWhereNonFinite(GraphProto graph, string value, TensorProto missing, string output)
    {
        graph.Initializer.Add(missing);
        graph.Node.Add(Node("Where", new[] { NonFiniteFlag, missing.Name, value }, output));
    }

    /// <summary>A float tensor of <paramref name="count"/> NaNs.</summary>
    private static TensorProto NaNs(string name, int count) =>
        OnnxTensorConversion.FromFloat(name, new long[] { count }, Enumerable.Repeat(float.NaN, count).ToArray());

    /// <summary>
    /// The classes' label values followed by the PredictedLabel of a row without a prediction: a value that is not among
    /// them (empty text, NaN, the type's minimum, or key 0), which MapValueToKey maps to the missing key.
    /// </summary>
    private static TensorProto WithMissingLabelValue(TensorProto values)
    {
        if (values.Dims.Count != 1)
        {
            throw new ArgumentException("The label values must be a 1-D tensor.", nameof(values));
        }
        var all = values.Clone();
        all.Dims[0] = values.Dims[0] + 1;
        switch (values.DataType)
        {
            case OnnxTensorConversion.DataTypes.String:
                all.StringData.Add(Google.Protobuf.ByteString.Empty);
                break;
            case OnnxTensorConversion.DataTypes.Float:
                all.FloatData.Add(float.NaN);
                break;
            case OnnxTensorConversion.DataTypes.Double:
                all.DoubleData.Add(double.NaN);
                break;
            case OnnxTensorConversion.DataTypes.Int32:
                all.Int32Data.Add(int.MinValue);
                break;
            case OnnxTensorConversion.DataTypes.Int64:
                all.Int64Data.Add(long.MinValue);
                break;
            case OnnxTensorConversion.DataTypes.UInt32:
                // UInt32 raw key values count from 1: 0 is the missing key itself.
                all.Uint64Data.Add(0);
                break;
            default:
                throw new ArgumentException($"Label values of ONNX type {values.DataType} are not supported.", nameof(values));
        }
        return all;
    }

    private static HashSet<string> TensorNames(GraphProto graph)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        names.UnionWith(graph.Input.Select(i => i.Name));
        names.UnionWith(graph.Initializer.Select(i => i.Name));
        foreach (var node in graph.Node)
        {
            names.UnionWith(node.Output);
        }
        return names;
    }

    private static void Rename(GraphProto graph, string from, string to)
    {
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
            {
                node.Input[i] = node.Input[i] == from ? to : node.Input[i];
            }
            for (int i = 0; i < node.Output.Count; i++)
            {
                node.Output[i] = node.Output[i] == from ? to : node.Output[i];
            }
        }
        foreach (var info in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo).Where(v => v.Name == from))
        {
            info.Name = to;
        }
        foreach (var tensor in graph.Initializer.Where(t => t.Name == from))
        {
            tensor.Name = to;
        }
    }

    /// <summary>Removes the initializers no node or graph output reads (and their graph-input entries, for old IR versions).</summary>
    /// <param name="graph">The graph, changed in place.</param>
    internal static void RemoveUnusedInitializers(GraphProto graph)
    {
        var used = new HashSet<string>(graph.Node.SelectMany(n => n.Input), StringComparer.Ordinal);
        used.UnionWith(graph.Output.Select(o => o.Name));
        foreach (var unused in graph.Initializer.Where(t => !used.Contains(t.Name)).ToList())
        {
            graph.Initializer.Remove(unused);
            if (graph.Input.FirstOrDefault(i => i.Name == unused.Name) is { } listed)
            {
                graph.Input.Remove(listed);
            }
        }
    }

    private static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = Prefix + op.ToLowerInvariant() + "_" + output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static ValueInfoProto Float(string name, object[] dims) => ValueInfo(name, OnnxTensorConversion.DataTypes.Float, dims);

    private static ValueInfoProto ValueInfo(string name, int elementType, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, CultureInfo.InvariantCulture) });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = shape } },
        };
    }

    private static void SetMetadata(ModelProto model, string key, string value)
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
