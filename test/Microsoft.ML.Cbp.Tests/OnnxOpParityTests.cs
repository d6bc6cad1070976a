using System;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Onnx.Architectures;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;
using static Microsoft.ML.Cbp.Onnx.OnnxAttributes;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Every supported op: the TorchSharp interpreter against ONNX Runtime on random inputs, evaluation mode.</summary>
[TestClass]
public sealed class OnnxOpParityTests
{
    internal static string Weight(OnnxGraphBuilder b, string name, long[] shape, int seed)
    {
        using var g = new Generator((ulong)seed);
        return b.Initializer(name, randn(shape, generator: g));
    }

    internal static string Ints(OnnxGraphBuilder b, string name, params long[] values)
    {
        using var scope = NewDisposeScope();
        // An int64 initializer through the float path would change its type; build it directly.
        return b.Node("Constant", Array.Empty<string>(), new AttributeProto
        {
            Name = "value",
            Type = AttributeProto.Types.AttributeType.Tensor,
            T = OnnxTensorConversion.FromInt64(name, new long[] { values.Length }, values),
        });
    }

    internal static void Check(string what, long[] rowShape, Func<OnnxGraphBuilder, string, string> body, int opset = 21, long batch = 3)
    {
        var model = OnnxTestHelpers.Model(rowShape, body, opset);
        long[] shape = new[] { batch }.Concat(rowShape).ToArray();
        var input = OnnxTestHelpers.RandomInput(shape, 17);
        using var module = new OnnxGraphModule(model);
        OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(module, input, shape), OrtRunner.Run(model, input, shape), 1e-5, what);
    }

    [TestMethod]
    public void ConvolutionVariantsMatchOnnxRuntime()
    {
        Check("conv stride 2, pads 1", new long[] { 3, 9, 9 }, (b, x) => b.Node("Conv", new[] { x, Weight(b, "w", new long[] { 4, 3, 3, 3 }, 1), Weight(b, "bias", new long[] { 4 }, 2) },
            Create("strides", new long[] { 2, 2 }), Create("pads", new long[] { 1, 1, 1, 1 })));
        Check("conv groups, dilations", new long[] { 4, 10, 10 }, (b, x) => b.Node("Conv", new[] { x, Weight(b, "w", new long[] { 6, 2, 3, 3 }, 1) },
            Create("group", 2L), Create("dilations", new long[] { 2, 2 })));
        Check("conv asymmetric pads", new long[] { 2, 7, 8 }, (b, x) => b.Node("Conv", new[] { x, Weight(b, "w", new long[] { 3, 2, 2, 3 }, 1) },
            Create("pads", new long[] { 0, 1, 2, 0 })));
        Check("conv SAME_UPPER stride 2", new long[] { 2, 7, 8 }, (b, x) => b.Node("Conv", new[] { x, Weight(b, "w", new long[] { 3, 2, 4, 4 }, 1) },
            new AttributeProto { Name = "auto_pad", Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8("SAME_UPPER") },
            Create("strides", new long[] { 2, 2 })));
        Check("conv 1-D", new long[] { 2, 11 }, (b, x) => b.Node("Conv", new[] { x, Weight(b, "w", new long[] { 3, 2, 3 }, 1) },
            Create("pads", new long[] { 1, 2 }), Create("strides", new long[] { 2 })));
    }

    [TestMethod]
    public void MatrixOpsMatchOnnxRuntime()
    {
        Check("gemm alpha beta transB", new long[] { 5 }, (b, x) => b.Node("Gemm", new[] { x, Weight(b, "w", new long[] { 4, 5 }, 1), Weight(b, "c", new long[] { 4 }, 2) },
            Create("transB", 1L), Create("alpha", 0.5f), Create("beta", 2f)));
        Check("gemm transA", new long[] { 4 }, (b, x) => b.Node("Gemm", new[] { Weight(b, "a", new long[] { 4, 3 }, 1), b.Node("Transpose", new[] { x }) },
            Create("transA", 1L)), batch: 3);
        Check("matmul", new long[] { 2, 5 }, (b, x) => b.Node("MatMul", new[] { x, Weight(b, "w", new long[] { 5, 3 }, 1) }));
    }

    [TestMethod]
    public void ElementwiseOpsMatchOnnxRuntime()
    {
        long[] row = { 2, 3, 4 };
        foreach (string op in new[] { "Add", "Sub", "Mul", "Div" })
        {
            Check(op, row, (b, x) => b.Node(op, new[] { x, b.Node("Add", new[] { Weight(b, "w", new long[] { 3, 1 }, 5), b.Node("Constant", Array.Empty<string>(), Create("value_float", 3f)) }) }));
        }
        foreach (string op in new[] { "Relu", "Sigmoid", "Tanh", "HardSwish", "Identity", "Dropout" })
        {
            Check(op, row, (b, x) => b.Node(op, new[] { x }));
        }
        Check("LeakyRelu", row, (b, x) => b.Node("LeakyRelu", new[] { x }, Create("alpha", 0.2f)));
        // Cast: float16 rounding, float -> int truncation toward zero, int8 -> float (a decoded weight code), back to float for the output.
        Check("Cast float16 then float", row, (b, x) => b.Node("Cast", new[] { b.Node("Cast", new[] { b.Node("Mul", new[] { x, Weight(b, "w", new long[] { 4 }, 6) }) }, Create("to", 10L)) }, Create("to", 1L)));
        Check("Cast int64 then float", row, (b, x) => b.Node("Cast", new[] { b.Node("Cast", new[] { b.Node("Mul", new[] { x, b.Node("Constant", Array.Empty<string>(), Create("value_float", 7f)) }) }, Create("to", 7L)) }, Create("to", 1L)));
        Check("Cast int8 then float", row, (b, x) => b.Node("Mul", new[] { x, b.Node("Cast", new[] { b.Node("Cast", new[] { Weight(b, "w", new long[] { 4 }, 7) }, Create("to", 3L)) }, Create("to", 1L)) }));
        Check("HardSigmoid", row, (b, x) => b.Node("HardSigmoid", new[] { x }, Create("alpha", 0.3f), Create("beta", 0.4f)));
        Check("Clip opset 21 (inputs)", row, (b, x) => b.Node("Clip", new[] { x, b.Node("Constant", Array.Empty<string>(), Create("value_float", -0.5f)), b.Node("Constant", Array.Empty<string>(), Create("value_float", 1f)) }));
        Check("Clip opset 8 (attributes)", row, (b, x) => b.Node("Clip", new[] { x }, Create("min", -0.5f), Create("max", 1f)), opset: 8);
    }

    [TestMethod]
    public void NormalizationAndPoolingMatchOnnxRuntime()
    {
        Check("batch norm (running statistics)", new long[] { 3, 4, 4 }, (b, x) => b.Node("BatchNormalization", new[]
        {
            x, Weight(b, "s", new long[] { 3 }, 1), Weight(b, "b", new long[] { 3 }, 2), Weight(b, "m", new long[] { 3 }, 3),
            b.Initializer("v", tensor(new float[] { 0.5f, 2f, 1.5f })),
        }, Create("epsilon", 1e-3f)));
        Check("max pool pads ceil", new long[] { 2, 7, 7 }, (b, x) => b.Node("MaxPool", new[] { x }, Create("kernel_shape", new long[] { 3, 3 }),
            Create("strides", new long[] { 2, 2 }), Create("pads", new long[] { 1, 0, 0, 1 }), Create("ceil_mode", 1L)));
        Check("average pool count_include_pad 0, asymmetric", new long[] { 2, 6, 6 }, (b, x) => b.Node("AveragePool", new[] { x }, Create("kernel_shape", new long[] { 3, 3 }),
            Create("strides", new long[] { 2, 2 }), Create("pads", new long[] { 1, 0, 0, 1 })));
        Check("average pool count_include_pad 1", new long[] { 2, 6, 6 }, (b, x) => b.Node("AveragePool", new[] { x }, Create("kernel_shape", new long[] { 2, 2 }),
            Create("pads", new long[] { 1, 1, 1, 1 }), Create("count_include_pad", 1L)));
        Check("global average pool", new long[] { 3, 5, 4 }, (b, x) => b.Node("GlobalAveragePool", new[] { x }));
        Check("ReduceMean opset 21 (axes input)", new long[] { 3, 5, 4 }, (b, x) => b.Node("ReduceMean", new[] { x, Ints(b, "axes", 1, -1) }, Create("keepdims", 0L)));
        Check("ReduceMean opset 13 (axes attribute)", new long[] { 3, 5, 4 }, (b, x) => b.Node("ReduceMean", new[] { x }, Create("axes", new long[] { 2 })), opset: 13);
    }

    [TestMethod]
    public void ShapeOpsMatchOnnxRuntime()
    {
        long[] row = { 2, 3, 4 };
        Check("flatten axis 2", row, (b, x) => b.Node("Flatten", new[] { x }, Create("axis", 2L)));
        Check("reshape with 0 and -1", row, (b, x) => b.Node("Reshape", new[] { x, Ints(b, "shape", 0, -1, 2) }));
        Check("transpose", row, (b, x) => b.Node("Transpose", new[] { x }, Create("perm", new long[] { 0, 3, 1, 2 })));
        Check("concat", row, (b, x) => b.Node("Concat", new[] { x, b.Node("Relu", new[] { x }) }, Create("axis", -1L)));
        Check("shape, gather, unsqueeze, concat, reshape", row, (b, x) =>
        {
            string batch = b.Node("Unsqueeze", new[] { b.Node("Gather", new[] { b.Node("Shape", new[] { x }), b.Node("Constant", Array.Empty<string>(), Create("value_int", 0L)) }), Ints(b, "axes0", 0) });
            return b.Node("Reshape", new[] { x, b.Node("Concat", new[] { batch, Ints(b, "rest", -1) }, Create("axis", 0L)) });
        });
        Check("gather negative indices axis 1", row, (b, x) => b.Node("Gather", new[] { x, Ints(b, "idx", -1, 0) }, Create("axis", 1L)));
        Check("unsqueeze and squeeze", row, (b, x) => b.Node("Squeeze", new[] { b.Node("Unsqueeze", new[] { x, Ints(b, "a1", 1, 4) }), Ints(b, "a2", 1) }));
        Check("unsqueeze opset 11 (attribute)", row, (b, x) => b.Node("Unsqueeze", new[] { x }, Create("axes", new long[] { -1 })), opset: 11);
        Check("pad constant", row, (b, x) => b.Node("Pad", new[] { x, Ints(b, "pads", 0, 1, 0, 2, 0, 0, 1, 1), b.Node("Constant", Array.Empty<string>(), Create("value_float", 0.5f)) }));
        Check("pad reflect", new long[] { 2, 5, 5 }, (b, x) => b.Node("Pad", new[] { x, Ints(b, "pads", 0, 0, 1, 2, 0, 0, 2, 1) },
            new AttributeProto { Name = "mode", Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8("reflect") }));
        Check("softmax opset 21", row, (b, x) => b.Node("Softmax", new[] { x }, Create("axis", 1L)));
        Check("log softmax opset 11 (flattened)", row, (b, x) => b.Node("LogSoftmax", new[] { x }, Create("axis", 2L)), opset: 11);
    }

    [TestMethod]
    public void TrainingModeBatchNormUsesBatchStatisticsAndOnnxMomentum()
    {
        // Hand computation: channel c of a [4, 2] batch; ONNX running update: r = r * 0.9 + batch * 0.1.
        var model = OnnxTestHelpers.Model(new long[] { 2 }, (b, x) => b.BatchNorm(x, 2));
        using var module = new OnnxGraphModule(model);
        module.train();
        float[] data = { 1, 10, 2, 20, 3, 30, 6, 40 };
        using var y = module.forward(tensor(data, new long[] { 4, 2 }));
        var values = y.data<float>().ToArray();
        double mean0 = 3, var0 = (4 + 1 + 0 + 9) / 4.0; // biased variance normalises
        Assert.AreEqual((1 - mean0) / Math.Sqrt(var0 + 1e-5), values[0], 1e-5);
        Assert.AreEqual((6 - mean0) / Math.Sqrt(var0 + 1e-5), values[6], 1e-5);
        var runningMean = module.InitializerValue("bn1.mean").data<float>().ToArray();
        Assert.AreEqual(0.9 * 0 + 0.1 * 3, runningMean[0], 1e-6);
        Assert.AreEqual(0.1 * 25, runningMean[1], 1e-5);
        // Running variance: torch (and ONNX Runtime training) use the unbiased batch variance, 14/3 for channel 0.
        var runningVariance = module.InitializerValue("bn1.var").data<float>().ToArray();
        Assert.AreEqual(0.9 * 1 + 0.1 * (14.0 / 3), runningVariance[0], 1e-5);
    }

    [TestMethod]
    public void DropoutIsActiveInTrainingOnlyAndScalesKeptUnits()
    {
        var model = OnnxTestHelpers.Model(new long[] { 1000 }, (b, x) => b.Dropout(x, 0.25f));
        using var module = new OnnxGraphModule(model);
        using var x = ones(4, 1000);
        module.train();
        manual_seed(5);
        var trained = module.forward(x).data<float>().ToArray();
        double dropped = trained.Count(v => v == 0) / (double)trained.Length;
        Assert.AreEqual(0.25, dropped, 0.03, "fraction dropped");
        Assert.IsTrue(trained.Where(v => v != 0).All(v => Math.Abs(v - 1 / 0.75f) < 1e-6), "kept units are scaled by 1 / (1 - ratio)");
        module.eval();
        CollectionAssert.AreEqual(x.data<float>().ToArray(), module.forward(x).data<float>().ToArray());
    }
}
