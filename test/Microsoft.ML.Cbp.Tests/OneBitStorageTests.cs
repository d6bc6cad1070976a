using System;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>WeightStorage.OneBit: binary weights packed eight per byte, decoded by standard ops, scored alike by ONNX Runtime and the interpreter.</summary>
[TestClass]
public sealed class OneBitStorageTests
{
    [TestMethod]
    public void PackingPutsElementEightKPlusIInBitIOfByteK()
    {
        // By hand: +1 at positions 0, 3, 8 and 10 of 11 codes.
        var codes = Enumerable.Range(0, 11).Select(i => (sbyte)(i is 0 or 3 or 8 or 10 ? 1 : -1)).ToArray();
        CollectionAssert.AreEqual(new byte[] { 0b0000_1001, 0b0000_0101 }, OneBitDecode.Pack(codes));
        Assert.ThrowsExactly<ArgumentException>(() => OneBitDecode.Pack(new sbyte[] { 1, 0 }));
    }

    [TestMethod]
    [DataRow(ScaleMode.PerLayer)]
    [DataRow(ScaleMode.PerOutputChannel)]
    public void BinaryWeightsCostOneBitAndScoreLikeTheModule(ScaleMode scaleMode)
    {
        // Layers of 16 x 16 (a multiple of 8) and 16 x 13 (not: the decode slices the padding off) weights.
        var model = CbpArchitecture.Mlp(new[] { 16, 13 }).Build(new long[] { 5 }, 3, seed: 4);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false);
        var constrained = OnnxTestHelpers.RoundToLevels(module, names, WeightConstraint.Binary, scaleMode);
        var exported = QuantizedOnnxExporter.Export(module, constrained, WeightStorage.OneBit);
        long[] shape = { 7, 5 };
        var input = OnnxTestHelpers.RandomInput(shape, 2);
        var expected = OnnxTestHelpers.Forward(module, input, shape);
        OnnxTestHelpers.AssertClose(expected, OrtRunner.Run(exported, input, shape), 1e-5, $"OneBit ({scaleMode}) in ONNX Runtime");
        OnnxTestHelpers.AssertClose(expected, OrtRunner.Run(global::Microsoft.ML.Cbp.Scoring.ScoringGraph.DecodeWithCastAndMul(exported), input, shape), 1e-5, "SaveOnnx's form");
        using (var reloaded = new OnnxGraphModule(exported))
        {
            OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(reloaded, input, shape), expected, 1e-5, $"OneBit ({scaleMode}) in the interpreter");
            Assert.IsFalse(reloaded.named_parameters().Any(p => p.name.Contains("_cbp_scale", StringComparison.Ordinal)), "a reloaded one-bit weight stays fixed");
        }
        foreach (string name in names)
        {
            long count = model.Graph.Initializer.Single(t => t.Name == name).Dims.Aggregate(1L, (a, b) => a * b);
            var bits = exported.Graph.Node.Single(n => n.OpType == "Constant" && n.Output[0] == name + "_cbp_bits").Attribute[0].T;
            Assert.AreEqual((count + 7) / 8, bits.RawData.Length, $"{name}: one bit per weight");
            Assert.IsFalse(exported.Graph.Initializer.Any(t => t.Name == name), $"{name}: no float copy");
        }
        Assert.AreEqual("OneBit", exported.MetadataProps.Single(p => p.Key == "cbp.weight_storage").Value);
    }

    [TestMethod]
    public void LevelSetsWithMoreThanTwoLevelsAreRefusedNamingTheStoragesThatHoldThem()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => QuantizedOnnxExporter.CheckStorage(WeightConstraint.Ternary, WeightStorage.OneBit, "the constrained weights"));
        StringAssert.Contains(error.Message, "OneBit holds two levels");
        StringAssert.Contains(error.Message, "Int2");
        var fit = Assert.ThrowsExactly<ArgumentException>(() => new MLContext(1).Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            Constraint = WeightConstraint.OneBitShift,
            WeightStorage = WeightStorage.OneBit,
        }).Fit(new MLContext(1).Data.LoadFromEnumerable(ThreeClassRows.Make(10))));
        StringAssert.Contains(fit.Message, "OneBit");
    }
}
