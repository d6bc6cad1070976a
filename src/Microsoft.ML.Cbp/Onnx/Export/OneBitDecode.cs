using System;
using System.Collections.Generic;
using System.Linq;
using Onnx;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>
/// Binary weights at one bit each: ONNX has no 1-bit type, so the signs are packed eight per byte into a uint8 constant
/// (element 8k + i is bit i of byte k) and decoded by standard ops that ONNX Runtime folds into a float weight when a
/// session starts: Cast to int32, Div by [1, 2, ..., 128] and Mod 2 give the bits, Reshape (and Slice when the count is not
/// a multiple of 8) gives the weight's shape, Mul 2 and Sub 1 give the codes -1/+1, and Cast to float and Mul by the
/// layer's scale give the weight. Every constant is a Constant node, so a file loaded back keeps the weight fixed.
/// </summary>
internal static class OneBitDecode
{
    /// <summary>The bits of codes -1/+1 (bit set for +1), eight per byte, first element in the lowest bit.</summary>
    /// <param name="codes">Codes, each -1 or +1.</param>
    public static byte[] Pack(sbyte[] codes)
    {
        ArgumentNullException.ThrowIfNull(codes);
        var packed = new byte[(codes.Length + 7) / 8];
        for (int i = 0; i < codes.Length; i++)
        {
            if (codes[i] is not (-1 or 1))
            {
                throw new ArgumentException($"Code {i} is {codes[i]}; one-bit storage holds -1 and +1 only.", nameof(codes));
            }
            if (codes[i] == 1)
            {
                packed[i / 8] |= (byte)(1 << (i % 8));
            }
        }
        return packed;
    }

    /// <summary>
    /// The nodes that compute weight <paramref name="weight"/> from its packed codes and scale, for the caller to insert;
    /// the scale becomes an initializer of <paramref name="graph"/>.
    /// </summary>
    /// <param name="graph">The graph (receives the scale initializer).</param>
    /// <param name="weight">The weight's name, which the last node outputs.</param>
    /// <param name="dims">The weight's shape.</param>
    /// <param name="codes">Its codes, -1 or +1, row-major.</param>
    /// <param name="scales">The value of code 1: one, or one per slice along dimension 0.</param>
    public static IReadOnlyList<NodeProto> Nodes(GraphProto graph, string weight, long[] dims, sbyte[] codes, float[] scales)
    {
        ArgumentNullException.ThrowIfNull(graph);
        long count = codes.LongLength;
        var packed = Pack(codes);
        string p = weight + "_cbp";
        var nodes = new List<NodeProto>();
        string Node(string op, string output, string[] inputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = output };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            nodes.Add(node);
            return output;
        }
        string Constant(string output, TensorProto value) =>
            Node("Constant", output, Array.Empty<string>(), new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = value });
        string Int32s(string output, long[] shape, int[] values) =>
            Constant(output, OnnxTensorConversion.Create(output, OnnxTensorConversion.DataTypes.Int32, shape, values.SelectMany(BitConverter.GetBytes).ToArray()));
        string Int64s(string output, long[] values) => Constant(output, OnnxTensorConversion.FromInt64(output, new long[] { values.Length }, values));

        string bytes = Constant(p + "_bits", OnnxTensorConversion.Create(p + "_bits", OnnxTensorConversion.DataTypes.UInt8, new long[] { packed.Length, 1 }, packed));
        string wide = Node("Cast", p + "_bytes", new[] { bytes }, OnnxAttributes.Create("to", (long)OnnxTensorConversion.DataTypes.Int32));
        string shifted = Node("Div", p + "_shifted", new[] { wide, Int32s(p + "_powers", new long[] { 8 }, Enumerable.Range(0, 8).Select(i => 1 << i).ToArray()) });
        string two = Int32s(p + "_two", Array.Empty<long>(), new[] { 2 });
        string bits = Node("Mod", p + "_bit", new[] { shifted, two });
        string flat = bits;
        if (count != packed.LongLength * 8)
        {
            flat = Node("Reshape", p + "_flat", new[] { bits, Int64s(p + "_flat_shape", new[] { packed.LongLength * 8 }) });
            flat = Node("Slice", p + "_count", new[] { flat, Int64s(p + "_start", new[] { 0L }), Int64s(p + "_end", new[] { count }) });
        }
        string shaped = Node("Reshape", p + "_shaped", new[] { flat, Int64s(p + "_shape", dims) });
        string signed = Node("Sub", p + "_signed", new[] { Node("Mul", p + "_doubled", new[] { shaped, two }), Int32s(p + "_one", Array.Empty<long>(), new[] { 1 }) });
        string asFloat = Node("Cast", weight + "_cbp_float", new[] { signed }, OnnxAttributes.Create("to", (long)OnnxTensorConversion.DataTypes.Float));
        // The scale, broadcast along dimension 0 when there is one per slice, is an initializer like the other forms'.
        string scaleName = weight + "_cbp_scale";
        long[] scaleDims = scales.Length == 1 ? Array.Empty<long>() : dims.Select((d, i) => i == 0 ? d : 1L).ToArray();
        graph.Initializer.Add(OnnxTensorConversion.FromFloat(scaleName, scaleDims, scales));
        Node("Mul", weight, new[] { asFloat, scaleName });
        return nodes;
    }
}
