using System;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>
/// The reading policy for one IDataView of a Fit (the training data, or ValidationData): what it holds, and whether
/// its batches come from a tensor cache (small data: read once, random-permutation batches) or stream from a cursor per
/// pass with background prefetch (data above <see cref="CbpQuantizeOptions.DataCacheBudgetBytes"/>). Streamed data is
/// counted first in a cheap pass over the label column, so the schedule's epoch arithmetic uses the labelled rows.
/// </summary>
internal sealed class TrainingData : IDisposable
{
    private readonly IDataView _data;
    private readonly CbpQuantizeOptions _options;
    private readonly string _role;
    private StreamingBatchSource? _stream;
    private InMemoryBatchSource? _memory;
    private long? _cachedRows;
    private long _cachedSkipped;
    private long _cachedNonFinite;

    private TrainingData(IDataView data, CbpQuantizeOptions options, string role, int width, LabelKind kind, int classes, long rows, bool counted, RowShard shard)
    {
        _data = data;
        Shard = shard;
        _options = options;
        _role = role;
        FeatureWidth = width;
        LabelKind = kind;
        ClassCount = classes;
        ExpectedRows = rows;
        Counted = counted;
    }

    /// <summary>The rows this process reads: every row, or its shard under data-parallel training.</summary>
    public RowShard Shard { get; }

    /// <summary>Floats per row.</summary>
    public int FeatureWidth { get; }

    /// <summary>The label's kind.</summary>
    public LabelKind LabelKind { get; }

    /// <summary>Classes (key count, 2 for Boolean, 1 for regression).</summary>
    public int ClassCount { get; }

    /// <summary>Rows per pass (of <see cref="Shard"/>) before training: the view's row count, or a counting pass's labelled rows.</summary>
    public long ExpectedRows { get; }

    /// <summary>The view's rows, labelled or not, of every shard (from the counting pass, or the view's own count).</summary>
    public long ViewRows { get; private init; }

    /// <summary>A hash of the view's labels in its cursor's order, when a counting pass read them (always for a shard); else null.</summary>
    public ulong? LabelHash { get; private init; }

    /// <summary>The view's labelled rows, of every shard, before training (<see cref="ExpectedRows"/> when one process reads every row).</summary>
    public long DataRows { get; private init; }

    /// <summary>Whether <see cref="ExpectedRows"/> came from a counting pass (the view did not know its row count).</summary>
    public bool Counted { get; }

    /// <summary>
    /// Whether the batches will stream (the float size of the largest shard, the whole data for one process, exceeds the
    /// cache budget) rather than come from the tensor cache: the same answer on every rank, so that every rank reads its
    /// shard in the same order.
    /// </summary>
    public bool Streams => Bytes((DataRows + Shard.Count - 1) / Shard.Count) > _options.DataCacheBudgetBytes;

    /// <summary>Labelled rows per pass (exact once the cache is read or a streamed pass has ended; <see cref="ExpectedRows"/> before).</summary>
    public long Rows => _cachedRows ?? (_stream?.LabelledRowsPerPass is long labelled ? labelled - _stream.NonFiniteRowsPerPass : ExpectedRows);

    /// <summary>Rows per pass left out for NaN or infinite features (with <see cref="CbpQuantizeOptions.SkipRowsWithNonFiniteFeatures"/>).</summary>
    public long NonFiniteRows => _cachedRows is not null ? _cachedNonFinite : _stream?.NonFiniteRowsPerPass ?? 0;

    /// <summary>Rows skipped per pass for a missing label (known once read).</summary>
    public long SkippedRows => _cachedRows is not null ? _cachedSkipped : _stream?.SkippedRowsPerPass ?? 0;

    /// <summary>Seconds the trainer waited for streamed batches (0 for cached data).</summary>
    public double WaitSeconds => _stream?.WaitSeconds ?? 0;

    /// <summary>One line for the training report: which path ran and with what.</summary>
    public string Description => (Shard.IsAll ? "" : $"shard {Shard.Index} of {Shard.Count} ({Shard}), ") + (_cachedRows is long cached
        ? $"cached in memory ({cached:N0} rows, {Bytes(cached) / 1e6:N1} MB, random permutation per pass)"
        : _stream is not null
            ? $"streamed from the IDataView ({(Counted ? "rows counted in a first pass; " : "")}{_stream.PrefetchBatches} batches prefetched; shuffled by {_stream.ShuffleMethod})"
            : "not read yet");

    /// <summary>Checks the columns and learns the row count (from the view, or from a cheap pass over the label column).</summary>
    /// <param name="data">The data.</param>
    /// <param name="options">The estimator's options.</param>
    /// <param name="role">"training data" or "ValidationData", for messages.</param>
    /// <param name="shard">The rows this process reads (every row when null); a shard's rows are always counted.</param>
    public static TrainingData Open(IDataView data, CbpQuantizeOptions options, string role, RowShard? shard = null)
    {
        shard ??= RowShard.All;
        var (width, kind, classes) = InputColumns.Inspect(data.Schema, options.FeatureColumnName, options.LabelColumnName);
        long? known = data.GetRowCount();
        // Data that will stream is counted (labelled rows, label column only), so the schedule and progress use the rows
        // training really sees; data that will be cached is counted exactly while it is read.
        bool counted = known is null || !shard.IsAll || (long)width * sizeof(float) * known > options.DataCacheBudgetBytes;
        var count = counted ? DataViewTensorReader.CountRows(data, options.FeatureColumnName, options.LabelColumnName, options.CancellationToken, shard) : default;
        long rows = counted ? count.Labelled : known!.Value;
        if (!shard.IsAll && count.ViewLabelled < shard.Count)
        {
            // The same answer on every rank: each read every label.
            throw new ArgumentException(
                $"The {role} has {count.ViewLabelled} row(s) with a label in '{options.LabelColumnName}', fewer than the {shard.Count} ranks that would divide it; " +
                "run fewer ranks, or set DataParallel = false.", role == "training data" ? "input" : nameof(options.ValidationData));
        }
        if (rows == 0)
        {
            throw new ArgumentException($"The {role} has no rows with a label in '{options.LabelColumnName}'" + (shard.IsAll ? "." : $" in shard {shard.Index} of {shard.Count} ({shard})."),
                role == "training data" ? "input" : nameof(options.ValidationData));
        }
        return new TrainingData(data, options, role, width, kind!.Value, classes, rows, counted, shard)
        {
            ViewRows = counted ? count.ViewRows : known!.Value,
            DataRows = counted ? count.ViewLabelled : known!.Value,
            LabelHash = counted ? count.LabelHash : null,
        };
    }

    /// <summary>The batches: cached when the data's float size fits the cache budget, streamed otherwise.</summary>
    /// <param name="rowShape">How the network sees one feature vector.</param>
    /// <param name="batchSize">Rows per batch.</param>
    /// <param name="shuffle">Shuffle every pass (training) or not (validation).</param>
    /// <param name="seed">Seed of the shuffles, common to every rank (a shard's own shuffles use <see cref="RowShard.ShuffleSeed"/>).</param>
    /// <param name="device">Where batches go.</param>
    public IBatchSource Batches(long[] rowShape, int batchSize, bool shuffle, long seed, Device device)
    {
        if (_memory is not null || _stream is not null)
        {
            throw new InvalidOperationException($"The {_role}'s batches were already made.");
        }
        if (!Streams)
        {
            using var cached = DataViewTensorReader.Read(_data, _options.FeatureColumnName, _options.LabelColumnName, rowShape, ExpectedRows,
                _options.SkipRowsWithNonFiniteFeatures, _options.CancellationToken, Shard);
            // The source aliases the tensors on the CPU and copies them to a GPU; either way the reader's handles can go.
            _memory = new InMemoryBatchSource(cached.Features, cached.Labels, batchSize, shuffle, Shard.ShuffleSeed(seed), device);
            _cachedRows = cached.Rows;
            _cachedSkipped = cached.SkippedRows;
            _cachedNonFinite = cached.NonFiniteRows;
            return _memory;
        }
        int poolRows = _options.ShufflePoolRows ?? DefaultShufflePoolRows(FeatureWidth);
        if ((long)poolRows * FeatureWidth > Array.MaxLength)
        {
            throw new ArgumentException(
                $"ShufflePoolRows {poolRows:N0} rows of {FeatureWidth:N0} floats exceed the largest .NET array; use at most {Array.MaxLength / FeatureWidth:N0} rows.",
                nameof(CbpQuantizeOptions.ShufflePoolRows));
        }
        _stream = new StreamingBatchSource(_data, _options.FeatureColumnName, _options.LabelColumnName, LabelKind, rowShape, batchSize, shuffle, seed,
            poolRows, _options.PrefetchBatches, Counted ? ExpectedRows : null, device, _options.CancellationToken, _options.SkipRowsWithNonFiniteFeatures, Shard);
        return _stream;
    }

    /// <summary>
    /// About <paramref name="count"/> labelled rows spread across the whole view (all when fewer; every shard's rows, so
    /// data-parallel ranks sample alike), with finite features, as class indices, in batches.
    /// </summary>
    /// <param name="dataRows">The whole view's labelled rows (under data-parallel training, every shard's together), which sets the stride.</param>
    /// <param name="count">Rows wanted.</param>
    /// <param name="batchRows">Rows per batch.</param>
    /// <param name="onBatch">Receives each batch's features, class indices and row count (arrays reused).</param>
    /// <returns>The rows sampled.</returns>
    public long SampleClasses(long dataRows, int count, int batchRows, Action<float[], long[], int> onBatch) =>
        DataViewSampler.SampleClasses(_data, _options.FeatureColumnName, _options.LabelColumnName, dataRows, count, batchRows, onBatch, _options.CancellationToken);

    /// <summary>The default shuffle pool: 1,000 rows (ML.NET's ShuffleRows default), fewer when that would exceed 256 MiB, at least 2.</summary>
    /// <param name="width">Floats per row.</param>
    public static int DefaultShufflePoolRows(int width) => (int)Math.Clamp((256L << 20) / (4L * width), 2, 1_000);

    /// <summary>Releases the cache.</summary>
    public void Dispose()
    {
        _memory?.Dispose();
    }

    private long Bytes(long rows) => rows * FeatureWidth * sizeof(float);
}
