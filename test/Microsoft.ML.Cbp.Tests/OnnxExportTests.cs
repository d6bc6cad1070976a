using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Built-in networks: ONNX Runtime parity before and after export in every storage, and exact decoding of the codes.</summary>
[TestClass]
public sealed class OnnxExportTests
{
    private static (CbpArchitecture Architecture, long[] Row) Network(string name) => name switch
    {
        "Mlp" => (CbpArchitecture.Mlp(new[] { 48, 32 }, dropout: 0.1f), new long[] { 1, 8, 8 }),
        "SmallCnn" => (CbpArchitecture.SmallCnn(64), new long[] { 1, 28, 28 }),
        "SmallCnn32" => (CbpArchitecture.SmallCnn(64), new long[] { 3, 32, 32 }),
        "ResNet20" => (CbpArchitecture.ResNet(20), new long[] { 3, 32, 32 }),
        _ => throw new ArgumentException(name),
    };

    [TestMethod]
    [DataRow("Mlp", "Binary", ScaleMode.PerLayer)]
    [DataRow("SmallCnn", "TwoBitShift", ScaleMode.PerLayer)]
    [DataRow("SmallCnn", "OneBitShift", ScaleMode.MinimumError)]
    [DataRow("SmallCnn32", "OneBitShift", ScaleMode.PerOutputChannel)]
    [DataRow("ResNet20", "Ternary", ScaleMode.PerLayer)]
    public void BuiltInNetworkMatchesOnnxRuntimeBeforeAndAfterExportInEveryStorage(string network, string set, ScaleMode scaleMode)
    {
        var constraint = WeightConstraintTests.ByName(set);
        var (architecture, row) = Network(network);
        var model = architecture.Build(row, 10, seed: 1);
        long[] shape = new[] { 2L }.Concat(row).ToArray();
        var input = OnnxTestHelpers.RandomInput(shape, 5);
        using var module = new OnnxGraphModule(model);
        OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(module, input, shape), OrtRunner.Run(model, input, shape), 1e-5, $"{network} float");

        var names = ConstrainedInitializerSelection.Select(model);
        Assert.AreEqual(ConstrainedInitializerSelection.Candidates(model).Count - 2, names.Count, "first and last weight layers stay float");
        var constrained = OnnxTestHelpers.RoundToLevels(module, names, constraint, scaleMode);
        var expected = OnnxTestHelpers.Forward(module, input, shape);

        var storages = new List<WeightStorage> { WeightStorage.Float32, WeightStorage.Int8, WeightStorage.Int4 };
        if (constraint.Levels.Count <= 3)
        {
            storages.Add(WeightStorage.Int2);
        }
        foreach (var storage in storages)
        {
            var exported = QuantizedOnnxExporter.Export(module, constrained, storage);
            OnnxTestHelpers.AssertClose(expected, OrtRunner.Run(exported, input, shape), 1e-5, $"{network} {set} {storage} in ONNX Runtime");
            OnnxTestHelpers.AssertClose(expected, OrtRunner.Run(exported, input, shape, foldWeights: true), 1e-5, $"{network} {set} {storage} in ONNX Runtime, weights decoded at load");
            using var reloaded = new OnnxGraphModule(OnnxModelFile.Parse(OnnxModelFile.ToBytes(exported)));
            OnnxTestHelpers.AssertClose(expected, OnnxTestHelpers.Forward(reloaded, input, shape), 1e-6, $"{network} {set} {storage} re-imported");
            Assert.AreEqual(storage.ToString(), exported.MetadataProps.Single(p => p.Key == "cbp.weight_storage").Value);
            Assert.AreEqual(string.Join(",", names), exported.MetadataProps.Single(p => p.Key == "cbp.constrained_initializers").Value);
            if (storage != WeightStorage.Float32)
            {
                AssertCodesDecodeExactly(module, exported, constrained, storage);
            }
        }
    }

    /// <summary>Every stored code times its scale is bit-identical to the trained weight, and every code is a level.</summary>
    private static void AssertCodesDecodeExactly(OnnxGraphModule module, ModelProto exported, List<QuantizedInitializer> constrained, WeightStorage storage)
    {
        int expectedType = storage switch
        {
            WeightStorage.Int8 => OnnxTensorConversion.DataTypes.Int8,
            WeightStorage.Int4 => OnnxTensorConversion.DataTypes.Int4,
            _ => OnnxTensorConversion.DataTypes.Int2,
        };
        foreach (var c in constrained)
        {
            var codesProto = exported.Graph.Initializer.Single(t => t.Name == c.Initializer + "_cbp_codes");
            Assert.AreEqual(expectedType, codesProto.DataType);
            Assert.IsFalse(exported.Graph.Initializer.Any(t => t.Name == c.Initializer), "the float weight is gone");
            using var codes = TorchTensorConversion.ToTorch(codesProto).to(float32);
            using var scale = TorchTensorConversion.ToTorch(exported.Graph.Initializer.Single(t => t.Name == c.Initializer + "_cbp_scale"));
            var weight = module.InitializerValue(c.Initializer).detach();
            var shape = Enumerable.Repeat(1L, (int)weight.dim()).ToArray();
            shape[0] = scale.numel();
            using var decoded = codes * (scale.numel() == 1 ? scale : scale.reshape(shape));
            CollectionAssert.AreEqual(weight.data<float>().ToArray(), decoded.data<float>().ToArray(), $"{c.Initializer} decodes to the trained weights bit for bit");
            var unit = LevelCodes.For(c.Constraint)!;
            var allowed = unit.Codes.Select(v => (float)v).ToHashSet();
            Assert.IsTrue(codes.data<float>().ToArray().All(allowed.Contains), $"{c.Initializer}: every code is a level of {c.Constraint}");
        }
    }

    [TestMethod]
    public void ExportRefusesStoragesThatCannotHoldTheLevelsAndWeightsOffTheLevels()
    {
        var model = CbpArchitecture.Mlp(new[] { 16, 16 }).Build(new long[] { 8 }, 3);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model);
        var offLevels = names.Select(n => new QuantizedInitializer(n, WeightConstraint.Binary, new[] { 0.1f })).ToList();
        var e = Assert.ThrowsExactly<ArgumentException>(() => QuantizedOnnxExporter.Export(module, offLevels, WeightStorage.Int4));
        StringAssert.Contains(e.Message, names[0]);
        var shift = OnnxTestHelpers.RoundToLevels(module, names, WeightConstraint.TwoBitShift);
        e = Assert.ThrowsExactly<ArgumentException>(() => QuantizedOnnxExporter.Export(module, shift, WeightStorage.Int2));
        StringAssert.Contains(e.Message, "Int2 holds binary and ternary only");
    }

    [TestMethod]
    public void LevelCodesOfThePaperSetsAreSmallIntegers()
    {
        // By hand: binary/ternary unit 1; one-bit shift unit 1/2 (codes 0, +-1, +-2); two-bit shift unit 1/4 (0, +-1, +-2, +-4).
        CollectionAssert.AreEqual(new[] { -1, 1 }, LevelCodes.For(WeightConstraint.Binary)!.Codes);
        CollectionAssert.AreEqual(new[] { -2, -1, 0, 1, 2 }, LevelCodes.For(WeightConstraint.OneBitShift)!.Codes);
        Assert.AreEqual(0.5, LevelCodes.For(WeightConstraint.OneBitShift)!.Unit);
        CollectionAssert.AreEqual(new[] { -4, -2, -1, 0, 1, 2, 4 }, LevelCodes.For(WeightConstraint.TwoBitShift)!.Codes);
        Assert.IsTrue(LevelCodes.For(WeightConstraint.Ternary)!.FitsSigned(2));
        Assert.IsFalse(LevelCodes.For(WeightConstraint.OneBitShift)!.FitsSigned(2));
        Assert.IsNull(LevelCodes.For(WeightConstraint.Custom(-1, 0.3, 1.0 / 3)));
    }

    [TestMethod]
    public void PackedFourAndTwoBitCodesFollowTheOnnxByteOrder()
    {
        // INT4: low nibble first: (1, -1) -> 0x01 | 0xF0 = 0xF1. INT2: lowest bits first: (1, -1, 0, -2) -> 01 | 11<<2 | 00<<4 | 10<<6 = 0x8D.
        CollectionAssert.AreEqual(new byte[] { 0xF1, 0x07 }, OnnxTensorConversion.Pack(new sbyte[] { 1, -1, 7 }, 4));
        CollectionAssert.AreEqual(new byte[] { 0x8D }, OnnxTensorConversion.Pack(new sbyte[] { 1, -1, 0, -2 }, 2));
        CollectionAssert.AreEqual(new sbyte[] { 1, -1, 0, -2 }, OnnxTensorConversion.Unpack(new byte[] { 0x8D }, 4, 2, signed: true));
        CollectionAssert.AreEqual(new sbyte[] { 1, -1, 7 }, OnnxTensorConversion.Unpack(new byte[] { 0xF1, 0x07 }, 3, 4, signed: true));
    }
}
