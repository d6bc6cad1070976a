using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Interrupted and resumed Fits: a Fit cancelled after an epoch and started again with the same options ends with exactly
/// the model (byte for byte) of a Fit that was never interrupted, in either phase and on either data path.
/// </summary>
[TestClass]
public sealed class CheckpointTests
{
    private static (MLContext Ml, IDataView Train, IDataView Validation) Fashion()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = CbpQuantizeFashionMnistTests.Data(ml);
        var map = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        return (ml, map.Transform(ml.Data.TakeRows(train, 600)), map.Transform(ml.Data.TakeRows(test, 200)));
    }

    private static CbpQuantizeOptions Options(string? checkpoint, IDataView validation, long cacheBudget, CancellationToken token = default, long? maxModelBytes = null) => new()
    {
        // With a size budget every layer is a candidate, so the plan has three layers to choose for.
        MaxModelBytes = maxModelBytes,
        KeepFirstAndLastLayersFloat = maxModelBytes is null,
        // Dropout draws from the global random state, which a resumed Fit must restore to give the same model.
        Architecture = CbpArchitecture.Mlp(new[] { 32, 32 }, dropout: 0.2f),
        PretrainEpochs = 3,
        Epochs = 2,
        Seed = 11,
        Constraint = WeightConstraint.Ternary,
        TrainingDevice = CbpTrainingDevice.Cpu,
        ValidationData = validation,
        DataCacheBudgetBytes = cacheBudget,
        CheckpointPath = checkpoint,
        CancellationToken = token,
    };

    /// <summary>Fits once, cancelling right after the given epoch of the given phase has been reported, then fits again to the end.</summary>
    private static byte[] InterruptedThenResumed(CbpPhase phase, int epoch, long cacheBudget, out int resumedEpochs, long? maxModelBytes = null,
        Action<string, Func<CbpQuantizeOptions>>? inspectCheckpoint = null)
    {
        var (ml, train, validation) = Fashion();
        string path = Path.Combine(Path.GetTempPath(), $"cbp-checkpoint-{Guid.NewGuid():N}.ckpt");
        try
        {
            using var cancel = new CancellationTokenSource();
            var first = Options(path, validation, cacheBudget, cancel.Token, maxModelBytes);
            first.Progress = r =>
            {
                if (r.Phase == phase && r.Epoch is not null && r.EpochNumber == epoch)
                {
                    cancel.Cancel();
                }
            };
            Assert.ThrowsExactly<OperationCanceledException>(() => ml.Transforms.CbpQuantize(first).Fit(train));
            Assert.IsTrue(File.Exists(path), "the interrupted Fit left its checkpoint");
            inspectCheckpoint?.Invoke(path, () => Options(path, validation, cacheBudget, maxModelBytes: maxModelBytes));

            var second = Options(path, validation, cacheBudget, maxModelBytes: maxModelBytes);
            int trained = 0;
            second.Progress = r => trained += r.Epoch is not null ? 1 : 0;
            using var resumed = ml.Transforms.CbpQuantize(second).Fit(train);
            resumedEpochs = trained;
            Assert.IsFalse(File.Exists(path), "a completed Fit removes its checkpoint");
            Assert.AreEqual(8, resumed.TrainingReport!.Cbp.Count, "the report covers every schedule epoch, before and after the interruption");
            return resumed.GetOnnxBytes();
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] Uninterrupted(long cacheBudget, long? maxModelBytes = null)
    {
        var (ml, train, validation) = Fashion();
        using var model = ml.Transforms.CbpQuantize(Options(null, validation, cacheBudget, maxModelBytes: maxModelBytes)).Fit(train);
        return model.GetOnnxBytes();
    }

    [TestMethod]
    public void AFitUnderASizeBudgetInterruptedDuringCbpResumesToTheSamePlanAndModel()
    {
        // After 3 schedule epochs CBP has moved the weights: a plan measured again from them could differ; the checkpoint's is kept.
        var resumed = InterruptedThenResumed(CbpPhase.Cbp, 3, cacheBudget: 2L << 30, out int epochs, maxModelBytes: 30_000, inspectCheckpoint: (path, options) =>
        {
            // The checkpoint holds the plan: a choice (index into MixedConstraints, then float) for each of the three layers ...
            var (header, rest) = ReadHeader(path);
            var plan = header["SizePlan"]!.AsObject();
            Assert.AreEqual(3, plan.Count);
            Assert.IsTrue(plan.All(p => (int)p.Value! is >= 0 and <= 3));
            // ... and resuming reads it: without it, or with a choice that does not exist, the resume is refused rather than
            // measuring a plan again or training to garbage.
            string stripped = path + ".stripped";
            var (ml, train, _) = Fashion();
            try
            {
                foreach (var (tamper, expected) in new (Action, string)[]
                {
                    (() => header["SizePlan"] = new System.Text.Json.Nodes.JsonObject(plan.Select(p => KeyValuePair.Create(p.Key, (System.Text.Json.Nodes.JsonNode?)99))), "no valid choice"),
                    (() => header.Remove("SizePlan"), "size plan"),
                })
                {
                    tamper();
                    WriteHeader(stripped, header, rest);
                    var copy = options();
                    copy.CheckpointPath = stripped;
                    var error = Assert.ThrowsExactly<InvalidDataException>(() => ml.Transforms.CbpQuantize(copy).Fit(train));
                    StringAssert.Contains(error.Message, expected);
                }
            }
            finally
            {
                File.Delete(stripped);
            }
        });
        Assert.AreEqual(5, epochs);
        var uninterrupted = Uninterrupted(2L << 30, maxModelBytes: 30_000);
        CollectionAssert.AreEqual(uninterrupted, resumed);
        Assert.IsTrue(resumed.Length <= 30_000, $"{resumed.Length:N0} bytes: the file fits the budget");
    }

    /// <summary>A checkpoint's JSON header (after the 8-byte magic and an int32 length) and the bytes after it.</summary>
    private static (System.Text.Json.Nodes.JsonObject Header, byte[] Tensors) ReadHeader(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int length = BitConverter.ToInt32(bytes, 8);
        var header = System.Text.Json.Nodes.JsonNode.Parse(bytes.AsSpan(12, length))!.AsObject();
        return (header, bytes[(12 + length)..]);
    }

    private static void WriteHeader(string path, System.Text.Json.Nodes.JsonObject header, byte[] rest)
    {
        var json = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString());
        File.WriteAllBytes(path, System.Text.Encoding.ASCII.GetBytes("CBPCKPT1").Concat(BitConverter.GetBytes(json.Length)).Concat(json).Concat(rest).ToArray());
    }

    [TestMethod]
    public void AFitInterruptedDuringCbpResumesToTheSameModel()
    {
        // Schedule epoch 3 of 4 per pass: the resumed Fit re-enters the data three quarters through a pass.
        var resumed = InterruptedThenResumed(CbpPhase.Cbp, 3, cacheBudget: 2L << 30, out int epochs);
        Assert.AreEqual(5, epochs, "only the 5 schedule epochs after the checkpoint ran again");
        CollectionAssert.AreEqual(Uninterrupted(2L << 30), resumed);
    }

    [TestMethod]
    public void AFitInterruptedDuringPretrainingResumesToTheSameModel()
    {
        var resumed = InterruptedThenResumed(CbpPhase.Pretraining, 1, cacheBudget: 2L << 30, out int epochs);
        Assert.AreEqual(2 + 8, epochs, "2 pre-training epochs and the 8 CBP schedule epochs");
        CollectionAssert.AreEqual(Uninterrupted(2L << 30), resumed);
    }

    [TestMethod]
    public void AStreamedFitInterruptedDuringCbpResumesToTheSameModel()
    {
        var resumed = InterruptedThenResumed(CbpPhase.Cbp, 2, cacheBudget: 0, out _);
        CollectionAssert.AreEqual(Uninterrupted(0), resumed);
    }

    [TestMethod]
    public void ACheckpointOfAnotherFitOrAnotherFileIsRefused()
    {
        var (ml, train, validation) = Fashion();
        string path = Path.Combine(Path.GetTempPath(), $"cbp-checkpoint-{Guid.NewGuid():N}.ckpt");
        try
        {
            using var cancel = new CancellationTokenSource();
            var first = Options(path, validation, 2L << 30, cancel.Token);
            first.Progress = r =>
            {
                if (r.Epoch is not null)
                {
                    cancel.Cancel();
                }
            };
            Assert.ThrowsExactly<OperationCanceledException>(() => ml.Transforms.CbpQuantize(first).Fit(train));
            var other = Options(path, validation, 2L << 30);
            other.Epochs = 3;
            var e = Assert.ThrowsExactly<InvalidDataException>(() => ml.Transforms.CbpQuantize(other).Fit(train));
            StringAssert.Contains(e.Message, "other options, data or network");
            StringAssert.Contains(e.Message, path);

            File.WriteAllText(path, "not a checkpoint at all");
            e = Assert.ThrowsExactly<InvalidDataException>(() => ml.Transforms.CbpQuantize(Options(path, validation, 2L << 30)).Fit(train));
            StringAssert.Contains(e.Message, "is not a Microsoft.ML.Cbp checkpoint");
            var folder = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(Options(Path.GetTempPath(), validation, 2L << 30)));
            Assert.AreEqual("CheckpointPath", folder.ParamName);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.AreEqual(0, Directory.GetFiles(Path.GetTempPath(), "*.cbp-tmp").Count(f => f.Contains("cbp-checkpoint", StringComparison.Ordinal)), "no temporary file left behind");
    }
}
