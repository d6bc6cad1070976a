using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>The file SaveOnnx writes is read by ML.NET's own ApplyOnnxModel (not only by ONNX Runtime) and stays compact.</summary>
[TestClass]
public sealed class CompactFileTests
{
    private sealed class Row
    {
        [VectorType(6)]
        public float[] Features { get; set; } = Array.Empty<float>();

        [KeyType(3)]
        public uint Label { get; set; }
    }

    [TestMethod]
    [DataRow(WeightStorage.Int4)]
    [DataRow(WeightStorage.Int2)]
    [DataRow(WeightStorage.Int8)]
    [DataRow(WeightStorage.OneBit)]
    public void ApplyOnnxModelReadsTheSavedFileAndScoresLikeTheTransformer(WeightStorage storage)
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 300).Select(i => new Row { Features = Enumerable.Range(0, 6).Select(j => (i * 7 + j * 3) % 11 / 11f).ToArray(), Label = (uint)(i % 3) }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var transformer = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            Architecture = CbpArchitecture.Mlp(new[] { 64, 64 }),
            // One bit holds two levels: binary; the other storages are checked with ternary levels.
            Constraint = storage == WeightStorage.OneBit ? WeightConstraint.Binary : WeightConstraint.Ternary,
            WeightStorage = storage,
            PretrainEpochs = 1,
            Epochs = 1,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }).Fit(data);
        string path = Path.Combine(Path.GetTempPath(), $"cbp-compact-{Guid.NewGuid():N}.onnx");
        try
        {
            transformer.SaveOnnx(path);
            var saved = OnnxModelFile.Load(path);
            string input = saved.Graph.Input[0].Name, output = saved.Graph.Output[0].Name;
            Assert.AreEqual("input", input);

            // What a user writes: the feature column copied to the model's input name, the batch dimension fixed to 1.
            var onnx = ml.Transforms.CopyColumns(input, "Features")
                .Append(ml.Transforms.ApplyOnnxModel(new[] { output }, new[] { input }, path, new Dictionary<string, int[]> { [input] = new[] { 1, 6 } }, gpuDeviceId: null, fallbackToCpu: false, recursionLimit: 100))
                .Fit(data);
            var logits = onnx.Transform(data).GetColumn<float[]>(output).ToArray();
            (onnx as IDisposable)?.Dispose();
            var scores = transformer.Transform(data).GetColumn<float[]>("Score").ToArray();
            for (int r = 0; r < rows.Count; r++)
            {
                double max = logits[r].Max();
                var exp = logits[r].Select(v => Math.Exp(v - max)).ToArray();
                double sum = exp.Sum();
                for (int k = 0; k < 3; k++)
                {
                    double expected = exp[k] / sum;
                    Assert.AreEqual(expected, scores[r][k], Math.Max(1e-6 * Math.Abs(expected), 1e-7), $"{storage}: row {r}, class {k}");
                }
            }

            // Loaded back as a network, the decoded weight is fixed: its scale does not become a free parameter.
            using (var module = new OnnxGraphModule(saved))
            {
                var scaleNames = saved.Graph.Node.Where(n => n.OpType == "Mul" && n.Input[0].EndsWith("_cbp_float", StringComparison.Ordinal)).Select(n => module.MemberName(n.Input[1])).ToHashSet();
                Assert.AreEqual(1, scaleNames.Count);
                Assert.IsFalse(module.named_parameters().Any(p => scaleNames.Contains(p.name)), "the scale of stored codes is not trained");
            }

            // Compact: the constrained layer's codes take 1/8 (Int4), 1/16 (Int2), 1/32 (OneBit) or 1/4 (Int8) of its float bytes, plus its scale.
            var report = transformer.TrainingReport!;
            Assert.AreEqual(new FileInfo(path).Length, report.CompactModelBytes, "the report gives the size of the file SaveOnnx writes");
            long floatBytes = report.WeightLayers.Single(l => l.State == CbpWeightLayerState.Constrained).Weights * 4;
            var codes = saved.Graph.Node.Where(n => n.OpType == "Constant").Select(n => n.Attribute.Single(a => a.Name == "value").T).Single(t => t.Dims.Count == 2);
            double ratio = codes.RawData.Length / (double)floatBytes;
            double limit = storage switch { WeightStorage.Int4 => 1 / 6.0, WeightStorage.Int2 => 1 / 12.0, WeightStorage.OneBit => 1 / 32.0, _ => 1 / 3.0 };
            Assert.IsTrue(ratio <= limit, $"{storage}: codes are {ratio:F3} of the float bytes");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
