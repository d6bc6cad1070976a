using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>
/// A Fit's checkpoints (<see cref="CbpQuantizeOptions.CheckpointPath"/>): the checkpoint found when the Fit starts, if any
/// (to resume from), one written after every epoch, and the file removed once the Fit has produced its model.
/// </summary>
internal sealed class CheckpointSession : IDisposable
{
    private readonly string? _path;
    private readonly string _fingerprint;

    private readonly bool _write;

    private CheckpointSession(string? path, string fingerprint, TrainingCheckpoint? resume, bool write)
    {
        _write = write;
        _path = path;
        _fingerprint = fingerprint;
        Resume = resume;
    }

    /// <summary>The checkpoint to resume from, or null for a fresh start.</summary>
    public TrainingCheckpoint? Resume { get; }

    /// <summary>Opens the session: reads an existing checkpoint of this Fit (and refuses one of another Fit).</summary>
    /// <param name="path">The option's path, or null for no checkpoints.</param>
    /// <param name="fingerprint">This Fit's fingerprint (<see cref="TrainingCheckpoint.Fingerprint"/>).</param>
    /// <param name="write">Write checkpoints (false on the ranks but 0 of data-parallel training, which only read one to resume).</param>
    public static CheckpointSession Open(string? path, string fingerprint, bool write = true) =>
        new(path, fingerprint, path is not null && File.Exists(path) ? TrainingCheckpoint.Load(path, fingerprint) : null, write);

    /// <summary>Writes the state after a pre-training epoch.</summary>
    public void SavePretraining(int epoch, OnnxGraphModule module, CbpTrainer trainer, List<EpochReport> reports, Dictionary<string, Tensor>? best, double bestLoss, int sinceBest)
    {
        if (_path is null || !_write)
        {
            return;
        }
        using var state = trainer.CaptureState();
        var header = Header(TrainingCheckpoint.PretrainingPhase, epoch, reports, new List<EpochReport>()) with
        {
            BestLoss = double.IsFinite(bestLoss) ? bestLoss : null,
            SinceBest = sinceBest,
        };
        using var checkpoint = TrainingCheckpoint.Capture(header, module, state, best);
        checkpoint.Save(_path);
    }

    /// <summary>Writes the state after a CBP schedule epoch, with MaxModelBytes's plan (each candidate layer's index into <c>SizeBudget.Choices</c>, or null), which a resumed Fit must keep.</summary>
    public void SaveCbp(int epoch, OnnxGraphModule module, CbpTrainer trainer, List<EpochReport> pretraining, List<EpochReport> cbp, double? floatAccuracy, long[] histogramBefore,
        Dictionary<string, int>? sizePlan)
    {
        if (_path is null || !_write)
        {
            return;
        }
        using var state = trainer.CaptureState();
        var header = Header(TrainingCheckpoint.CbpPhase, epoch, pretraining, cbp) with { FloatAccuracy = floatAccuracy, HistogramBefore = histogramBefore, SizePlan = sizePlan };
        using var checkpoint = TrainingCheckpoint.Capture(header, module, state, best: null);
        checkpoint.Save(_path);
    }

    /// <summary>The Fit produced its transformer: the checkpoint is no longer needed, and a later Fit starts afresh.</summary>
    /// <param name="path">The option's path, or null.</param>
    public static void Complete(string? path)
    {
        if (path is not null)
        {
            File.Delete(path);
        }
    }

    /// <summary>Releases the checkpoint read at the start.</summary>
    public void Dispose() => Resume?.Dispose();

    private TrainingCheckpoint.Header Header(string phase, int epoch, List<EpochReport> pretraining, List<EpochReport> cbp) =>
        new(_fingerprint, phase, epoch, pretraining, cbp, null, 0, null, null, new Dictionary<string, int>(), null, 0, -1, new List<TrainingCheckpoint.TensorEntry>());
}
