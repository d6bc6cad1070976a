using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>
/// The state of a Fit at an epoch boundary (<see cref="CbpQuantizeOptions.CheckpointPath"/>): the network's parameters and
/// buffers, the engine's state, the phase and epoch, the early-stopping memory, the reports so far and the global random
/// state, so that a Fit resumed from it ends with the model an uninterrupted Fit gives.
/// </summary>
/// <remarks>
/// File format (version 1), little-endian: the 8 ASCII bytes <c>CBPCKPT1</c>; an int32 length and that many bytes of UTF-8
/// JSON (<see cref="Header"/>: fingerprint, phase, epoch, counters, reports, and the name, type and shape of each tensor);
/// then each tensor's raw bytes in the header's order. Written to a temporary file and moved over the old one, so an
/// interruption leaves the previous checkpoint whole.
/// </remarks>
internal sealed class TrainingCheckpoint : IDisposable
{
    private const string Magic = "CBPCKPT1";

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>The phase the checkpoint was taken in.</summary>
    public const string PretrainingPhase = "pretraining", CbpPhase = "cbp";

    /// <summary>Creates a checkpoint from its parts (tensors are owned by it).</summary>
    public TrainingCheckpoint(Header header, Dictionary<string, Tensor> tensors)
    {
        Meta = header;
        Tensors = tensors;
    }

    /// <summary>Everything but the tensors.</summary>
    public Header Meta { get; }

    /// <summary>The tensors by name: <c>module.*</c> (the network's state), <c>best.*</c> (early stopping's best network), <c>trainer.*</c>, <c>rng</c>.</summary>
    public Dictionary<string, Tensor> Tensors { get; }

    /// <summary>The JSON part of a checkpoint.</summary>
    /// <param name="Fingerprint">What the Fit was (options, data, initial network), so a checkpoint is only resumed by the same Fit.</param>
    /// <param name="Phase"><see cref="PretrainingPhase"/> or <see cref="CbpPhase"/>.</param>
    /// <param name="Epoch">Epochs of the phase completed.</param>
    /// <param name="Pretraining">Reports of the pre-training epochs so far.</param>
    /// <param name="Cbp">Reports of the CBP schedule epochs so far.</param>
    /// <param name="BestLoss">Early stopping: the best validation loss (null before any).</param>
    /// <param name="SinceBest">Early stopping: epochs since the best.</param>
    /// <param name="FloatAccuracy">Validation accuracy after pre-training (CBP phase).</param>
    /// <param name="HistogramBefore">The latent histogram taken when CBP started (CBP phase).</param>
    /// <param name="AdamSteps">The engine's multiplier steps, by constrained parameter.</param>
    /// <param name="Schedule">The engine's schedule.</param>
    /// <param name="Pass">The engine's passes opened.</param>
    /// <param name="StreamBatches">The engine's batches used from the open pass, or -1.</param>
    /// <param name="TensorInfo">Name, type and shape of each tensor, in file order.</param>
    /// <param name="SizePlan">MaxModelBytes (CBP phase): each candidate layer's choice, an index into <c>SizeBudget.Choices</c>; null without a budget.</param>
    internal sealed record Header(
        string Fingerprint, string Phase, int Epoch, List<EpochReport> Pretraining, List<EpochReport> Cbp, double? BestLoss, int SinceBest,
        double? FloatAccuracy, long[]? HistogramBefore, Dictionary<string, int> AdamSteps, ScheduleState? Schedule, int Pass, int StreamBatches,
        List<TensorEntry> TensorInfo, Dictionary<string, int>? SizePlan = null);

    /// <summary>One tensor's place in the file.</summary>
    /// <param name="Name">Its name.</param>
    /// <param name="Type">float32, int64 or uint8.</param>
    /// <param name="Shape">Its shape.</param>
    internal sealed record TensorEntry(string Name, string Type, long[] Shape);

    /// <summary>The engine's state held in this checkpoint.</summary>
    public TrainerState TrainerState() => new(
        Tensors.Where(kv => kv.Key.StartsWith("trainer.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["trainer.".Length..], kv => kv.Value, StringComparer.Ordinal),
        Meta.AdamSteps, Meta.Schedule!, Meta.Cbp.Count > 0 || Meta.Phase == CbpPhase ? Meta.Cbp : Meta.Pretraining, Meta.Pass, Meta.StreamBatches);

    /// <summary>The tensors under a prefix, with the prefix removed (for <c>load_state_dict</c>).</summary>
    /// <param name="prefix">"module." or "best.".</param>
    public Dictionary<string, Tensor>? Group(string prefix)
    {
        var group = Tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal);
        return group.Count == 0 ? null : group;
    }

    /// <summary>Takes a checkpoint: copies of the module's state, the engine's state and the random state.</summary>
    public static TrainingCheckpoint Capture(Header header, OnnxGraphModule module, TrainerState? trainer, Dictionary<string, Tensor>? best)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (NewDisposeScope())
        using (no_grad())
        {
            foreach (var (name, value) in module.state_dict())
            {
                tensors["module." + name] = value.detach().cpu().clone().DetachFromDisposeScope();
            }
            foreach (var (name, value) in best ?? new Dictionary<string, Tensor>())
            {
                tensors["best." + name] = value.detach().cpu().clone().DetachFromDisposeScope();
            }
            foreach (var (name, value) in trainer?.Tensors ?? new Dictionary<string, Tensor>())
            {
                tensors["trainer." + name] = value.clone().DetachFromDisposeScope();
            }
            tensors["rng"] = get_rng_state().DetachFromDisposeScope();
        }
        var meta = header with
        {
            AdamSteps = trainer?.AdamSteps.ToDictionary(kv => kv.Key, kv => kv.Value) ?? new Dictionary<string, int>(),
            Schedule = trainer?.Schedule,
            Pass = trainer?.Pass ?? 0,
            StreamBatches = trainer?.StreamBatches ?? -1,
        };
        return new TrainingCheckpoint(meta, tensors);
    }

    /// <summary>Writes the checkpoint atomically (temporary file, then move).</summary>
    /// <param name="path">The checkpoint file.</param>
    public void Save(string path)
    {
        var entries = Tensors.Select(kv => new TensorEntry(kv.Key, TypeName(kv.Value.dtype), kv.Value.shape)).ToList();
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(Meta with { TensorInfo = entries }, Json);
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.cbp-tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            using (var writer = new BinaryWriter(file))
            {
                writer.Write(Encoding.ASCII.GetBytes(Magic));
                writer.Write(json.Length);
                writer.Write(json);
                foreach (var entry in entries)
                {
                    using var contiguous = Tensors[entry.Name].contiguous();
                    writer.Write(contiguous.bytes);
                }
                writer.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Reads a checkpoint and checks that it belongs to this Fit.</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="fingerprint">This Fit's fingerprint.</param>
    /// <exception cref="InvalidDataException">The file is not a checkpoint, is damaged, or was written by a different Fit (options, data or network).</exception>
    public static TrainingCheckpoint Load(string path, string fingerprint)
    {
        using var file = File.OpenRead(path);
        using var reader = new BinaryReader(file);
        if (file.Length < 12 || Encoding.ASCII.GetString(reader.ReadBytes(8)) != Magic)
        {
            throw new InvalidDataException($"'{path}' (CheckpointPath) is not a Microsoft.ML.Cbp checkpoint; delete it or choose another path.");
        }
        int length = reader.ReadInt32();
        var header = length > 0 && length <= file.Length - 12
            ? JsonSerializer.Deserialize<Header>(reader.ReadBytes(length), Json)
            : null;
        if (header is null)
        {
            throw new InvalidDataException($"The checkpoint '{path}' is damaged (its header is unreadable); delete it to start over.");
        }
        if (header.Fingerprint != fingerprint)
        {
            throw new InvalidDataException(
                $"The checkpoint '{path}' was written by a Fit with other options, data or network, so it cannot be resumed here; delete it to start over, or set CheckpointPath to another file.");
        }
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in header.TensorInfo)
            {
                long count = entry.Shape.Aggregate(1L, (a, b) => a * b);
                int size = entry.Type switch { "float32" => 4, "int64" => 8, "uint8" => 1, _ => throw new InvalidDataException($"The checkpoint '{path}' holds a tensor of unknown type {entry.Type}.") };
                byte[] bytes = reader.ReadBytes(checked((int)(count * size)));
                if (bytes.Length != count * size)
                {
                    throw new InvalidDataException($"The checkpoint '{path}' is truncated (tensor '{entry.Name}'); delete it to start over.");
                }
                tensors[entry.Name] = (entry.Type switch
                {
                    "float32" => tensor(MemoryMarshal.Cast<byte, float>(bytes).ToArray(), entry.Shape),
                    "int64" => tensor(MemoryMarshal.Cast<byte, long>(bytes).ToArray(), entry.Shape),
                    _ => tensor(bytes, entry.Shape),
                }).DetachFromDisposeScope();
            }
        }
        catch
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
            throw;
        }
        return new TrainingCheckpoint(header, tensors);
    }

    /// <summary>Restores the global random state saved with the checkpoint.</summary>
    public void RestoreRandomState() => set_rng_state(Tensors["rng"]);

    /// <summary>Releases the tensors.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors.Values)
        {
            t.Dispose();
        }
    }

    /// <summary>What makes two Fits the same for resuming: the options that shape training, the data's size and the initial network (with data-parallel training the ranks and the device this rank trains on are part of it, since ranks must compute
    /// alike; alone they are not, so a single process's fingerprint is what it was).</summary>
    /// <param name="options">The Fit's options.</param>
    /// <param name="seed">Its seed.</param>
    /// <param name="rowShape">How the network sees a row.</param>
    /// <param name="dataRows">The training data's labelled rows before training (every rank's shard together under data-parallel training).</param>
    /// <param name="train">The training data (its label kind and classes).</param>
    /// <param name="validation">ValidationData, or null.</param>
    /// <param name="initialNetwork">The network before training, as ONNX bytes.</param>
    /// <param name="ranks">Ranks of a data-parallel Fit (1 alone).</param>
    /// <param name="device">The device type a data-parallel rank trains on.</param>
    /// <param name="viewRows">A data-parallel rank's count of the view's rows (every shard's), which must be the same on every rank (as must the hash of its labels in order, <see cref="TrainingData.LabelHash"/>).</param>
    public static string Fingerprint(CbpQuantizeOptions options, long seed, long[] rowShape, long dataRows, TrainingData train, TrainingData? validation, byte[] initialNetwork,
        int ranks = 1, string? device = null, long viewRows = 0)
    {
        string text = string.Join("|", new object?[]
        {
            FormatVersion, options.Constraint, seed, string.Join("x", rowShape), options.FeatureColumnName, options.LabelColumnName, options.InputNodeName,
            options.OutputNodeName, options.TrainingDevice, get_num_threads(), dataRows, train.LabelKind, train.ClassCount, validation?.ExpectedRows,
            options.BatchSize, options.Epochs, EngineOptions.PretrainEpochs(options), options.ScheduleEpochsPerPass, options.LearningRate, options.PretrainLearningRate,
            options.MultiplierLearningRate, options.MultiplierUpdatePeriod, options.FinalAnnealFraction, options.ScaleMode, options.KeepFirstAndLastLayersFloat,
            string.Join(",", options.FloatLayers), options.Augmentation?.Name, options.DataCacheBudgetBytes, options.ShufflePoolRows,
            options.MaxModelBytes, options.MaxModelBytes is null ? null : string.Join(";", options.MixedConstraints.Select(c => string.Join(",", c.Levels.Select(l => l.ToString("R", System.Globalization.CultureInfo.InvariantCulture))))),
            Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(initialNetwork)),
        }.Concat(ranks > 1 ? new object?[] { ranks, device, "row shards", viewRows, train.LabelHash } : Array.Empty<object?>()).Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)));
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>The checkpoint format's version (see the remarks of this class).</summary>
    // 2: weights behind weight-only ops (Transpose -> MatMul) became parameters, which shifts the saved parameter order.
    // 3: the size budget (MaxModelBytes, MixedConstraints) is part of the fingerprint, and its plan is saved (SizePlan).
    private const int FormatVersion = 3;

    private static string TypeName(ScalarType type) => type switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Int64 => "int64",
        ScalarType.Byte => "uint8",
        _ => throw new NotSupportedException($"Checkpoints hold float32, int64 and uint8 tensors; got {type}."),
    };
}
