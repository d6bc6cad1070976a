using System;
using System.Collections.Generic;
using System.Linq;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Architectures;

/// <summary>
/// Builds ONNX graphs layer by layer with seeded standard initialisations: He (Kaiming) normal for convolutions
/// (fan-out, ReLU gain, as in ResNet), PyTorch's Linear default (uniform +-1/sqrt(fan-in)) for fully-connected
/// weights and biases, and batch norm with scale 1, bias 0, mean 0, variance 1. The batch dimension is symbolic ("N").
/// </summary>
internal sealed class OnnxGraphBuilder : IDisposable
{
    private readonly GraphProto _graph = new();
    private readonly Generator _generator;
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    /// <summary>Starts a graph.</summary>
    /// <param name="name">Graph name.</param>
    /// <param name="seed">Seed of every initialisation.</param>
    public OnnxGraphBuilder(string name, long seed)
    {
        _graph.Name = name;
        _generator = new Generator((ulong)seed);
    }

    /// <summary>Declares the graph input: float, shape [N, rowShape...].</summary>
    /// <param name="name">Input name.</param>
    /// <param name="rowShape">Shape of one row.</param>
    public string Input(string name, long[] rowShape)
    {
        _graph.Input.Add(ValueInfo(name, rowShape));
        return name;
    }

    /// <summary>Declares the graph output: float, shape [N, rowShape...], or of unstated shape when <paramref name="rowShape"/> is null.</summary>
    /// <param name="name">Name of the tensor that is the output.</param>
    /// <param name="rowShape">Shape of one row, or null.</param>
    public void Output(string name, long[]? rowShape) => _graph.Output.Add(ValueInfo(name, rowShape));

    /// <summary>Adds a float initializer.</summary>
    /// <param name="name">Initializer name.</param>
    /// <param name="value">Its value.</param>
    public string Initializer(string name, Tensor value)
    {
        _graph.Initializer.Add(TorchTensorConversion.FromFloat(name, value));
        return name;
    }

    /// <summary>Adds a node with one output named after the op and a counter.</summary>
    /// <param name="opType">ONNX op type.</param>
    /// <param name="inputs">Input names.</param>
    /// <param name="attributes">Attributes.</param>
    /// <returns>The output name.</returns>
    public string Node(string opType, string[] inputs, params AttributeProto[] attributes) => Node(opType, inputs, 1, attributes)[0];

    /// <summary>Adds a node with <paramref name="outputs"/> outputs (Split), named after the node and their position.</summary>
    /// <param name="opType">ONNX op type.</param>
    /// <param name="inputs">Input names.</param>
    /// <param name="outputs">How many outputs.</param>
    /// <param name="attributes">Attributes.</param>
    /// <returns>The output names.</returns>
    public string[] Node(string opType, string[] inputs, int outputs, params AttributeProto[] attributes)
    {
        string name = Name(opType.ToLowerInvariant());
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        var names = Enumerable.Range(0, outputs).Select(i => i == 0 ? name : $"{name}:{i}").ToArray();
        node.Output.AddRange(names);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return names;
    }

    /// <summary>A convolution (He-normal weights, fan-out), optional bias.</summary>
    public string Conv(string x, long inChannels, long outChannels, long kernel, long stride = 1, long pad = 0, bool bias = false)
    {
        string name = Name("conv");
        using var scope = NewDisposeScope();
        double std = Math.Sqrt(2.0 / (outChannels * kernel * kernel));
        var inputs = new List<string> { x, Initializer(name + ".weight", randn(new[] { outChannels, inChannels, kernel, kernel }, generator: _generator) * std) };
        if (bias)
        {
            inputs.Add(Initializer(name + ".bias", zeros(outChannels)));
        }
        return Node("Conv", inputs.ToArray(),
            OnnxAttributes.Create("kernel_shape", new[] { kernel, kernel }),
            OnnxAttributes.Create("strides", new[] { stride, stride }),
            OnnxAttributes.Create("pads", new[] { pad, pad, pad, pad }));
    }

    /// <summary>A fully-connected layer: Gemm with transB = 1 (weight [out, in]) and a bias.</summary>
    public string Dense(string x, long inFeatures, long outFeatures)
    {
        string name = Name("dense");
        using var scope = NewDisposeScope();
        double bound = 1.0 / Math.Sqrt(inFeatures);
        var weight = Initializer(name + ".weight", rand(new[] { outFeatures, inFeatures }, generator: _generator).mul_(2 * bound).sub_(bound));
        var bias = Initializer(name + ".bias", rand(new[] { outFeatures }, generator: _generator).mul_(2 * bound).sub_(bound));
        return Node("Gemm", new[] { x, weight, bias }, OnnxAttributes.Create("transB", 1L));
    }

    /// <summary>Batch normalisation over the channel dimension (dimension 1).</summary>
    public string BatchNorm(string x, long channels)
    {
        string name = Name("bn");
        using var scope = NewDisposeScope();
        return Node("BatchNormalization", new[]
        {
            x,
            Initializer(name + ".scale", ones(channels)),
            Initializer(name + ".bias", zeros(channels)),
            Initializer(name + ".mean", zeros(channels)),
            Initializer(name + ".var", ones(channels)),
        }, OnnxAttributes.Create("epsilon", 1e-5f), OnnxAttributes.Create("momentum", 0.9f));
    }

    /// <summary>ReLU.</summary>
    public string Relu(string x) => Node("Relu", new[] { x });

    /// <summary>Max pooling with a square window and the same stride.</summary>
    public string MaxPool(string x, long size) => Node("MaxPool", new[] { x },
        OnnxAttributes.Create("kernel_shape", new[] { size, size }), OnnxAttributes.Create("strides", new[] { size, size }));

    /// <summary>Flatten to [N, rest].</summary>
    public string Flatten(string x) => Node("Flatten", new[] { x }, OnnxAttributes.Create("axis", 1L));

    /// <summary>Dropout with the given ratio (active in training only).</summary>
    public string Dropout(string x, float ratio)
    {
        // Since opset 12 the ratio is an input (a scalar initializer), not an attribute.
        using var value = tensor(ratio);
        return Node("Dropout", new[] { x, Initializer(Name("dropout_ratio"), value) });
    }

    /// <summary>Global average pooling.</summary>
    public string GlobalAveragePool(string x) => Node("GlobalAveragePool", new[] { x });

    /// <summary>Element-wise sum.</summary>
    public string Add(string a, string b) => Node("Add", new[] { a, b });

    /// <summary>The model: by default IR 10 and default-domain opset 21 (INT4 DequantizeLinear is available).</summary>
    /// <param name="docString">What the network is.</param>
    /// <param name="opset">Default-domain opset (the IR version follows it).</param>
    public ModelProto Build(string docString, int opset = 21)
    {
        var model = new ModelProto
        {
            IrVersion = OnnxOpsetUpgrader.MinimumIrVersion(opset),
            ProducerName = "Microsoft.ML.Cbp",
            ProducerVersion = typeof(OnnxGraphBuilder).Assembly.GetName().Version?.ToString() ?? "",
            DocString = docString,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }

    /// <summary>Releases the random generator.</summary>
    public void Dispose() => _generator.Dispose();

    private string Name(string prefix)
    {
        _counts[prefix] = _counts.TryGetValue(prefix, out int n) ? n + 1 : 1;
        return $"{prefix}{_counts[prefix]}";
    }

    private static ValueInfoProto ValueInfo(string name, long[]? rowShape)
    {
        if (rowShape is null)
        {
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = OnnxTensorConversion.DataTypes.Float } } };
        }
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        shape.Dim.AddRange(rowShape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = OnnxTensorConversion.DataTypes.Float, Shape = shape } },
        };
    }
}
