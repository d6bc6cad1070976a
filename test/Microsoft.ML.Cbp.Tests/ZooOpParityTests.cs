using System;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Onnx.Architectures;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;
using static Microsoft.ML.Cbp.Onnx.OnnxAttributes;
using static Microsoft.ML.Cbp.Tests.OnnxOpParityTests;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// The ops that torchvision's exports need beyond plain CNNs (ShuffleNet, ConvNeXt, ViT and the shape arithmetic of
/// PyTorch's exporter): the TorchSharp interpreter against ONNX Runtime, each at the opsets whose form differs.
/// </summary>
[TestClass]
public sealed class ZooOpParityTests
{
    private static readonly long[] Row = { 2, 3, 4 };

    private static string Float(OnnxGraphBuilder b, float value) => b.Node("Constant", Array.Empty<string>(), Create("value_float", value));

    private static string Scalar(OnnxGraphBuilder b, long value) => b.Node("Constant", Array.Empty<string>(), new AttributeProto
    {
        Name = "value",
        Type = AttributeProto.Types.AttributeType.Tensor,
        T = OnnxTensorConversion.FromInt64("scalar", Array.Empty<long>(), new[] { value }),
    });

    private static string ToFloat(OnnxGraphBuilder b, string x) => b.Node("Cast", new[] { x }, Create("to", 1L));

    [TestMethod]
    public void ElementwiseMathMatchesOnnxRuntime()
    {
        Check("Pow", Row, (b, x) => b.Node("Pow", new[] { x, Float(b, 2f) }));
        Check("Pow, float exponent tensor", Row, (b, x) => b.Node("Pow", new[] { b.Node("Abs", new[] { x }), Weight(b, "e", new long[] { 4 }, 3) }));
        Check("Sqrt of |x|", Row, (b, x) => b.Node("Sqrt", new[] { b.Node("Abs", new[] { x }) }));
        Check("Erf", Row, (b, x) => b.Node("Erf", new[] { x }));
        Check("Exp", Row, (b, x) => b.Node("Exp", new[] { x }));
        Check("Log of 1 + |x|", Row, (b, x) => b.Node("Log", new[] { b.Node("Add", new[] { b.Node("Abs", new[] { x }), Float(b, 1f) }) }));
        Check("Neg", Row, (b, x) => b.Node("Neg", new[] { x }));
        Check("Reciprocal of 1 + |x|", Row, (b, x) => b.Node("Reciprocal", new[] { b.Node("Add", new[] { b.Node("Abs", new[] { x }), Float(b, 1f) }) }));
        Check("Mod fmod 0 on int32 (sign of the divisor)", Row, (b, x) =>
        {
            string integers = b.Node("Cast", new[] { b.Node("Mul", new[] { x, Float(b, 5f) }) }, Create("to", 6L));
            string divisor = b.Node("Cast", new[] { b.Node("Add", new[] { b.Node("Cast", new[] { Weight(b, "d", new long[] { 4 }, 9) }, Create("to", 6L)), b.Node("Cast", new[] { Float(b, 3f) }, Create("to", 6L)) }) }, Create("to", 6L));
            return ToFloat(b, b.Node("Mod", new[] { integers, b.Node("Where", new[] { b.Node("Equal", new[] { divisor, b.Node("Cast", new[] { Float(b, 0f) }, Create("to", 6L)) }), b.Node("Cast", new[] { Float(b, -2f) }, Create("to", 6L)), divisor }) }));
        });
        Check("Mod fmod 1 on float", Row, (b, x) => b.Node("Mod", new[] { b.Node("Mul", new[] { x, Float(b, 3f) }), Float(b, -1.25f) }, Create("fmod", 1L)));
        // GELU as PyTorch exports it before opset 20: x * 0.5 * (1 + erf(x / sqrt 2)).
        Check("GELU pattern", Row, (b, x) => b.Node("Mul", new[]
        {
            b.Node("Mul", new[] { x, Float(b, 0.5f) }),
            b.Node("Add", new[] { b.Node("Erf", new[] { b.Node("Div", new[] { x, Float(b, 1.4142135f) }) }), Float(b, 1f) }),
        }));
    }

    [TestMethod]
    public void ComparisonsAndWhereMatchOnnxRuntime()
    {
        Check("Where(Greater)", Row, (b, x) => b.Node("Where", new[] { b.Node("Greater", new[] { x, Float(b, 0.5f) }), x, b.Node("Neg", new[] { x }) }));
        Check("Where(Less), broadcast branches", Row, (b, x) => b.Node("Where", new[] { b.Node("Less", new[] { x, Weight(b, "t", new long[] { 4 }, 4) }), Float(b, 2f), x }));
        Check("Where(Not(Equal)) on rounded values", Row, (b, x) =>
        {
            string rounded = ToFloat(b, b.Node("Cast", new[] { x }, Create("to", 7L)));
            return b.Node("Where", new[] { b.Node("Not", new[] { b.Node("Equal", new[] { rounded, Float(b, 0f) }) }), x, Float(b, -3f) });
        });
    }

    [TestMethod]
    public void SliceMatchesOnnxRuntimeAtOpsets9And21()
    {
        Check("slice two axes", Row, (b, x) => b.Node("Slice", new[] { x, Ints(b, "s", 1, 0), Ints(b, "e", 3, -1), Ints(b, "a", 2, -1) }));
        Check("slice steps and clamped ends", Row, (b, x) => b.Node("Slice", new[] { x, Ints(b, "s", 0), Ints(b, "e", long.MaxValue), Ints(b, "a", 3), Ints(b, "st", 2) }));
        Check("slice backwards", Row, (b, x) => b.Node("Slice", new[] { x, Ints(b, "s", -1), Ints(b, "e", long.MinValue), Ints(b, "a", 3), Ints(b, "st", -1) }));
        Check("slice backwards by 2 from past the end", Row, (b, x) => b.Node("Slice", new[] { x, Ints(b, "s", 10), Ints(b, "e", 0), Ints(b, "a", 2), Ints(b, "st", -2) }));
        Check("slice opset 9 (attributes)", Row, (b, x) => b.Node("Slice", new[] { x }, Create("starts", new long[] { 1 }), Create("ends", new long[] { 3 }), Create("axes", new long[] { 2 })), opset: 9);
    }

    [TestMethod]
    public void SplitMatchesOnnxRuntimeAtOpsets11_13And18()
    {
        static string Join(OnnxGraphBuilder b, string[] parts) => b.Node("Concat", new[] { b.Node("Relu", new[] { parts[1] }), parts[0] }, Create("axis", 3L));
        Check("split sizes input (13)", Row, (b, x) => Join(b, b.Node("Split", new[] { x, Ints(b, "sizes", 1, 3) }, 2, Create("axis", -1L))), opset: 13);
        Check("split attribute (11)", Row, (b, x) => Join(b, b.Node("Split", new[] { x }, 2, Create("axis", 3L), Create("split", new long[] { 3, 1 }))), opset: 11);
        Check("split even (13)", Row, (b, x) => Join(b, b.Node("Split", new[] { x }, 2, Create("axis", 3L))), opset: 13);
        Check("split num_outputs, uneven (18)", new long[] { 2, 3, 5 }, (b, x) => Join(b, b.Node("Split", new[] { x }, 2, Create("axis", 3L), Create("num_outputs", 2L))), opset: 18);
        Check("split num_outputs 3 of 5 (18)", new long[] { 2, 3, 5 }, (b, x) =>
        {
            var parts = b.Node("Split", new[] { x }, 3, Create("axis", 3L), Create("num_outputs", 3L));
            return b.Node("Concat", new[] { parts[2], parts[0], b.Node("Neg", new[] { parts[1] }) }, Create("axis", 3L));
        }, opset: 18);
    }

    [TestMethod]
    public void ShapeArithmeticMatchesOnnxRuntime()
    {
        Check("Expand to a larger rank", Row, (b, x) => b.Node("Add", new[] { x, b.Node("Expand", new[] { Weight(b, "w", new long[] { 4 }, 5), Ints(b, "shape", 3, 1) }) }));
        Check("Expand with the batch from Shape", Row, (b, x) => b.Node("Mul", new[] { x, b.Node("Expand", new[] { Weight(b, "w", new long[] { 1, 3, 1 }, 6), b.Node("Shape", new[] { x }) }) }));
        Check("ConstantOfShape of Shape", Row, (b, x) => b.Node("Mul", new[] { x, b.Node("ConstantOfShape", new[] { b.Node("Shape", new[] { x }) },
            new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = OnnxTensorConversion.FromFloat("v", new long[] { 1 }, new[] { 2.5f }) }) }));
        Check("ConstantOfShape of an empty shape (a scalar)", Row, (b, x) => b.Node("Mul", new[] { x, b.Node("ConstantOfShape", new[] { Ints(b, "shape") },
            new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = OnnxTensorConversion.FromFloat("v", new long[] { 1 }, new[] { -1.5f }) }) }));
        Check("ConstantOfShape default (zeros)", Row, (b, x) => b.Node("Add", new[] { x, b.Node("ConstantOfShape", new[] { Ints(b, "shape", 3, 4) }) }));
        Check("Range int64 to float", Row, (b, x) => b.Node("Add", new[] { x, ToFloat(b, b.Node("Range", new[] { Scalar(b, 0), Scalar(b, 8), Scalar(b, 2) })) }));
        Check("Range float, negative delta", Row, (b, x) => b.Node("Add", new[] { x, b.Node("Range", new[] { Float(b, 1f), Float(b, -1f), Float(b, -0.5f) }) }));
        // PyTorch's expand(n, -1, -1): Where(Equal(shape, -1), ones, shape) then Expand.
        Check("expand(-1) pattern with integer Add", Row, (b, x) =>
        {
            string wanted = b.Node("Add", new[] { Ints(b, "m", -2, -1, 0), Ints(b, "p", 1, 0, 4) });
            string shape = b.Node("Where", new[] { b.Node("Equal", new[] { wanted, Ints(b, "neg", -1) }), Ints(b, "one", 1), wanted });
            return b.Node("Add", new[] { x, b.Node("Expand", new[] { Weight(b, "w", new long[] { 1, 3, 4 }, 7), shape }) });
        });
    }

    [TestMethod]
    public void LayerNormalizationAndReductionsMatchOnnxRuntime()
    {
        Check("LayerNormalization last axis", Row, (b, x) => b.Node("LayerNormalization", new[] { x, Weight(b, "s", new long[] { 4 }, 1), Weight(b, "bias", new long[] { 4 }, 2) }, Create("epsilon", 1e-6f)), opset: 17);
        Check("LayerNormalization axis 1, no bias", Row, (b, x) => b.Node("LayerNormalization", new[] { x, Weight(b, "s", new long[] { 2, 3, 4 }, 1) }, Create("axis", 1L)), opset: 17);
        Check("ReduceSum axes input (13)", Row, (b, x) => b.Node("ReduceSum", new[] { x, Ints(b, "axes", 1, -1) }, Create("keepdims", 0L)), opset: 13);
        Check("ReduceSum axes attribute (11)", Row, (b, x) => b.Node("ReduceSum", new[] { x }, Create("axes", new long[] { 2 })), opset: 11);
        Check("ReduceSum without axes (all)", Row, (b, x) => b.Node("ReduceSum", new[] { x }), opset: 13);
        Check("ReduceSum without axes, noop_with_empty_axes", Row, (b, x) => b.Node("ReduceSum", new[] { x }, Create("noop_with_empty_axes", 1L)), opset: 13);
        Check("ReduceSum and Pow on int64", Row, (b, x) =>
        {
            string integers = b.Node("Cast", new[] { b.Node("Mul", new[] { x, Float(b, 3f) }) }, Create("to", 7L));
            return ToFloat(b, b.Node("ReduceSum", new[] { b.Node("Pow", new[] { integers, Scalar(b, 2) }), Ints(b, "axes", -1) }));
        }, opset: 13);
        Check("LayerNormalization Mean and InvStdDev outputs", Row, (b, x) =>
        {
            var outputs = b.Node("LayerNormalization", new[] { x, Weight(b, "s", new long[] { 4 }, 1) }, 3, Create("axis", 2L));
            return b.Node("Add", new[] { b.Node("Add", new[] { outputs[0], outputs[1] }), outputs[2] });
        }, opset: 17);
        Check("ReduceMax axes input (18)", Row, (b, x) => b.Node("ReduceMax", new[] { x, Ints(b, "axes", 3) }), opset: 18);
        Check("ReduceMax axes attribute (13)", Row, (b, x) => b.Node("ReduceMax", new[] { x }, Create("axes", new long[] { 1 }), Create("keepdims", 0L)), opset: 13);
    }
}
