using System;
using System.Collections.Generic;
using System.Linq;
using Onnx;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>Typed access to a node's attributes, with the defaults the ONNX operator specifications give.</summary>
internal static class OnnxAttributes
{
    /// <summary>The attribute named <paramref name="name"/>, or <see langword="null"/>.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    public static AttributeProto? Find(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name);

    /// <summary>An integer attribute, or <paramref name="fallback"/> when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">The specification's default.</param>
    public static long Int(NodeProto node, string name, long fallback) => Find(node, name) is { } a ? a.I : fallback;

    /// <summary>A float attribute, or <paramref name="fallback"/> when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">The specification's default.</param>
    public static float Float(NodeProto node, string name, float fallback) => Find(node, name) is { } a ? a.F : fallback;

    /// <summary>A string attribute, or <paramref name="fallback"/> when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    /// <param name="fallback">The specification's default.</param>
    public static string String(NodeProto node, string name, string fallback) => Find(node, name) is { } a ? a.S.ToStringUtf8() : fallback;

    /// <summary>An integer-list attribute, or <see langword="null"/> when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    public static long[]? Ints(NodeProto node, string name) => Find(node, name) is { } a ? a.Ints.ToArray() : null;

    /// <summary>A float-list attribute, or <see langword="null"/> when absent.</summary>
    /// <param name="node">The node.</param>
    /// <param name="name">Attribute name.</param>
    public static float[]? Floats(NodeProto node, string name) => Find(node, name) is { } a ? a.Floats.ToArray() : null;

    /// <summary>Creates an integer attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="value">Value.</param>
    public static AttributeProto Create(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>Creates a float attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="value">Value.</param>
    public static AttributeProto Create(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    /// <summary>Creates an integer-list attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="values">Values.</param>
    public static AttributeProto Create(string name, IEnumerable<long> values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A description of a node for error messages: its name (or its first output) and op type.</summary>
    /// <param name="node">The node.</param>
    public static string Describe(NodeProto node)
    {
        ArgumentNullException.ThrowIfNull(node);
        string name = !string.IsNullOrEmpty(node.Name) ? node.Name : node.Output.Count > 0 ? $"(output '{node.Output[0]}')" : "(unnamed)";
        return $"node '{name}' (op {(string.IsNullOrEmpty(node.Domain) ? "" : node.Domain + ".")}{node.OpType})";
    }
}
