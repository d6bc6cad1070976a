using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// A real third-party model: the pretrained ResNet-18 shipped in Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1
/// (IR 3, opset 8, input fixed at batch 1). It loads, runs in TorchSharp like ONNX Runtime, has its constrained
/// layers found, and exports in float and compact forms that ONNX Runtime scores in batches.
/// </summary>
[TestClass]
public sealed class ResNet18ImportTests
{
    private static ModelProto? _model;
    private static OnnxGraphModule? _module;

    [ClassInitialize]
    public static void Load(TestContext context)
    {
        _model = OnnxModelFile.Load(OnnxTestHelpers.ResNet18Path);
        _module = new OnnxGraphModule(_model);
    }

    [ClassCleanup]
    public static void Release() => _module?.Dispose();

    [TestMethod]
    public void LoadsAsTheOldModelItIsAndRoundTripsUnchanged()
    {
        Assert.AreEqual(3L, _model!.IrVersion);
        Assert.AreEqual(8, OnnxModelFile.DefaultOpset(_model));
        Assert.AreEqual(1L, _module!.FixedBatch);
        var again = OnnxModelFile.Parse(OnnxModelFile.ToBytes(_model));
        Assert.AreEqual(_model, again, "a load-save round trip keeps every field");
    }

    [TestMethod]
    public void RunsInTorchSharpLikeOnnxRuntime()
    {
        long[] shape = { 1, 3, 224, 224 };
        var input = OnnxTestHelpers.RandomInput(shape, 7);
        OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(_module!, input, shape), OrtRunner.Run(_model!, input, shape), 1e-4, "ResNet-18");
    }

    [TestMethod]
    public void FindsEveryConvolutionButTheFirstAndLast()
    {
        // Counted independently: Conv nodes whose weight is an initializer.
        var initializers = _model!.Graph.Initializer.Select(t => t.Name).ToHashSet();
        int convolutions = _model.Graph.Node.Count(n => n.OpType == "Conv" && initializers.Contains(n.Input[1]));
        var candidates = ConstrainedInitializerSelection.Candidates(_model);
        Assert.AreEqual(convolutions, candidates.Count);
        var selected = ConstrainedInitializerSelection.Select(_model);
        Assert.AreEqual(convolutions - 2, selected.Count);
        Assert.IsFalse(selected.Contains(candidates[0]) || selected.Contains(candidates[^1]));
    }

    [TestMethod]
    public void ExportsInFloatAndInt4ThatOnnxRuntimeScoresInBatches()
    {
        using var module = new OnnxGraphModule(_model!);
        var names = ConstrainedInitializerSelection.Select(_model!);
        var constrained = OnnxTestHelpers.RoundToLevels(module, names, WeightConstraint.TwoBitShift);
        long[] shape = { 2, 3, 224, 224 };
        var input = OnnxTestHelpers.RandomInput(shape, 9);
        var expected = OnnxTestHelpers.Forward(module, input, shape);
        foreach (var storage in new[] { WeightStorage.Float32, WeightStorage.Int4 })
        {
            var exported = QuantizedOnnxExporter.Export(module, constrained, storage);
            Assert.AreEqual(storage == WeightStorage.Int4 ? 21 : 8, OnnxModelFile.DefaultOpset(exported));
            OnnxTestHelpers.AssertClose(expected, OrtRunner.Run(exported, input, shape), 1e-4, $"ResNet-18 two-bit shift, {storage}");
        }
    }
}
