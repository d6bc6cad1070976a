using System;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Onnx.Architectures;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;
using static Microsoft.ML.Cbp.Onnx.OnnxAttributes;
using static Microsoft.ML.Cbp.Tests.OnnxOpParityTests;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// The export raises a model's opset (INT4 needs 21): every op whose form changed on the way is rewritten, and ONNX Runtime
/// gives the same outputs for the model before and after (two opsets, one answer), as does the interpreter.
/// </summary>
[TestClass]
public sealed class OpsetUpgradeTests
{
    private static readonly long[] Row = { 2, 3, 6 };

    private static void CheckUpgrade(string what, int opset, Func<OnnxGraphBuilder, string, string> body)
    {
        var model = OnnxTestHelpers.Model(Row, body, opset);
        var upgraded = model.Clone();
        OnnxOpsetUpgrader.Upgrade(upgraded, 21, OnnxOpRegistry.Supported);
        Assert.AreEqual(21, OnnxModelFile.DefaultOpset(upgraded));
        long[] shape = new long[] { 3 }.Concat(Row).ToArray();
        var input = OnnxTestHelpers.RandomInput(shape, 8);
        var before = OrtRunner.Run(model, input, shape);
        OnnxTestHelpers.AssertClose(OrtRunner.Run(upgraded, input, shape), before, 1e-6, $"{what}: opset {opset} -> 21 in ONNX Runtime");
        using var module = new OnnxGraphModule(upgraded);
        OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(module, input, shape), before, 1e-5, $"{what}: the interpreter on the upgraded model");
    }

    private static string Join(OnnxGraphBuilder b, string[] parts) =>
        b.Node("Concat", parts.Select((p, i) => i % 2 == 0 ? p : b.Node("Neg", new[] { p })).ToArray(), Create("axis", 3L));

    [TestMethod]
    public void SplitSliceAndReductionsKeepTheirMeaningAcrossOpsets()
    {
        CheckUpgrade("Split without sizes", 13, (b, x) => Join(b, b.Node("Split", new[] { x }, 3, Create("axis", 3L))));
        CheckUpgrade("Split with sizes (attribute)", 11, (b, x) => Join(b, b.Node("Split", new[] { x }, 2, Create("axis", -1L), Create("split", new long[] { 4, 2 }))));
        CheckUpgrade("Split without sizes (opset 11)", 11, (b, x) => Join(b, b.Node("Split", new[] { x }, 2, Create("axis", 3L))));
        CheckUpgrade("Slice (attributes)", 9, (b, x) => b.Node("Slice", new[] { x }, Create("starts", new long[] { 1, -4 }), Create("ends", new long[] { 3, 100 }), Create("axes", new long[] { 2, 3 })));
        CheckUpgrade("Slice without axes", 9, (b, x) => b.Node("Slice", new[] { x }, Create("starts", new long[] { 0, 1 }), Create("ends", new long[] { 2, 2 })));
        CheckUpgrade("ReduceSum axes attribute", 11, (b, x) => b.Node("ReduceSum", new[] { x }, Create("axes", new long[] { 1, -1 }), Create("keepdims", 0L)));
        CheckUpgrade("ReduceMax axes attribute", 13, (b, x) => b.Node("ReduceMax", new[] { x }, Create("axes", new long[] { 2 })));
        CheckUpgrade("ReduceMean axes attribute", 13, (b, x) => b.Node("ReduceMean", new[] { x }, Create("axes", new long[] { 3 })));
    }
}
