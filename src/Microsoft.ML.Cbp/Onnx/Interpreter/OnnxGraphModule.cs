using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>
/// An ONNX graph executed by TorchSharp, differentiably: a module whose parameters are the graph's float weight
/// initializers (and whose buffers are batch-norm running statistics and other constants), and whose forward pass
/// runs the nodes in topological order through the <see cref="OnnxOpRegistry"/>.
/// </summary>
/// <remarks>
/// <para>Parameters: float initializers that feed Conv, Gemm, MatMul, BatchNormalization (scale and bias) and the
/// arithmetic ops Add, Sub, Mul, Div. Buffers: BatchNormalization's running mean and variance (updated in training
/// mode with ONNX's momentum convention), and every other initializer as a constant. Member names are the
/// initializer names with characters other than letters, digits and '_' replaced by '_' (see
/// <see cref="MemberName"/> and <see cref="InitializerName"/>).</para>
/// <para>The module is validated when it is created: unsupported ops, inputs that nothing produces and, where the
/// input shape is known, shape errors fail then, with an exception naming the node and op.</para>
/// <para>One graph input (the first that is not an initializer) and one output (the first, unless named) are used.</para>
/// </remarks>
public sealed class OnnxGraphModule : nn.Module<Tensor, Tensor>
{
    private static readonly Dictionary<string, int[]> TrainableInputs = new(StringComparer.Ordinal)
    {
        ["Conv"] = new[] { 1, 2 },
        ["Gemm"] = new[] { 0, 1, 2 },
        ["MatMul"] = new[] { 0, 1 },
        ["BatchNormalization"] = new[] { 1, 2 },
        ["Add"] = new[] { 0, 1 },
        ["Sub"] = new[] { 0, 1 },
        ["Mul"] = new[] { 0, 1 },
        ["Div"] = new[] { 0, 1 },
    };

    private readonly List<(NodeProto Node, OnnxOpImplementation Op)> _plan = new();
    private readonly Dictionary<string, string> _memberOfInitializer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _initializerOfMember = new(StringComparer.Ordinal);
    private readonly HashSet<string> _parameterMembers = new(StringComparer.Ordinal);

    /// <summary>Creates the module from a model. The model is not modified and is kept as the export template.</summary>
    /// <param name="model">The ONNX model.</param>
    /// <param name="outputName">Graph output to compute; the first graph output when null.</param>
    /// <param name="inputShape">Shape of one input row (without the batch dimension), to validate shapes when the
    /// model does not declare them; optional.</param>
    /// <exception cref="NotSupportedException">An op, domain or opset is not supported.</exception>
    /// <exception cref="InvalidDataException">The graph is inconsistent (missing inputs, bad shapes, bad initializers).</exception>
    public OnnxGraphModule(ModelProto model, string? outputName = null, long[]? inputShape = null) : base("OnnxGraph")
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        var graph = model.Graph ?? throw new InvalidDataException("The model has no graph.");
        Opset = OnnxModelFile.DefaultOpset(model);
        if (Opset < 7 || Opset > OnnxOpsetUpgrader.MaximumOpset)
        {
            throw new NotSupportedException(
                $"The model imports default-domain opset {Opset}; opsets 7 to {OnnxOpsetUpgrader.MaximumOpset} (the newest ONNX Runtime 1.31 scores) are supported.");
        }
        CheckNames(graph);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var realInputs = graph.Input.Where(i => !initializers.ContainsKey(i.Name)).ToList();
        if (realInputs.Count == 0)
        {
            throw new InvalidDataException("The graph has no input besides its initializers.");
        }
        Input = realInputs[0];
        if (graph.Output.Count == 0)
        {
            throw new InvalidDataException("The graph has no output.");
        }
        OutputName = outputName ?? graph.Output[0].Name;
        if (graph.Output.All(o => o.Name != OutputName) && graph.Node.All(n => !n.Output.Contains(OutputName)))
        {
            throw new ArgumentException($"'{OutputName}' is not an output of the graph; outputs: {string.Join(", ", graph.Output.Select(o => o.Name))}.", nameof(outputName));
        }
        DeclaredInputShape = Input.Type?.TensorType?.Shape?.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1).ToArray();
        if (DeclaredInputShape is { Length: > 0 } declared && declared[0] > 0)
        {
            FixedBatch = declared[0];
        }

        PlanNodes(graph, initializers.Keys);
        RegisterInitializers(graph, initializers);

        long[]? rowShape = inputShape ?? (DeclaredInputShape is { Length: > 1 } d && d.Skip(1).All(v => v > 0) ? d.Skip(1).ToArray() : null);
        if (rowShape is not null)
        {
            // Bounded before anything is allocated: the shape check runs one row (or the fixed batch) through the graph.
            double values = RowValues(rowShape);
            if (values > MaxProbeValues)
            {
                throw new InvalidDataException(
                    $"Input '{Input.Name}' is declared as [{string.Join(", ", DeclaredInputShape ?? rowShape)}]: {values:G4} values per row, " +
                    $"more than the {MaxProbeValues:N0} this library loads.");
            }
            InputRowShape = rowShape;
            Validate(rowShape);
        }
    }

    /// <summary>The model this module was created from (the export template).</summary>
    public ModelProto Model { get; }

    /// <summary>The default-domain opset of the model.</summary>
    public int Opset { get; }

    /// <summary>The graph input the module consumes.</summary>
    public ValueInfoProto Input { get; }

    /// <summary>The graph output the module computes.</summary>
    public string OutputName { get; }

    /// <summary>The input shape the model declares (-1 for symbolic dimensions), or null when it declares none.</summary>
    public long[]? DeclaredInputShape { get; }

    /// <summary>Shape of one input row without the batch dimension, when known.</summary>
    public long[]? InputRowShape { get; }

    /// <summary>The batch size fixed by the model's input declaration (old models often say 1), or null when symbolic.</summary>
    public long? FixedBatch { get; }

    /// <summary>
    /// When set, the weight of a training batch in every batch-norm layer's running statistics (torch's convention),
    /// replacing the nodes' momentum. Null (default) keeps the model's own.
    /// </summary>
    internal double? BatchNormMomentumOverride { get; set; }

    /// <summary>
    /// Re-estimates the running mean and variance of every BatchNormalization node from data (statistics reset, then
    /// batch t weighs 1/t: a cumulative average, as PyTorch does with <c>momentum = None</c>), leaving every other value
    /// unchanged; the baseline that recovers most of the accuracy naive rounding loses in a CNN (docs/CBP.md section 7).
    /// </summary>
    /// <param name="featureBatches">Batches of input rows (one pass of training data); each is released after its forward pass.</param>
    /// <param name="maxBatches">At most this many batches; null for all.</param>
    /// <returns>How many batch-norm nodes were re-estimated. The module is left in evaluation mode.</returns>
    public int ReestimateBatchNorm(IEnumerable<Tensor> featureBatches, int? maxBatches = null)
    {
        ArgumentNullException.ThrowIfNull(featureBatches);
        var statistics = BatchNormStatistics();
        using (no_grad())
        {
            foreach (var (mean, variance) in statistics)
            {
                mean.zero_();
                variance.fill_(1.0f);
            }
        }
        try
        {
            train();
            using var noGrad = no_grad();
            using var batches = featureBatches.GetEnumerator();
            for (int i = 0; statistics.Count > 0 && (maxBatches is null || i < maxBatches); i++)
            {
                // The scope is open while the batch is made, so the batch is released with it.
                using var scope = NewDisposeScope();
                if (!batches.MoveNext())
                {
                    break;
                }
                BatchNormMomentumOverride = 1.0 / (i + 1);
                forward(batches.Current);
            }
        }
        finally
        {
            BatchNormMomentumOverride = null;
            eval();
        }
        return statistics.Count;
    }

    /// <summary>The running mean and variance buffers of every BatchNormalization node, by member name.</summary>
    internal IReadOnlyList<(Tensor Mean, Tensor Variance)> BatchNormStatistics()
    {
        var buffers = named_buffers().ToDictionary(b => b.name, b => b.buffer);
        var result = new List<(Tensor, Tensor)>();
        foreach (var node in Model.Graph.Node.Where(n => n.OpType == "BatchNormalization" && n.Input.Count >= 5))
        {
            if (_memberOfInitializer.TryGetValue(node.Input[3], out var mean) && _memberOfInitializer.TryGetValue(node.Input[4], out var variance)
                && buffers.TryGetValue(mean, out var m) && buffers.TryGetValue(variance, out var v))
            {
                result.Add((m, v));
            }
        }
        return result;
    }

    /// <summary>Initializer names that became trainable parameters, in graph order.</summary>
    public IEnumerable<string> ParameterInitializers => _initializerOfMember.Where(kv => _parameterMembers.Contains(kv.Key)).Select(kv => kv.Value);

    /// <summary>The module member name (as in <c>named_parameters()</c>) of an initializer.</summary>
    /// <param name="initializer">Initializer name.</param>
    public string MemberName(string initializer) =>
        _memberOfInitializer.TryGetValue(initializer, out var member) ? member
        : throw new ArgumentException($"'{initializer}' is not an initializer of the graph.", nameof(initializer));

    /// <summary>The initializer name of a module member.</summary>
    /// <param name="member">Member name as in <c>named_parameters()</c> or <c>named_buffers()</c>.</param>
    public string InitializerName(string member) =>
        _initializerOfMember.TryGetValue(member, out var name) ? name
        : throw new ArgumentException($"'{member}' is not a parameter or buffer of the module.", nameof(member));

    /// <summary>The current value of an initializer (its parameter or buffer).</summary>
    /// <param name="initializer">Initializer name.</param>
    public Tensor InitializerValue(string initializer)
    {
        string member = MemberName(initializer);
        return _parameterMembers.Contains(member) ? get_parameter(member)! : get_buffer(member)!;
    }

    /// <summary>Runs the graph on a batch.</summary>
    /// <param name="input">The input tensor (batch first).</param>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [Input.Name] = input };
        foreach (var (member, initializer) in _initializerOfMember)
        {
            values[initializer] = _parameterMembers.Contains(member) ? get_parameter(member)! : get_buffer(member)!;
        }
        foreach (var (node, op) in _plan)
        {
            var inputs = node.Input.Select(name => string.IsNullOrEmpty(name) ? null : values[name]).ToArray();
            if (FloatOnlyOps.Contains(node.OpType) && inputs.FirstOrDefault(t => t is not null && !t.is_floating_point()) is { } integer)
            {
                string name = node.Input[Array.IndexOf(inputs, integer)];
                throw new InvalidDataException(
                    $"{OnnxAttributes.Describe(node)} reads '{name}' of type {integer.dtype}; the op needs float inputs (dequantize integer weights, for example with DequantizeLinear).");
            }
            Tensor[] outputs;
            try
            {
                outputs = op(new OnnxOpContext(node, inputs, Opset, training, FixedBatch, BatchNormMomentumOverride));
            }
            catch (Exception e) when (e is not (InvalidDataException or NotSupportedException or OperationCanceledException))
            {
                string shapes = string.Join("; ", node.Input.Zip(inputs, (n, t) => $"{n}: {(t is null ? "omitted" : "[" + string.Join(", ", t.shape) + "]")}"));
                throw new InvalidDataException($"{OnnxAttributes.Describe(node)} failed on inputs ({shapes}): {e.Message}", e);
            }
            for (int i = 0; i < node.Output.Count && i < outputs.Length; i++)
            {
                if (!string.IsNullOrEmpty(node.Output[i]))
                {
                    values[node.Output[i]] = outputs[i];
                }
            }
        }
        return values[OutputName];
    }

    /// <summary>The most input values the shape check runs through the graph: 2^24 floats (64 MiB; 3 x 2048 x 2048 images).</summary>
    private const double MaxProbeValues = 1 << 24;

    /// <summary>
    /// Rows of the shape check: the declared fixed batch (old models say 1) up to 64 when those rows stay within
    /// <see cref="MaxProbeValues"/>, else one row (the interpreter runs any batch; a Reshape to the fixed batch adapts).
    /// </summary>
    private long ProbeBatch(long[] rowShape) =>
        FixedBatch is long fixedBatch && fixedBatch <= 64 && fixedBatch * RowValues(rowShape) <= MaxProbeValues ? fixedBatch : 1;

    private static double RowValues(long[] rowShape) => rowShape.Aggregate(1.0, (a, b) => a * b);

    /// <summary>Ops whose every input must be a float tensor: libtorch aborts the process on some integer inputs (an int8 Gemm weight).</summary>
    private static readonly HashSet<string> FloatOnlyOps = new(StringComparer.Ordinal)
    {
        "Conv", "Gemm", "MatMul", "BatchNormalization", "Softmax", "LogSoftmax", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid",
        "HardSwish", "AveragePool", "MaxPool", "GlobalAveragePool", "LayerNormalization", "Sqrt", "Erf", "Exp", "Log", "Reciprocal",
    };

    /// <summary>Refuses repeated initializer names and tensors produced twice (ONNX graphs are single-assignment).</summary>
    private static void CheckNames(GraphProto graph)
    {
        if (graph.Initializer.GroupBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new InvalidDataException($"The graph has {twice.Count()} initializers named '{twice.Key}'; initializer names must be unique.");
        }
        var produced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (string output in node.Output.Where(o => !string.IsNullOrEmpty(o)))
            {
                if (!produced.Add(output))
                {
                    throw new InvalidDataException($"{OnnxAttributes.Describe(node)} writes '{output}', which another node writes too; every tensor must have one producer.");
                }
            }
        }
    }

    /// <summary>
    /// Names every op of the graph the interpreter cannot run, at once (each with its node count and first node), so a
    /// user sees the whole gap of a model instead of one op per attempt.
    /// </summary>
    /// <exception cref="NotSupportedException">Some node's op or domain is not supported.</exception>
    private static void ThrowIfUnsupported(GraphProto graph)
    {
        var unsupported = graph.Node
            .Where(n => n.Domain is not ("" or "ai.onnx") || OnnxOpRegistry.Find(n.OpType) is null)
            .GroupBy(n => (string.IsNullOrEmpty(n.Domain) || n.Domain == "ai.onnx" ? "" : n.Domain + ".") + n.OpType, StringComparer.Ordinal)
            .ToList();
        if (unsupported.Count == 0)
        {
            return;
        }
        var ops = unsupported.Select(g =>
            $"{g.Key} ({g.Count()} node{(g.Count() == 1 ? "" : "s")}, first {OnnxAttributes.Describe(g.First())}{(g.First().Domain is not ("" or "ai.onnx") ? $", domain '{g.First().Domain}'" : "")})");
        throw new NotSupportedException(
            $"The model uses {unsupported.Count} op{(unsupported.Count == 1 ? "" : "s")} this library cannot run: {string.Join("; ", ops)}. " +
            $"Only the default ONNX domain is supported, with these ops: {string.Join(", ", OnnxOpRegistry.Supported)}.");
    }

    private void PlanNodes(GraphProto graph, IEnumerable<string> initializerNames)
    {
        var available = new HashSet<string>(initializerNames, StringComparer.Ordinal);
        foreach (var input in graph.Input)
        {
            available.Add(input.Name);
        }
        var producers = new HashSet<string>(graph.Node.SelectMany(n => n.Output), StringComparer.Ordinal);
        ThrowIfUnsupported(graph);
        foreach (var node in graph.Node)
        {
            foreach (string name in node.Input.Where(n => !string.IsNullOrEmpty(n)))
            {
                if (!available.Contains(name) && !producers.Contains(name))
                {
                    throw new InvalidDataException(
                        $"{OnnxAttributes.Describe(node)} reads '{name}', which no node, initializer or graph input produces.");
                }
            }
        }
        // Topological order (Kahn); ONNX requires it already, but some exporters do not comply.
        var pending = graph.Node.ToList();
        while (pending.Count > 0)
        {
            var ready = pending.Where(n => n.Input.All(i => string.IsNullOrEmpty(i) || available.Contains(i))).ToList();
            if (ready.Count == 0)
            {
                throw new InvalidDataException($"The graph has a cycle through {OnnxAttributes.Describe(pending[0])}.");
            }
            foreach (var node in ready)
            {
                _plan.Add((node, OnnxOpRegistry.Find(node.OpType)!));
                foreach (string output in node.Output)
                {
                    available.Add(output);
                }
                pending.Remove(node);
            }
        }
        if (!available.Contains(OutputName))
        {
            throw new InvalidDataException($"No node produces the graph output '{OutputName}'.");
        }
    }

    /// <summary>Whether <paramref name="tensor"/> is computed from Constant nodes alone (no input, no initializer), within 16 steps.</summary>
    private static bool FromConstantsOnly(string tensor, IReadOnlyDictionary<string, NodeProto> producers, Dictionary<string, bool> known, int depth = 0)
    {
        if (known.TryGetValue(tensor, out bool result))
        {
            return result;
        }
        result = depth <= 16 && producers.TryGetValue(tensor, out var node)
            && (node.OpType == "Constant" || (node.Input.Count > 0 && node.Input.All(i => !string.IsNullOrEmpty(i) && FromConstantsOnly(i, producers, known, depth + 1))));
        known[tensor] = result;
        return result;
    }

    private void RegisterInitializers(GraphProto graph, Dictionary<string, TensorProto> initializers)
    {
        var trainable = new HashSet<string>(StringComparer.Ordinal);
        var statistics = new HashSet<string>(StringComparer.Ordinal);
        var producers = WeightChains.Producers(graph);
        var constantOnly = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            // The decode of stored codes (Mul by the layer's scale of a Cast of codes, as SaveOnnx writes it: Cast(Constant codes),
            // or the one-bit unpacking, whose Cast output ends in "_cbp_float") is a fixed weight: its scale is not trained.
            bool decode = node.OpType == "Mul" && node.Input.Any(i => producers.TryGetValue(i, out var cast) && cast.OpType == "Cast" && cast.Input.Count > 0
                && ((producers.TryGetValue(cast.Input[0], out var constant) && constant.OpType == "Constant")
                    || (i.EndsWith("_cbp_float", StringComparison.Ordinal) && FromConstantsOnly(cast.Input[0], producers, constantOnly))));
            if (!decode && TrainableInputs.TryGetValue(node.OpType, out var positions))
            {
                foreach (int p in positions.Where(p => p < node.Input.Count))
                {
                    // A weight behind weight-only ops (Transpose -> MatMul) trains like one read directly.
                    trainable.Add(WeightChains.SourceInitializer(node.Input[p], producers, initializers.ContainsKey) ?? node.Input[p]);
                }
            }
            if (node.OpType == "BatchNormalization")
            {
                statistics.UnionWith(node.Input.Skip(3).Take(2));
            }
        }
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var proto in graph.Initializer)
        {
            Tensor value;
            try
            {
                value = TorchTensorConversion.ToTorch(proto);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new InvalidDataException($"Initializer '{proto.Name}' cannot be read: {e.Message}", e);
            }
            string member = UniqueMemberName(proto.Name, used);
            _memberOfInitializer[proto.Name] = member;
            _initializerOfMember[member] = proto.Name;
            bool isFloat = value.dtype is ScalarType.Float32 or ScalarType.Float64;
            if (isFloat)
            {
                value = value.to(float32);
            }
            if (isFloat && trainable.Contains(proto.Name) && !statistics.Contains(proto.Name))
            {
                register_parameter(member, new Parameter(value, requires_grad: true));
                _parameterMembers.Add(member);
            }
            else
            {
                register_buffer(member, value);
            }
        }
    }

    private static string UniqueMemberName(string initializer, HashSet<string> used)
    {
        var builder = new StringBuilder(initializer.Length);
        foreach (char ch in initializer)
        {
            builder.Append(char.IsAsciiLetterOrDigit(ch) || ch == '_' ? ch : '_');
        }
        string baseName = builder.Length == 0 ? "initializer" : builder.ToString();
        string name = baseName;
        for (int k = 2; !used.Add(name); k++)
        {
            name = $"{baseName}_{k}";
        }
        return name;
    }

    private void Validate(long[] rowShape)
    {
        bool wasTraining = training;
        eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var probe = zeros(new[] { ProbeBatch(rowShape) }.Concat(rowShape).ToArray());
            forward(probe);
        }
        finally
        {
            train(wasTraining);
        }
    }
}
