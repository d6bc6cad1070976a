using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Pipeline;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Pins every ML.NET internal the library reaches by reflection (<see cref="MLNetInternals"/>): if an ML.NET upgrade
/// renames one, these fail, instead of a user's seed silently becoming 1 or GPU scoring silently becoming CPU.
/// </summary>
[TestClass]
public sealed class MLNetInternalsTests
{
    [TestMethod]
    public void TheEnvironmentBehindEachCatalogCarriesTheContextsSettings()
    {
        var ml = new MLContext(seed: 42) { GpuDeviceId = 3, FallbackToCpu = false };
        foreach (object catalog in new object[] { ml.Transforms, ml.Model })
        {
            var environment = MLNetInternals.Environment(catalog);
            Assert.AreEqual(42, MLNetInternals.Seed(environment), catalog.GetType().Name);
            Assert.AreEqual(3, MLNetInternals.GpuDeviceId(environment), catalog.GetType().Name);
            Assert.IsFalse(MLNetInternals.FallbackToCpu(environment), catalog.GetType().Name);
        }
        var plain = MLNetInternals.Environment(new MLContext().Transforms);
        Assert.IsNull(MLNetInternals.Seed(plain), "a context without a seed has none");
        Assert.IsNull(MLNetInternals.GpuDeviceId(plain));
        Assert.IsFalse(MLNetInternals.FallbackToCpu(plain), "ML.NET's default (MLContext.FallbackToCpu is false unless set)");
    }

    [TestMethod]
    public void AMissingMemberIsAClearErrorNotASilentDefault()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => MLNetInternals.Environment(new object()));
        StringAssert.Contains(e.Message, "Object._env");
        StringAssert.Contains(e.Message, MLNetInternals.BuiltAgainst);
    }

    [TestMethod]
    public void ASavedChainKeepsItsOnnxModelWhereTheZipReaderLooks()
    {
        // A chain inside a chain (as a user's pipeline saves CbpQuantize): the reader must find the per-row graph of the
        // inner chain at its position, "1" (second step of the outer chain).
        var ml = new MLContext(seed: 1);
        var network = CbpArchitecture.Mlp(new[] { 4 }, batchNorm: false).Build(new long[] { 3 }, 2);
        var perRow = ScoringGraph.PerRow(network, network.Graph.Input[0].Name, network.Graph.Output[0].Name, ScoringTask.Binary, 2, "Features", null);
        var inner = ScoringOutput.PerRowChain(perRow, "Features", null, null, true, out string modelFile);
        var data = ml.Data.LoadFromEnumerable(new[] { new Row { Features = new float[] { 1, 2, 3 } } });
        var outer = new TransformerChain<ITransformer>(ml.Transforms.CopyColumns("Copy", "Features").Fit(data), inner);
        string path = Path.Combine(Path.GetTempPath(), $"cbp-internals-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(outer, data.Schema, path);
            var models = MLNetInternals.OnnxModels(path);
            Assert.AreEqual(1, models.Count, "one OnnxTransformer in the zip");
            Assert.AreEqual("1", models[0].ChainPosition);
            Assert.IsTrue(ScoringGraph.IsPerRow(OnnxModelFile.Parse(models[0].OnnxBytes)), "the bytes are the per-row scoring graph, whole");
        }
        finally
        {
            File.Delete(path);
            File.Delete(modelFile);
        }
    }

    private sealed class Row
    {
        [VectorType(3)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }
}
