using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Batched ONNX Runtime scoring of compact models, and the CUDA execution provider's fallback.</summary>
[TestClass]
public sealed class OnnxScoringSessionTests
{
    internal static byte[] CompactSmallCnn(out OnnxGraphModule module)
    {
        var model = CbpArchitecture.SmallCnn(32).Build(new long[] { 1, 28, 28 }, 10, seed: 4);
        module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model);
        var constrained = OnnxTestHelpers.RoundToLevels(module, names, WeightConstraint.Ternary);
        return OnnxModelFile.ToBytes(QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Int4));
    }

    /// <summary>Whether ONNX Runtime can run on a CUDA GPU here (false on machines without one, such as CI).</summary>
    internal static bool CudaAvailable(byte[] model)
    {
        try
        {
            using var session = OnnxScoringSession.Create(model, gpuDeviceId: 0, fallbackToCpu: false);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    [TestMethod]
    public void BatchedCpuScoringMatchesTheTorchSharpForwardPassForUnevenBatches()
    {
        var bytes = CompactSmallCnn(out var module);
        using var _ = module;
        long[] shape = { 7, 1, 28, 28 };
        var input = OnnxTestHelpers.RandomInput(shape, 8);
        var lines = new List<string>();
        using var session = OnnxScoringSession.Create(bytes, log: lines.Add);
        Assert.AreEqual("CPU", session.ExecutionProvider);
        StringAssert.Contains(lines.Single(), "CPU execution provider");
        CollectionAssert.AreEqual(new long[] { 1, 28, 28 }, session.InputRowShape);
        var (outputs, width) = session.Score(input, 7, batchSize: 3);
        Assert.AreEqual(10, width);
        OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(module, input, shape), (outputs, new long[] { 7, 10 }), 1e-5, "batched CPU scoring");
    }

    [TestMethod]
    public void RequestingAGpuWithoutOneFallsBackToTheCpuOrFailsClearly()
    {
        var bytes = CompactSmallCnn(out var module);
        module.Dispose();
        if (CudaAvailable(bytes))
        {
            Assert.Inconclusive("This machine has a CUDA GPU; the fallback path is exercised only where there is none.");
        }
        var lines = new List<string>();
        using (var session = OnnxScoringSession.Create(bytes, gpuDeviceId: 0, fallbackToCpu: true, log: lines.Add))
        {
            Assert.AreEqual("CPU", session.ExecutionProvider);
        }
        StringAssert.Contains(lines[0], "CUDA execution provider is unavailable for GPU 0");
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => OnnxScoringSession.Create(bytes, gpuDeviceId: 0, fallbackToCpu: false));
        StringAssert.Contains(e.Message, "FallbackToCpu");
    }

    [TestMethod]
    public void CudaScoringMatchesCpuScoring()
    {
        var bytes = CompactSmallCnn(out var module);
        module.Dispose();
        if (!CudaAvailable(bytes))
        {
            Assert.Inconclusive("No CUDA GPU usable by ONNX Runtime on this machine.");
        }
        long[] shape = { 64, 1, 28, 28 };
        var input = OnnxTestHelpers.RandomInput(shape, 9);
        using var cpu = OnnxScoringSession.Create(bytes);
        using var gpu = OnnxScoringSession.Create(bytes, gpuDeviceId: 0, fallbackToCpu: false);
        Assert.AreEqual("CUDA", gpu.ExecutionProvider);
        var expected = cpu.Score(input, 64);
        var actual = gpu.Score(input, 64);
        OnnxTestHelpers.AssertClose((actual.Outputs, new long[] { 64, 10 }), (expected.Outputs, new long[] { 64, 10 }), 1e-4, "CUDA versus CPU");
    }

    [TestMethod]
    public void MismatchedInputLengthIsRejectedWithTheExpectedSize()
    {
        var bytes = CompactSmallCnn(out var module);
        module.Dispose();
        using var session = OnnxScoringSession.Create(bytes);
        var e = Assert.ThrowsExactly<ArgumentException>(() => session.Score(new float[100], 2));
        StringAssert.Contains(e.Message, "need 1568 floats; got 100");
    }
}
