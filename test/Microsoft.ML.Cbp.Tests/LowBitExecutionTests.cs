using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>WeightExecution.MatMulNBits: fully connected layers kept as codes in ONNX Runtime's MatMulNBits, scoring like the decoded model.</summary>
[TestClass]
public sealed class LowBitExecutionTests
{
    /// <summary>A level set that needs an explicit zero point: codes -1..8 fit 4 bits only as q = c + 1.</summary>
    private static readonly WeightConstraint MinusOneToEight = WeightConstraint.Custom(Enumerable.Range(-1, 10).Select(c => c / 8.0).ToArray());

    /// <summary>Level set, storage, scale mode, then bits and explicit zero point with fp32 activations (0: the layers stay
    /// decoded, as 8-bit codes do on the CPU), and with int8 activations.</summary>
    public static IEnumerable<object[]> LevelSets => new[]
    {
        new object[] { "Binary", WeightStorage.OneBit, ScaleMode.PerLayer, 4, false, 2, false },
        new object[] { "Binary", WeightStorage.Int2, ScaleMode.PerOutputChannel, 4, false, 2, false },
        new object[] { "Ternary", WeightStorage.Int2, ScaleMode.PerOutputChannel, 4, false, 2, false },
        new object[] { "TwoBitShift", WeightStorage.Int4, ScaleMode.PerLayer, 4, false, 4, false },
        new object[] { "MinusOneToEight", WeightStorage.Int8, ScaleMode.PerLayer, 4, true, 4, true },
        new object[] { "Uniform8", WeightStorage.Int8, ScaleMode.PerOutputChannel, 0, false, 8, false },
        new object[] { "OneToThree", WeightStorage.Int4, ScaleMode.PerLayer, 4, false, 2, true },
    };

    private static WeightConstraint Named(string name) => name switch
    {
        "MinusOneToEight" => MinusOneToEight,
        "Uniform8" => WeightConstraint.Uniform(8),
        // Codes 1..3, all positive: stored as q = c with an explicit zero point 0.
        "OneToThree" => WeightConstraint.Custom(1, 2, 3),
        _ => (WeightConstraint)typeof(WeightConstraint).GetProperty(name)!.GetValue(null)!,
    };

    [TestMethod]
    [DynamicData(nameof(LevelSets))]
    public void EveryConstrainedGemmRunsAsMatMulNBitsAndScoresLikeTheModule(string constraintName, WeightStorage storage, ScaleMode scaleMode,
        int bits, bool explicitZero, int int8Bits, bool int8ExplicitZero)
    {
        // K = 100, 48 and 40: none a multiple of the block size, so every row's last block is padded.
        var model = CbpArchitecture.Mlp(new[] { 48, 40 }).Build(new long[] { 100 }, 10, seed: 5);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false);
        var constrained = OnnxTestHelpers.RoundToLevels(module, names, Named(constraintName), scaleMode);
        var decoded = ScoringGraph.DecodeWithCastAndMul(QuantizedOnnxExporter.Export(module, constrained, storage));
        var lowBit = MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBits, forCuda: false, out var layers);
        long[] shape = { 9, 100 };
        var input = OnnxTestHelpers.RandomInput(shape, 4);
        var expected = OnnxTestHelpers.Forward(module, input, shape);
        if (bits == 0)
        {
            Assert.AreEqual(0, layers.Count, "8-bit codes stay decoded in the exact form on the CPU");
            Assert.AreEqual(WeightExecution.DecodedFloat, MatMulNBitsGraph.FormOf(lowBit));
        }
        else
        {
            ExpectEveryGemmRewritten(lowBit, layers, names, bits, explicitZero);
            // The DequantizeLinear export (or the one-bit chain) is read directly too.
            var direct = MatMulNBitsGraph.Rewrite(QuantizedOnnxExporter.Export(module, constrained, storage), WeightExecution.MatMulNBits, forCuda: false, out var directLayers);
            ExpectEveryGemmRewritten(direct, directLayers, names, bits, explicitZero);
            OnnxTestHelpers.AssertClose(OrtRunner.Run(direct, input, shape), expected, 1e-5, $"{constraintName} MatMulNBits from the {storage} export versus the module");
        }
        OnnxTestHelpers.AssertClose(OrtRunner.Run(lowBit, input, shape), expected, 1e-5, $"{constraintName} MatMulNBits versus the module");
        OnnxTestHelpers.AssertClose(OrtRunner.Run(lowBit, input, shape), OrtRunner.Run(decoded, input, shape), 1e-5, $"{constraintName} MatMulNBits versus decoded float");

        // With int8 activations the codes take their narrowest width (2 bits for binary and ternary) and the scores stay near.
        var int8 = MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBitsInt8Activations, forCuda: false, out _);
        var int8Nodes = int8.Graph.Node.Where(n => n.OpType == "MatMulNBits").ToList();
        Assert.AreEqual(names.Count, int8Nodes.Count);
        Assert.IsTrue(int8Nodes.All(n => OnnxAttributes.Int(n, "bits", 0) == int8Bits && OnnxAttributes.Int(n, "accuracy_level", 0) == 4 && HasZeroPoint(n) == int8ExplicitZero));
        OnnxTestHelpers.AssertClose(OrtRunner.Run(int8, input, shape), expected, 5e-2, $"{constraintName} MatMulNBits with int8 activations");
    }

    private static void ExpectEveryGemmRewritten(ModelProto lowBit, IReadOnlyList<MatMulNBitsGraph.Layer> layers, IReadOnlyList<string> names, int bits, bool explicitZero)
    {
        CollectionAssert.AreEquivalent(names.ToList(), layers.Select(l => l.Weight).ToList(), "every constrained Gemm is rewritten");
        var nodes = lowBit.Graph.Node.Where(n => n.OpType == "MatMulNBits").ToList();
        Assert.AreEqual(names.Count, nodes.Count);
        Assert.IsTrue(nodes.All(n => n.Domain == "com.microsoft" && OnnxAttributes.Int(n, "bits", 0) == bits && OnnxAttributes.Int(n, "accuracy_level", 0) == 1));
        Assert.IsFalse(lowBit.Graph.Node.Any(n => n.OpType is "Gemm" or "Cast" or "DequantizeLinear"), "no float weight and no decode is left");
        Assert.IsTrue(lowBit.OpsetImport.Any(o => o.Domain == "com.microsoft" && o.Version == 1));
        Assert.IsTrue(nodes.All(n => HasZeroPoint(n) == explicitZero), explicitZero ? "codes off the default zero point need an explicit one" : "the default zero point");
    }

    private static bool HasZeroPoint(NodeProto node) => node.Input.Count > 3 && node.Input[3].Length > 0;

    [TestMethod]
    public void CodesArePackedAlongKFromTheLowestBitsWithTheDefaultZeroPoint()
    {
        // By hand: one Gemm row of ternary codes [1, 0, -1, 1, ...]. With int8 activations at 2 bits, zero point 2:
        // q = 3, 2, 1, 3 -> 0b11_01_10_11; exact (fp32) at 4 bits, zero point 8: q = 9, 8, 7, 9 -> 0x89, 0x97.
        var model = CbpArchitecture.Mlp(Array.Empty<int>()).Build(new long[] { 20 }, 2, seed: 5);
        using var module = new OnnxGraphModule(model);
        string weight = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false).Single();
        var pattern = new[] { 1f, 0f, -1f, 1f };
        using (var value = TorchSharp.torch.tensor(Enumerable.Range(0, 40).Select(i => 0.5f * pattern[i % 4]).ToArray(), new long[] { 2, 20 }))
        {
            module.InitializerValue(weight).detach().copy_(value);
        }
        var exported = QuantizedOnnxExporter.Export(module, new[] { new QuantizedInitializer(weight, WeightConstraint.Ternary, new[] { 0.5f }) }, WeightStorage.Int2);
        var exact = MatMulNBitsGraph.Rewrite(ScoringGraph.DecodeWithCastAndMul(exported), WeightExecution.MatMulNBits, forCuda: false, out _);
        var exactNode = exact.Graph.Node.Single(n => n.OpType == "MatMulNBits");
        var exactCodes = exact.Graph.Initializer.Single(t => t.Name == exactNode.Input[1]);
        CollectionAssert.AreEqual(new long[] { 2, 1, MatMulNBitsGraph.BlockSize / 2 }, exactCodes.Dims.ToArray());
        CollectionAssert.AreEqual(new byte[] { 0x89, 0x97, 0x89, 0x97 }, exactCodes.RawData.ToByteArray()[..4]);
        Assert.AreEqual(0x88, exactCodes.RawData.ToByteArray()[10], "K = 20 codes fill 10 bytes; the padding is q = 8 (weight 0)");

        var lowBit = MatMulNBitsGraph.Rewrite(ScoringGraph.DecodeWithCastAndMul(exported), WeightExecution.MatMulNBitsInt8Activations, forCuda: false, out _);
        var node = lowBit.Graph.Node.Single(n => n.OpType == "MatMulNBits");
        var codes = lowBit.Graph.Initializer.Single(t => t.Name == node.Input[1]);
        CollectionAssert.AreEqual(new long[] { 2, 1, MatMulNBitsGraph.BlockSize / 4 }, codes.Dims.ToArray(), "[N, blocks, bytes per block]");
        var bytes = codes.RawData.ToByteArray();
        Assert.AreEqual(0b11_01_10_11, bytes[0]);
        Assert.AreEqual(0b10_10_10_10, bytes[5], "K = 20 codes fill 5 bytes; the padding is q = 2 (weight 0)");
        // A, B, scales, no zero point (the default), no g_idx, and the Gemm's bias.
        Assert.AreEqual(6, node.Input.Count);
        Assert.AreEqual("", node.Input[3]);
        Assert.AreEqual("", node.Input[4]);
        CollectionAssert.AreEqual(new long[] { 2 }, lowBit.Graph.Initializer.Single(t => t.Name == node.Input[5]).Dims.ToArray(), "the bias, [N]");
        var scales = lowBit.Graph.Initializer.Single(t => t.Name == node.Input[2]);
        CollectionAssert.AreEqual(new[] { 0.5f, 0.5f }, OnnxTensorConversion.Cast<float>(scales.RawData.ToByteArray(), 2, scales));
    }

    [TestMethod]
    public void LayersMatMulNBitsCannotExpressStayDecodedAndCorrect()
    {
        // MatMul with a per-layer scale is rewritten (its [K, N] weight transposed); per-channel scales along K, a Gemm with
        // alpha 0.5 and a weight read twice are not, and the model still scores like the module.
        TorchSharp.torch.manual_seed(7);
        var model = OnnxTestHelpers.Model(new long[] { 24 }, (b, x) =>
        {
            string a = b.Node("MatMul", new[] { x, b.Initializer("w_matmul", TorchSharp.torch.randn(24, 16)) });
            string c = b.Node("MatMul", new[] { a, b.Initializer("w_per_k", TorchSharp.torch.randn(16, 16)) });
            string d = b.Node("Gemm", new[] { c, b.Initializer("w_alpha", TorchSharp.torch.randn(16, 16)) }, OnnxAttributes.Create("alpha", 0.5f), OnnxAttributes.Create("transB", 1L));
            string shared = b.Initializer("w_shared", TorchSharp.torch.randn(16, 16));
            return b.Add(b.Node("MatMul", new[] { d, shared }), b.Node("MatMul", new[] { c, shared }));
        });
        using var module = new OnnxGraphModule(model);
        var constrained = OnnxTestHelpers.RoundToLevels(module, new[] { "w_matmul", "w_alpha", "w_shared" }, WeightConstraint.Ternary)
            .Concat(OnnxTestHelpers.RoundToLevels(module, new[] { "w_per_k" }, WeightConstraint.Ternary, ScaleMode.PerOutputChannel)).ToList();
        Assert.AreEqual(16, constrained.Single(c => c.Initializer == "w_per_k").Scale.Length, "scales along dimension 0, which is K for a MatMul");
        var decoded = ScoringGraph.DecodeWithCastAndMul(QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Int4));
        var lowBit = MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBits, forCuda: false, out var layers);
        CollectionAssert.AreEqual(new[] { "w_matmul" }, layers.Select(l => l.Weight).ToArray());
        Assert.AreEqual((16L, 24L), (layers[0].N, layers[0].K));
        long[] shape = { 5, 24 };
        var input = OnnxTestHelpers.RandomInput(shape, 8);
        OnnxTestHelpers.AssertClose(OrtRunner.Run(lowBit, input, shape), OnnxTestHelpers.Forward(module, input, shape), 1e-5, "partly rewritten model versus the module");
    }

    [TestMethod]
    public void ALargeGemmScoresLikeTheDecodedModel()
    {
        // A 1000 x 1024 Gemm (K not a multiple of the block size) at batch 64 and batch 1.
        var model = CbpArchitecture.Mlp(new[] { 1024 }).Build(new long[] { 1000 }, 10, seed: 2);
        var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false);
        foreach (var (constraint, storage, bits) in new[] { (WeightConstraint.Ternary, WeightStorage.Int2, 4L), (WeightConstraint.TwoBitShift, WeightStorage.Int4, 4L) })
        {
            // A fresh module each time: rounding one already on ternary levels would leave the shift set three codes.
            using var module = new OnnxGraphModule(model);
            var decoded = ScoringGraph.DecodeWithCastAndMul(QuantizedOnnxExporter.Export(module, OnnxTestHelpers.RoundToLevels(module, names, constraint), storage));
            var lowBit = MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBits, forCuda: false, out var layers);
            Assert.IsTrue(layers.Any(l => l.K == 1000 && l.N == 1024 && l.Bits == bits));
            foreach (int batch in new[] { 64, 1 })
            {
                long[] shape = { batch, 1000 };
                var input = OnnxTestHelpers.RandomInput(shape, batch);
                OnnxTestHelpers.AssertClose(OrtRunner.Run(lowBit, input, shape), OrtRunner.Run(decoded, input, shape), 1e-5, $"{constraint} batch {batch}");
            }
        }
    }

    [TestMethod]
    public void TheCudaFormStoresTwoBitCodesAtFourBits()
    {
        var model = CbpArchitecture.Mlp(new[] { 16 }).Build(new long[] { 40 }, 3, seed: 5);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false);
        var decoded = ScoringGraph.DecodeWithCastAndMul(QuantizedOnnxExporter.Export(module, OnnxTestHelpers.RoundToLevels(module, names, WeightConstraint.Ternary), WeightStorage.Int2));
        MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBitsInt8Activations, forCuda: false, out var cpuLayers);
        var wide = MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBitsInt8Activations, forCuda: true, out var layers);
        Assert.IsTrue(cpuLayers.All(l => l.Bits == 2) && layers.All(l => l.Bits == 4), "2 bits on the CPU, 4 for CUDA");
        long[] shape = { 6, 40 };
        var input = OnnxTestHelpers.RandomInput(shape, 1);
        OnnxTestHelpers.AssertClose(OrtRunner.Run(wide, input, shape), OrtRunner.Run(decoded, input, shape), 5e-2, "ternary codes at 4 bits, int8 activations (CPU)");
        var bytes = OnnxModelFile.ToBytes(MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBits, forCuda: true, out _));
        if (!OnnxScoringSessionTests.CudaAvailable(bytes))
        {
            Assert.Inconclusive("No CUDA GPU usable by ONNX Runtime on this machine: the 4-bit form was checked on the CPU only.");
        }
        using var gpu = OnnxScoringSession.Create(bytes, gpuDeviceId: 0, fallbackToCpu: false);
        var actual = gpu.Score(input, 6);
        OnnxTestHelpers.AssertClose((actual.Outputs, new long[] { 6, 3 }), OrtRunner.Run(decoded, input, shape), 1e-4, "MatMulNBits on CUDA versus decoded float on the CPU");
    }

    [TestMethod]
    public void TheFittedTransformerRunsMatMulNBitsAndAReloadedModelRunsItToo()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ThreeClassRows.Make(240));
        CbpQuantizeOptions Options(WeightExecution execution) => new()
        {
            Architecture = CbpArchitecture.Mlp(new[] { 64, 64 }),
            KeepFirstAndLastLayersFloat = false,
            Constraint = WeightConstraint.Ternary,
            WeightStorage = WeightStorage.Int2,
            PretrainEpochs = 2,
            Epochs = 2,
            BatchSize = 32,
            TrainingDevice = CbpTrainingDevice.Cpu,
            WeightExecution = execution,
            Seed = 3,
        };
        using var decodedFit = ml.Transforms.CbpQuantize(Options(WeightExecution.DecodedFloat)).Fit(data);
        using var lowBitFit = ml.Transforms.CbpQuantize(Options(WeightExecution.MatMulNBits)).Fit(data);
        Assert.AreEqual(WeightExecution.DecodedFloat, decodedFit.WeightExecution);
        Assert.AreEqual(WeightExecution.MatMulNBits, lowBitFit.WeightExecution);
        Assert.AreEqual(3, OnnxModelFile.Parse(lowBitFit.BatchedScoringGraph).Graph.Node.Count(n => n.OpType == "MatMulNBits"), "all three layers");
        CollectionAssert.AreEqual(decodedFit.GetOnnxBytes(), lowBitFit.GetOnnxBytes(), "same training; SaveOnnx(path) writes the same file");

        var expected = Scores(ml, decodedFit.Transform(data));
        AssertNear(expected, Scores(ml, lowBitFit.Transform(data)), "batched MatMulNBits scoring");
        string zip = Path.Combine(Path.GetTempPath(), $"cbp-lowbit-{Guid.NewGuid():N}.zip");
        string onnx = Path.ChangeExtension(zip, ".onnx");
        try
        {
            ml.Model.Save(lowBitFit, data.Schema, zip);
            var plain = ml.Model.Load(zip, out _);
            AssertNear(expected, Scores(ml, plain.Transform(data)), "plain ML.NET reload of the zip");
            using (var batched = (CbpQuantizeTransformer)ml.Model.LoadWithBatchedScoring(zip, out _))
            {
                Assert.AreEqual(WeightExecution.MatMulNBits, batched.WeightExecution);
                AssertNear(expected, Scores(ml, batched.Transform(data)), "LoadWithBatchedScoring");
                // Its graph already holds MatMulNBits: that form can be written again, another cannot (and nothing is written).
                var undo = Assert.ThrowsExactly<InvalidOperationException>(() => batched.SaveOnnx(onnx, WeightExecution.DecodedFloat));
                StringAssert.Contains(undo.Message, "WeightExecution.MatMulNBits");
                Assert.IsFalse(File.Exists(onnx));
                batched.SaveOnnx(onnx, WeightExecution.MatMulNBits);
                Assert.AreEqual(3, OnnxModelFile.Parse(File.ReadAllBytes(onnx)).Graph.Node.Count(n => n.OpType == "MatMulNBits"));
                File.Delete(onnx);
            }
            (plain as IDisposable)?.Dispose();

            decodedFit.SaveOnnx(onnx, WeightExecution.MatMulNBits);
            var saved = OnnxModelFile.Parse(File.ReadAllBytes(onnx));
            Assert.AreEqual(3, saved.Graph.Node.Count(n => n.OpType == "MatMulNBits"));
            long[] shape = { 12, 6 };
            var input = OnnxTestHelpers.RandomInput(shape, 3);
            OnnxTestHelpers.AssertClose(OrtRunner.Run(saved, input, shape), OrtRunner.Run(OnnxModelFile.Parse(decodedFit.GetOnnxBytes()), input, shape), 1e-5, "SaveOnnx MatMulNBits versus SaveOnnx");
        }
        finally
        {
            File.Delete(zip);
            File.Delete(onnx);
        }
    }

    [TestMethod]
    public void Int8ActivationsAreMarkedAndStayCloseToExact()
    {
        var model = CbpArchitecture.Mlp(new[] { 256 }).Build(new long[] { 512 }, 10, seed: 7);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false);
        var decoded = ScoringGraph.DecodeWithCastAndMul(QuantizedOnnxExporter.Export(module, OnnxTestHelpers.RoundToLevels(module, names, WeightConstraint.TwoBitShift), WeightStorage.Int4));
        var int8 = MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBitsInt8Activations, forCuda: false, out _);
        Assert.AreEqual(WeightExecution.MatMulNBitsInt8Activations, MatMulNBitsGraph.FormOf(int8));
        Assert.AreEqual(WeightExecution.DecodedFloat, MatMulNBitsGraph.FormOf(decoded));
        Assert.IsTrue(int8.Graph.Node.Where(n => n.OpType == "MatMulNBits").All(n => OnnxAttributes.Int(n, "accuracy_level", 0) == 4));
        long[] shape = { 32, 512 };
        var input = OnnxTestHelpers.RandomInput(shape, 6);
        // int8 activations per block of 32: a few percent of the output scale at most.
        OnnxTestHelpers.AssertClose(OrtRunner.Run(int8, input, shape), OrtRunner.Run(decoded, input, shape), 5e-2, "int8 activations");
    }

    [TestMethod]
    public void TruncatedCodesAreRefusedNamingTheTensor()
    {
        var model = CbpArchitecture.Mlp(new[] { 16 }).Build(new long[] { 40 }, 3, seed: 5);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false);
        var decoded = ScoringGraph.DecodeWithCastAndMul(QuantizedOnnxExporter.Export(module, OnnxTestHelpers.RoundToLevels(module, names, WeightConstraint.Ternary), WeightStorage.Int4));
        var codes = decoded.Graph.Node.First(n => n.OpType == "Constant" && n.Attribute[0].T.DataType == OnnxTensorConversion.DataTypes.Int4).Attribute[0].T;
        codes.RawData = Google.Protobuf.ByteString.CopyFrom(codes.RawData.ToByteArray()[..(codes.RawData.Length / 2)]);
        var error = Assert.ThrowsExactly<InvalidDataException>(() => MatMulNBitsGraph.Rewrite(decoded, WeightExecution.MatMulNBits, forCuda: false, out _));
        StringAssert.Contains(error.Message, codes.Name);
    }

    [TestMethod]
    public void UndefinedFormsAreRefusedNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            WeightExecution = (WeightExecution)7,
            TrainingDevice = CbpTrainingDevice.Cpu,
            Progress = _ => Assert.Fail("refused before training, not after"),
        }).Fit(ml.Data.LoadFromEnumerable(ThreeClassRows.Make(10))));
        StringAssert.Contains(error.Message, "WeightExecution");
        var transformer = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            Architecture = CbpArchitecture.Mlp(new[] { 8 }),
            KeepFirstAndLastLayersFloat = false,
            PretrainEpochs = 0,
            Epochs = 1,
            CheckLabelOrder = false,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }).Fit(ml.Data.LoadFromEnumerable(ThreeClassRows.Make(60)));
        string path = Path.Combine(Path.GetTempPath(), $"cbp-lowbit-{Guid.NewGuid():N}.onnx");
        var save = Assert.ThrowsExactly<ArgumentException>(() => transformer.SaveOnnx(path, (WeightExecution)9));
        StringAssert.Contains(save.Message, "WeightExecution 9");
        Assert.IsFalse(File.Exists(path), "nothing written");
        transformer.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => transformer.SaveOnnx(path, WeightExecution.MatMulNBits));
        Assert.IsFalse(File.Exists(path));
    }

    private static float[][] Scores(MLContext ml, IDataView scored) =>
        scored.GetColumn<float[]>(scored.Schema["Score"]).ToArray();

    private static void AssertNear(float[][] expected, float[][] actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        double worst = expected.Zip(actual, (e, a) => e.Zip(a, (x, y) => Math.Abs(x - y)).Max()).Max();
        Assert.IsTrue(worst <= 1e-5, $"{what}: max score difference {worst:E2}");
    }
}
