using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Onnx;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Reads SaveOnnx's decode of a constrained weight: Constant codes -> Cast -> Mul by the layer's scale.</summary>
internal static class CompactCodes
{
    /// <summary>The Mul whose output is the decoded weight <paramref name="weight"/>.</summary>
    public static NodeProto Decode(ModelProto compact, string weight) => compact.Graph.Node.Single(n => n.OpType == "Mul" && n.Output.Contains(weight));

    /// <summary>The codes tensor behind a decode Mul (the Constant node's value).</summary>
    public static TensorProto CodesOf(ModelProto compact, NodeProto decode)
    {
        var cast = compact.Graph.Node.Single(n => n.Output.Contains(decode.Input[0]));
        return compact.Graph.Node.Single(n => n.OpType == "Constant" && n.Output.Contains(cast.Input[0])).Attribute.Single(a => a.Name == "value").T;
    }

    /// <summary>The signed 4-bit codes (Int4 storage) of the decoded weight <paramref name="weight"/>.</summary>
    public static sbyte[] Int4(ModelProto compact, string weight)
    {
        var codes = CodesOf(compact, Decode(compact, weight));
        return OnnxTensorConversion.Unpack(codes.RawData.ToByteArray(), codes.Dims.Aggregate(1L, (a, b) => a * b), 4, signed: true);
    }
}
