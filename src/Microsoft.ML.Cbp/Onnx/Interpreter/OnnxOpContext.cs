using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>Runs one ONNX node on TorchSharp tensors; returns its outputs in order.</summary>
/// <param name="context">The node, its inputs and the execution mode.</param>
internal delegate Tensor[] OnnxOpImplementation(OnnxOpContext context);

/// <summary>What an op implementation sees: the node, its input tensors, the opset and the mode.</summary>
internal sealed class OnnxOpContext
{
    internal OnnxOpContext(NodeProto node, Tensor?[] inputs, int opset, bool training, long? fixedBatch, double? batchNormMomentum = null)
    {
        BatchNormMomentum = batchNormMomentum;
        Node = node;
        Inputs = inputs;
        Opset = opset;
        Training = training;
        FixedBatch = fixedBatch;
    }

    /// <summary>The node.</summary>
    public NodeProto Node { get; }

    /// <summary>Input tensors in order; <see langword="null"/> where an optional input is omitted.</summary>
    public IReadOnlyList<Tensor?> Inputs { get; }

    /// <summary>The default-domain opset the model imports.</summary>
    public int Opset { get; }

    /// <summary>Training mode (batch-norm batch statistics, active dropout) or evaluation mode.</summary>
    public bool Training { get; }

    /// <summary>
    /// When set, the weight of the new batch in batch-norm running statistics (torch's convention), replacing the
    /// node's momentum: <see cref="OnnxGraphModule.ReestimateBatchNorm"/> sets 1/t for a cumulative average.
    /// </summary>
    public double? BatchNormMomentum { get; }

    /// <summary>The batch size the model's input declares when it is a fixed number (old models often say 1); else null.</summary>
    public long? FixedBatch { get; }

    /// <summary>Input <paramref name="index"/>; throws naming the node when it is missing.</summary>
    /// <param name="index">Input position.</param>
    public Tensor Input(int index) =>
        OptionalInput(index) ?? throw new InvalidDataException($"{OnnxAttributes.Describe(Node)} needs input {index}, which is missing.");

    /// <summary>Input <paramref name="index"/>, or <see langword="null"/> when omitted.</summary>
    /// <param name="index">Input position.</param>
    public Tensor? OptionalInput(int index) => index < Inputs.Count ? Inputs[index] : null;

    /// <summary>An integer attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">Default.</param>
    public long Int(string name, long fallback) => OnnxAttributes.Int(Node, name, fallback);

    /// <summary>A float attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">Default.</param>
    public float Float(string name, float fallback) => OnnxAttributes.Float(Node, name, fallback);

    /// <summary>A string attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">Default.</param>
    public string String(string name, string fallback) => OnnxAttributes.String(Node, name, fallback);

    /// <summary>An integer-list attribute, or null.</summary>
    /// <param name="name">Attribute name.</param>
    public long[]? Ints(string name) => OnnxAttributes.Ints(Node, name);

    /// <summary>
    /// Integer values that a newer opset passes as input <paramref name="inputIndex"/> and an older one as attribute
    /// <paramref name="attribute"/> (axes, pads, shape...); null when neither is given.
    /// </summary>
    /// <param name="inputIndex">Input position in the newer opsets.</param>
    /// <param name="attribute">Attribute name in the older opsets.</param>
    public long[]? IntsFromInputOrAttribute(int inputIndex, string attribute)
    {
        if (OptionalInput(inputIndex) is { } t)
        {
            using var values = t.to(int64).cpu();
            return values.data<long>().ToArray();
        }
        return Ints(attribute);
    }

    /// <summary>A scalar that a newer opset passes as an input and an older one as a float attribute.</summary>
    /// <param name="inputIndex">Input position.</param>
    /// <param name="attribute">Attribute name.</param>
    /// <param name="fallback">Default.</param>
    public double ScalarFromInputOrAttribute(int inputIndex, string attribute, double fallback)
    {
        if (OptionalInput(inputIndex) is { } t)
        {
            return t.to(float64).cpu().item<double>();
        }
        return OnnxAttributes.Find(Node, attribute) is { } a ? a.F : fallback;
    }

    /// <summary>An axis normalised to [0, rank).</summary>
    /// <param name="axis">Possibly negative axis.</param>
    /// <param name="rank">Tensor rank.</param>
    public long Axis(long axis, long rank)
    {
        long normalised = axis < 0 ? axis + rank : axis;
        if (normalised < 0 || normalised >= rank)
        {
            throw new InvalidDataException($"{OnnxAttributes.Describe(Node)}: axis {axis} is out of range for a tensor of rank {rank}.");
        }
        return normalised;
    }

    /// <summary>An error naming this node.</summary>
    /// <param name="message">What is wrong and what would be valid.</param>
    public InvalidDataException Error(string message) => new($"{OnnxAttributes.Describe(Node)}: {message}");

    /// <summary>A "not supported" error naming this node.</summary>
    /// <param name="message">What is not supported.</param>
    public NotSupportedException Unsupported(string message) => new($"{OnnxAttributes.Describe(Node)}: {message}");
}
