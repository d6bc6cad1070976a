using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Weights behind weight-only ops (PyTorch's bias-free <c>nn.Linear</c> exports as <c>Transpose(weight) -&gt; MatMul</c>)
/// are trained and constrained like weights read directly; the exported chain keeps the Transpose.
/// </summary>
[TestClass]
public sealed class WeightChainTests
{
    /// <summary>x [N, 6] -> MatMul(Transpose(w1 [8, 6])) -> Relu -> MatMul(Transpose(Reshape(w2 [64]))...) as PyTorch writes Linear layers.</summary>
    private static global::Onnx.ModelProto TransposedLinears() => OnnxTestHelpers.Model(new long[] { 6 }, (b, x) =>
    {
        random.manual_seed(5);
        string Linear(string input, long inFeatures, long outFeatures, string name)
        {
            string w = b.Initializer(name, randn(outFeatures, inFeatures) * (1.0 / Math.Sqrt(inFeatures)));
            return b.Node("MatMul", new[] { input, b.Node("Transpose", new[] { w }, OnnxAttributes.Create("perm", new long[] { 1, 0 })) });
        }
        var h = b.Relu(Linear(x, 6, 16, "w1"));
        // A second weight-only op in the chain: Identity then Transpose.
        string w2 = b.Initializer("w2", randn(16, 16) * 0.25);
        h = b.Relu(b.Node("MatMul", new[] { h, b.Node("Transpose", new[] { b.Node("Identity", new[] { w2 }) }, OnnxAttributes.Create("perm", new long[] { 1, 0 })) }));
        return Linear(h, 16, 3, "w3");
    });

    [TestMethod]
    public void WeightsBehindTransposeAreCandidatesAndParameters()
    {
        var model = TransposedLinears();
        CollectionAssert.AreEqual(new[] { "w1", "w2", "w3" }, ConstrainedInitializerSelection.Candidates(model).ToArray());
        CollectionAssert.AreEqual(new[] { "w2" }, ConstrainedInitializerSelection.Select(model).ToArray(), "first and last stay float by default");
        using var module = new OnnxGraphModule(model, inputShape: new long[] { 6 });
        var parameters = module.named_parameters().Select(p => p.name).ToHashSet();
        foreach (string w in new[] { "w1", "w2", "w3" })
        {
            Assert.IsTrue(parameters.Contains(module.MemberName(w)), $"{w} trains (it was a frozen buffer behind the Transpose)");
        }
    }

    [TestMethod]
    public void ATransposedHiddenLayerIsConstrainedAndExportedAsCodes()
    {
        var ml = new MLContext(seed: 1);
        var rows = ThreeClassRows.Make(600);
        using var transformer = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            PretrainedModelBytes = OnnxModelFile.ToBytes(TransposedLinears()),
            Constraint = WeightConstraint.Ternary,
            PretrainEpochs = 3,
            // Random weights stand in for a pretrained model: on this one-hot data they may separate the classes in
            // another order, which the label-order guard would rightly refuse; this test is about the weights.
            CheckLabelOrder = false,
            Epochs = 4,
            BatchSize = 32,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }).Fit(ml.Data.LoadFromEnumerable(rows));
        CollectionAssert.AreEqual(new[] { "w2" }, transformer.TrainingReport!.ConstrainedLayers.ToArray());
        CollectionAssert.AreEqual(
            new[] { ("w1", 96L, CbpWeightLayerState.FloatFirstOrLast), ("w2", 256L, CbpWeightLayerState.Constrained), ("w3", 48L, CbpWeightLayerState.FloatFirstOrLast) },
            transformer.TrainingReport.WeightLayers.Select(l => (l.Name, l.Weights, l.State)).ToArray(), "every weight layer is listed with its state");

        // The model summary's rows, by hand: w2 is 16 x 16 ternary weights at 4 bits (128 bytes of codes) plus a 4-byte scale;
        // the float layers cost 4 bytes a weight.
        var w2 = transformer.TrainingReport.WeightLayers[1];
        Assert.AreEqual(("MatMul", "16,16", "Ternary", 4, 1024L, 132L), (w2.Op, string.Join(",", w2.Shape), w2.Precision, w2.BitsPerWeight, w2.FloatBytes, w2.CompactBytes));
        Assert.IsTrue(w2.NormalizedCfs is >= 0 && w2.FractionOnLevel is >= 0 and <= 1 && w2.Scale > 0, $"CBP's end state: {w2}");
        var w1 = transformer.TrainingReport.WeightLayers[0];
        Assert.AreEqual(("float", 32, 384L, 384L, (double?)null), (w1.Precision, w1.BitsPerWeight, w1.FloatBytes, w1.CompactBytes, w1.Scale));
        string summary = transformer.TrainingReport.ToString();
        StringAssert.Contains(summary, "| w2 | MatMul | 16x16 | 256 | Ternary | 4 | 1,024 | 132 |");
        StringAssert.Contains(summary, "| w1 | MatMul | 16x6 | 96 | float (first or last layer) | 32 | 384 | 384 |");
        // Totals: 400 weights, 384 + 132 + 192 compact bytes = 708, 8 x 708 / 400 = 14.16 bits a weight.
        StringAssert.Contains(summary, "| total (3 layers) | | | 400 | 1 constrained | 14.16 | 1,600 | 708 |");

        var compact = OnnxModelFile.Parse(transformer.GetOnnxBytes());
        CompactCodes.Decode(compact, "w2");
        Assert.IsFalse(compact.Graph.Initializer.Any(t => t.Name == "w2"), "w2 is stored as codes and decoded under its own name: no float copy remains");
        Assert.AreEqual(3, compact.Graph.Node.Count(n => n.OpType == "Transpose"), "the chains are kept");

        // The stored codes are ternary levels, and the model still predicts the (one-hot) classes.
        var values = CompactCodes.Int4(compact, "w2");
        Assert.IsTrue(values.All(v => v is -1 or 0 or 1), $"ternary codes: {string.Join(",", values.Distinct())}");
        var predicted = transformer.Transform(ml.Data.LoadFromEnumerable(rows.Take(30))).GetColumn<VBuffer<uint>>("PredictedLabel").Select(v => v.GetItemOrDefault(0)).ToArray();
        Assert.IsTrue(predicted.Select((p, i) => p == rows[i].Label + 1).Count(c => c) >= 27, "the trained network predicts the classes");
    }

    [TestMethod]
    public void TheReportSaysWhyEachFloatLayerIsFloat()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 200).Select(i => new ThreeClassRows { Features = Enumerable.Range(0, 6).Select(j => (i * 7 + j) % 5 / 5f).ToArray(), Label = (uint)(i % 3) }).ToList();
        using var transformer = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            PretrainedModelBytes = OnnxModelFile.ToBytes(TransposedLinears()),
            KeepFirstAndLastLayersFloat = false,
            FloatLayers = { "w2" },
            Epochs = 1,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }).Fit(ml.Data.LoadFromEnumerable(rows));
        CollectionAssert.AreEqual(
            new[] { CbpWeightLayerState.Constrained, CbpWeightLayerState.FloatByOption, CbpWeightLayerState.Constrained },
            transformer.TrainingReport!.WeightLayers.Select(l => l.State).ToArray());
    }
}
