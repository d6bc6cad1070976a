using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Onnx.Architectures;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;
using static Microsoft.ML.Cbp.Onnx.OnnxAttributes;
using static Microsoft.ML.Cbp.Tests.OnnxOpParityTests;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Wrong inputs to this change's paths: the zoo's ops, quantized weights, the size budget's options. Each is a clear exception naming what is wrong.</summary>
[TestClass]
public sealed class NewPathErrorTests
{
    private static InvalidDataException Fails(Func<OnnxGraphBuilder, string, string> body, int opset = 21)
    {
        var model = OnnxTestHelpers.Model(new long[] { 2, 3 }, body, opset);
        // The module's shape probe at load runs the graph, so most such errors surface when the model loads.
        return Assert.ThrowsExactly<InvalidDataException>(() =>
        {
            using var module = new OnnxGraphModule(model);
            OnnxTestHelpers.Forward(module, new float[12], new long[] { 2, 2, 3 });
        });
    }

    [TestMethod]
    public void BadSliceSplitRangeAndConstantOfShapeInputsNameTheNode()
    {
        StringAssert.Contains(Fails((b, x) => b.Node("Slice", new[] { x, Ints(b, "s", 0), Ints(b, "e", 2), Ints(b, "a", 1), Ints(b, "st", 0) })).Message, "step 0 on axis 1");
        StringAssert.Contains(Fails((b, x) => b.Node("Slice", new[] { x, Ints(b, "s", 0, 1), Ints(b, "e", 2) })).Message, "one each per sliced axis");
        StringAssert.Contains(Fails((b, x) => b.Node("Split", new[] { x, Ints(b, "sizes", 1, 1) }, 2, Create("axis", 2L))[0], opset: 13).Message, "do not add up to the 3 entries");
        StringAssert.Contains(Fails((b, x) => b.Node("Split", new[] { x, Ints(b, "sizes", 1, 1, 1) }, 2, Create("axis", 2L))[0], opset: 13).Message, "3 sizes but the node has 2 outputs");
        StringAssert.Contains(Fails((b, x) => b.Node("Split", new[] { x }, 2, Create("axis", 2L))[0], opset: 13).Message, "do not split evenly into 2 outputs");
        StringAssert.Contains(Fails((b, x) => b.Node("Add", new[] { x, b.Node("Range", new[] { b.Node("Constant", Array.Empty<string>(), Create("value_float", 0f)), b.Node("Constant", Array.Empty<string>(), Create("value_float", 3f)), b.Node("Constant", Array.Empty<string>(), Create("value_float", 0f)) }) })).Message, "delta is 0");
        StringAssert.Contains(Fails((b, x) => b.Node("Add", new[] { x, b.Node("ConstantOfShape", new[] { Ints(b, "shape", 2, -1) }) })).Message, "negative dimension");
        StringAssert.Contains(Fails((b, x) => b.Node("Expand", new[] { x, Ints(b, "shape", 4, 3) })).Message, "to [4, 3]: dimension 1 is 2 and 4");
        StringAssert.Contains(Fails((b, x) => b.Node("Where", new[] { b.Node("Greater", new[] { x, x }), x, Ints(b, "i", 1) })).Message, "Where needs both of one type");
    }

    [TestMethod]
    public void QuantizedWeightsWithMismatchedScalesAreRefusedNamingTheNode()
    {
        var model = OnnxTestHelpers.Model(new long[] { 3 }, (b, x) => b.Node("MatMul", new[] { x, b.Node("DequantizeLinear", new[] { "codes", "scale" }, Create("axis", 1L)) }));
        model.Graph.Initializer.Add(OnnxTensorConversion.Create("codes", OnnxTensorConversion.DataTypes.Int8, new long[] { 3, 2 }, new byte[6]));
        model.Graph.Initializer.Add(OnnxTensorConversion.FromFloat("scale", new long[] { 5 }, new float[] { 1, 1, 1, 1, 1 }));
        var error = Assert.ThrowsExactly<InvalidDataException>(() => DequantizedWeights.Fold(model, out _));
        StringAssert.Contains(error.Message, "DequantizeLinear");
        StringAssert.Contains(error.Message, "scale has 5 values but axis 1 of the input has 2");
    }

    [TestMethod]
    public void SizeBudgetOptionsAreCheckedWhenTheEstimatorIsMade()
    {
        var ml = new MLContext(1);
        Assert.AreEqual("MaxModelBytes", Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(new CbpQuantizeOptions { MaxModelBytes = 0 })).ParamName);
        var empty = new CbpQuantizeOptions { MaxModelBytes = 1000 };
        empty.MixedConstraints.Clear();
        Assert.AreEqual("MixedConstraints", Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(empty)).ParamName);
        // Levels with no common unit have no integer storage: refused when Fit starts, before reading data.
        var irrational = new CbpQuantizeOptions { MaxModelBytes = 1000, MixedConstraints = { WeightConstraint.Custom(-1, 0, Math.PI) } };
        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(irrational).Fit(ml.Data.LoadFromEnumerable(ThreeClassRows.Make(10))));
        StringAssert.Contains(error.Message, "has no integer storage");
    }
}
