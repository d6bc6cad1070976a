using System;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Per-row scoring graphs saved by version 0.1 (before rows with non-finite features were masked) still turn into a
/// batched graph that scores like them: LoadWithBatchedScoring accepts models saved by earlier versions.
/// </summary>
[TestClass]
public sealed class ScoringGraphFormatTests
{
    /// <summary>Rewrites a per-row graph to version 0.1's form: no mask, the head writes Score and PredictedLabel directly.</summary>
    private static global::Onnx.ModelProto WithoutMask(global::Onnx.ModelProto perRow)
    {
        var old = perRow.Clone();
        var graph = old.Graph;
        foreach (var node in graph.Node.Where(n => n.Output.Any(o => o.StartsWith("cbp_nonfinite_", StringComparison.Ordinal)) || n.OpType is "Where" or "And" or "Not").ToList())
        {
            graph.Node.Remove(node);
        }
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Output.Count; i++)
            {
                node.Output[i] = node.Output[i] switch { "cbp_score_network" => "Score", "cbp_label_network" => "PredictedLabel", var o => o };
            }
        }
        foreach (var t in graph.Initializer.Where(t => t.Name is "cbp_score_missing" or "cbp_label_missing_index").ToList())
        {
            graph.Initializer.Remove(t);
        }
        Assert.AreEqual(0, graph.Node.Count(n => n.OpType is "Where" or "IsNaN" or "IsInf"), "the rewritten graph has no mask");
        return old;
    }

    [TestMethod]
    public void AnUnmaskedRegressionGraphBecomesABatchedGraphThatScoresLikeIt()
    {
        var network = CbpArchitecture.Mlp(new[] { 4 }, batchNorm: false).Build(new long[] { 3 }, 1);
        var perRow = ScoringGraph.PerRow(network, network.Graph.Input[0].Name, network.Graph.Output[0].Name, ScoringTask.Regression, 1, "Features", null);
        foreach (var (name, graph) in new[] { ("masked", perRow), ("version 0.1", WithoutMask(perRow)) })
        {
            var batched = ScoringGraph.ToBatched(graph);
            using var session = OnnxScoringSession.Create(OnnxModelFile.ToBytes(batched));
            var rows = new float[] { 1, 2, 3, -0.5f, 0.25f, 4 };
            var scores = (float[])session.ScoreBatch(rows, 2)["Score"];
            for (int r = 0; r < 2; r++)
            {
                var expected = OrtRunner.Run(graph, rows.Skip(3 * r).Take(3).ToArray(), new long[] { 3 });
                Assert.AreEqual(expected.Values[0], scores[r], $"{name}: row {r} batched equals per-row");
            }
        }
    }

    [TestMethod]
    public void AnUnmaskedMulticlassGraphKeepsItsLabelValuesAndBatches()
    {
        var network = CbpArchitecture.Mlp(new[] { 4 }, batchNorm: false).Build(new long[] { 3 }, 3);
        var values = ScoringGraph.LabelValues("labels", new[] { "cat", "dog", "bird" });
        var perRow = ScoringGraph.PerRow(network, network.Graph.Input[0].Name, network.Graph.Output[0].Name, ScoringTask.Multiclass, 3, "Features", values);
        CollectionAssert.AreEqual(new[] { "cat", "dog", "bird" }, ((ReadOnlyMemory<char>[])ScoringGraph.ReadLabelValues(perRow)!).Select(m => m.ToString()).ToArray(), "masked: the missing value stored after the classes is not a class");
        var old = perRow.Clone();
        // Version 0.1 stored the classes' values only and looked PredictedLabel up by the arg-max class.
        var labelValues = old.Graph.Initializer.Single(t => t.Name == "cbp_label_values");
        labelValues.StringData.RemoveAt(3);
        labelValues.Dims[0] = 3;
        foreach (var gather in old.Graph.Node.Where(n => n.OpType == "Gather"))
        {
            gather.Input[1] = ScoringGraph.ClassOutput;
        }
        old = WithoutMask(old);
        CollectionAssert.AreEqual(new[] { "cat", "dog", "bird" }, ((ReadOnlyMemory<char>[])ScoringGraph.ReadLabelValues(old)!).Select(m => m.ToString()).ToArray(), "version 0.1");
        using var session = OnnxScoringSession.Create(OnnxModelFile.ToBytes(ScoringGraph.ToBatched(old)));
        var rows = new float[] { 1, 2, 3 };
        var scores = (float[])session.ScoreBatch(rows, 1)["Score"];
        var expected = OrtRunner.Run(old, rows, new long[] { 3 });
        CollectionAssert.AreEqual(expected.Values, scores, "batched Score equals the per-row graph's");
    }
}
