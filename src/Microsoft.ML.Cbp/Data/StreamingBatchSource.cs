using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.ML.Cbp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Data;

/// <summary>
/// Mini-batches read from an <see cref="IDataView"/> cursor, one cursor per pass, never the whole data in memory: a
/// background producer reads and converts the next batches (running the view's transforms, image decoding included)
/// into a bounded queue while the trainer works on the current one. Memory is bounded by (batch size x (prefetch depth
/// + 2) + shuffle pool) rows, whatever the number of rows.
/// </summary>
/// <remarks>
/// <para>Shuffling, with a fixed seed giving the same order: a view that can shuffle itself (<c>CanShuffle</c>, for
/// example a cached or in-memory view) is asked for a cursor with <c>Random(seed + pass)</c>; any other view goes through a
/// shuffle pool of <see cref="ShufflePoolRows"/> rows, as ML.NET's <c>ShuffleRows</c> and tf.data do: a row leaves the pool at
/// a random position and the next row takes its place, so rows move at most about a pool's length from where the source
/// had them.</para>
/// <para>Data-parallel training: a source given a <see cref="RowShard"/> reads every row's label and only its shard's
/// features: its labelled rows of the view's shuffled order (the same order on every shard, from the common seed) for a
/// view that shuffles itself, else of the view's own order, shuffled through the pool.</para>
/// <para>Errors: an exception in the source surfaces in the trainer as <see cref="InvalidOperationException"/> naming the row
/// (0-based position in the pass's cursor: the source's order, or the view's own shuffled order) and wrapping the original; a pass that yields another number of labelled rows than
/// the first, or a view that cannot be read again, fails with a message that says so. Cancellation stops the producer
/// and the consumer between rows.</para>
/// </remarks>
internal sealed class StreamingBatchSource : IBatchSource
{
    private readonly IDataView _data;
    private readonly DataViewSchema.Column _featureColumn;
    private readonly DataViewSchema.Column _labelColumn;
    private readonly LabelKind _kind;
    private readonly long[] _rowShape;
    private readonly int _width;
    private readonly Device? _device;
    private readonly CancellationToken _cancellationToken;
    private readonly bool _skipNonFinite;
    private readonly RowShard _shard;
    // Written by a pass's reader thread, read by the trainer's: -1 until known.
    private long _labelledRowsPerPass;
    // Reused by every pass (passes run one after another: a pass's reader has ended before the next starts).
    private readonly ConcurrentBag<Batch> _free = new();
    private ShufflePool? _pool;

    /// <summary>Creates a source; nothing is read until a pass starts.</summary>
    /// <param name="data">The data (its columns checked by <see cref="InputColumns"/>).</param>
    /// <param name="featureColumn">The feature column.</param>
    /// <param name="labelColumn">The label column.</param>
    /// <param name="kind">The label's kind.</param>
    /// <param name="rowShape">How the network sees one feature vector.</param>
    /// <param name="batchSize">Rows per batch; the last batch of a pass may be smaller.</param>
    /// <param name="shuffle">Shuffle every pass (training) or keep the source's order (validation).</param>
    /// <param name="seed">Seed of the shuffles (pass k uses seed + k), common to every shard: a shard's pool shuffles with <see cref="RowShard.ShuffleSeed"/> of it.</param>
    /// <param name="shufflePoolRows">Rows in the shuffle pool for views that cannot shuffle themselves.</param>
    /// <param name="prefetchBatches">Batches the producer may read ahead.</param>
    /// <param name="labelledRowsPerPass">Labelled rows a pass must yield, when a first counting pass already knows it.</param>
    /// <param name="device">Where batches are produced; null for the CPU.</param>
    /// <param name="cancellationToken">Stops both sides between rows.</param>
    /// <param name="skipNonFinite">Leave out rows with NaN or infinite features (counted) instead of failing at the first.</param>
    /// <param name="shard">The rows this source reads (every row when null); the view is then read in its own order and shuffled through the pool.</param>
    public StreamingBatchSource(IDataView data, string featureColumn, string labelColumn, LabelKind kind, long[] rowShape, int batchSize, bool shuffle,
        long seed, int shufflePoolRows, int prefetchBatches, long? labelledRowsPerPass, Device? device, CancellationToken cancellationToken, bool skipNonFinite = false,
        RowShard? shard = null)
    {
        _skipNonFinite = skipNonFinite;
        _shard = shard ?? RowShard.All;
        _data = data ?? throw new ArgumentNullException(nameof(data));
        _featureColumn = data.Schema[featureColumn];
        _labelColumn = data.Schema[labelColumn];
        _kind = kind;
        _rowShape = rowShape;
        _width = checked((int)rowShape.Aggregate(1L, (a, b) => a * b));
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(prefetchBatches, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(shufflePoolRows, 2);
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        ShufflePoolRows = shufflePoolRows;
        PrefetchBatches = prefetchBatches;
        _labelledRowsPerPass = labelledRowsPerPass ?? -1;
        _device = device;
        _cancellationToken = cancellationToken;
    }

    /// <summary>Rows per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether every pass is shuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>The shuffle seed.</summary>
    public long Seed { get; }

    /// <summary>Rows in the shuffle pool (views that cannot shuffle themselves).</summary>
    public int ShufflePoolRows { get; }

    /// <summary>Batches the producer reads ahead.</summary>
    public int PrefetchBatches { get; }

    /// <summary>How a training pass is shuffled: by the view itself, through the shuffle pool, or not at all.</summary>
    public string ShuffleMethod => !Shuffle ? "none"
        : ViewShuffles ? (_shard.IsAll ? "the view's own shuffling" : "the view's own shuffling, the same on every shard, each taking its labelled rows of it")
        : $"a shuffle pool of {ShufflePoolRows:N0} rows";

    /// <summary>
    /// Whether the view shuffles itself (when it can). Every shard asks for the same shuffled order (the common seed), and
    /// a shard's rows are its labelled rows of that order (<see cref="RowShard"/>): the shards are disjoint, hold as many
    /// rows every pass, and their rows change every pass.
    /// </summary>
    private bool ViewShuffles => Shuffle && _data.CanShuffle;

    /// <summary>Labelled rows in a pass: known once a pass has ended (or given by a counting pass), else null.</summary>
    public long? LabelledRowsPerPass => Volatile.Read(ref _labelledRowsPerPass) is long rows and >= 0 ? rows : null;

    /// <summary>Rows skipped for a missing label in the last finished pass.</summary>
    public long SkippedRowsPerPass { get; private set; }

    /// <summary>Rows left out for NaN or infinite features in the last finished pass (when asked to skip them).</summary>
    public long NonFiniteRowsPerPass { get; private set; }

    /// <summary>Seconds the trainer spent waiting for the producer, over all passes so far.</summary>
    public double WaitSeconds { get; private set; }

    /// <inheritdoc />
    public IEnumerable<(Tensor Features, Tensor Labels)> Pass(int pass)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
        var queue = new BlockingCollection<Batch>(PrefetchBatches);
        var free = _free;
        var producer = Task.Factory.StartNew(() => Produce(pass, queue, free, stop.Token), stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            var clock = new System.Diagnostics.Stopwatch();
            while (true)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                clock.Restart();
                bool taken = queue.TryTake(out var batch, Timeout.Infinite, stop.Token);
                WaitSeconds += clock.Elapsed.TotalSeconds;
                if (!taken || batch is null)
                {
                    // The producer finished (or failed): surface its error, then check the pass's row count.
                    producer.GetAwaiter().GetResult();
                    break;
                }
                // The buffers are viewed in place and copied once into native tensors, so they can go back to the free list
                // at once (no managed copy per batch: memory stays flat however many batches a pass has).
                Tensor features, labels;
                using (var sharedFeatures = from_array(batch.Features))
                using (var sharedLabels = batch.Classes is not null ? from_array(batch.Classes) : from_array(batch.Targets!))
                {
                    using var shaped = sharedFeatures.view(new long[] { BatchSize }.Concat(_rowShape).ToArray());
                    features = shaped.narrow(0, 0, batch.Count).clone();
                    labels = sharedLabels.narrow(0, 0, batch.Count).clone();
                }
                free.Add(batch);
                yield return _device is null || _device.type == DeviceType.CPU ? (features, labels) : (features.to(_device), labels.to(_device));
            }
        }
        finally
        {
            // The trainer stopped early, failed or was cancelled: stop the producer and let it dispose its cursor.
            stop.Cancel();
            try
            {
                producer.Wait();
            }
            catch (AggregateException)
            {
            }
            // Batches still queued go back to the free list for the next pass.
            while (queue.TryTake(out var left))
            {
                free.Add(left);
            }
            queue.Dispose();
        }
    }

    private void Produce(int pass, BlockingCollection<Batch> queue, ConcurrentBag<Batch> free, CancellationToken stop)
    {
        long row = -1;
        long labelled = 0, skipped = 0, nonFinite = 0, labelledIndex = 0;
        try
        {
            DataViewRowCursor cursor;
            try
            {
                cursor = ViewShuffles
                    ? _data.GetRowCursor(new[] { _featureColumn, _labelColumn }, new Random(unchecked((int)(Seed + pass))))
                    : _data.GetRowCursor(new[] { _featureColumn, _labelColumn });
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new InvalidOperationException(
                    $"The data could not be read for pass {pass + 1} ({e.GetType().Name}: {e.Message}); training reads the IDataView once per pass, so it must be re-readable " +
                    "(cache it with mlContext.Data.Cache, or save and load it).", e);
            }
            using (cursor)
            {
                var reader = new LabelledRowReader(cursor, _featureColumn, _labelColumn, _kind);
                var pool = Shuffle && !ViewShuffles ? Pool(pass) : null;
                Batch? batch = null;
                void Emit(ReadOnlySpan<float> features, long classIndex, float target)
                {
                    batch ??= Rent(free);
                    features.CopyTo(batch.Features.AsSpan(batch.Count * _width, _width));
                    if (batch.Classes is not null)
                    {
                        batch.Classes[batch.Count] = classIndex;
                    }
                    else
                    {
                        batch.Targets![batch.Count] = target;
                    }
                    if (++batch.Count == BatchSize)
                    {
                        queue.Add(batch, stop);
                        batch = null;
                    }
                }
                var rowBuffer = new float[_width];
                while (true)
                {
                    stop.ThrowIfCancellationRequested();
                    bool more;
                    try
                    {
                        more = cursor.MoveNext();
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        throw RowError(row + 1, pass, e);
                    }
                    if (!more)
                    {
                        break;
                    }
                    row++;
                    try
                    {
                        if (!reader.ReadLabel())
                        {
                            skipped += _shard.CountsUnlabelled(row) ? 1 : 0;
                            continue;
                        }
                        if (!_shard.Contains(labelledIndex++))
                        {
                            continue;
                        }
                        reader.ReadFeatures(rowBuffer);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        throw RowError(row, pass, e);
                    }
                    if (LabelledRowReader.FirstNonFinite(rowBuffer) is int slot and >= 0)
                    {
                        if (!_skipNonFinite)
                        {
                            throw LabelledRowReader.NonFiniteFeatures(_featureColumn.Name, $"row {row} of pass {pass + 1} (reading stops at the first)", row, slot, rowBuffer[slot]);
                        }
                        nonFinite++;
                        continue;
                    }
                    labelled++;
                    if (pool is null)
                    {
                        Emit(rowBuffer, reader.ClassIndex, reader.Target);
                    }
                    else if (pool.Add(rowBuffer, reader.ClassIndex, reader.Target) is int leaving)
                    {
                        Emit(pool.Row(leaving), pool.ClassIndex(leaving), pool.Target(leaving));
                        pool.Replace(leaving, rowBuffer, reader.ClassIndex, reader.Target);
                    }
                }
                if (pool is not null)
                {
                    foreach (int i in pool.RemainingInRandomOrder())
                    {
                        Emit(pool.Row(i), pool.ClassIndex(i), pool.Target(i));
                    }
                }
                if (batch is not null)
                {
                    queue.Add(batch, stop);
                }
            }
            if (labelled == 0)
            {
                throw new InvalidOperationException($"Pass {pass + 1} over the data yielded no row with a label and finite features ({nonFinite:N0} rows had NaN or infinite features).");
            }
            // Rows with a label, whether or not their features were finite: what a counting pass over the labels counts.
            labelled += nonFinite;
            if (LabelledRowsPerPass is long expected && expected != labelled)
            {
                throw new InvalidOperationException(
                    $"Pass {pass + 1} over the data yielded {labelled:N0} labelled rows, but the first pass yielded {expected:N0}; training needs a data view that returns the same rows every time it is read.");
            }
            SkippedRowsPerPass = skipped;
            NonFiniteRowsPerPass = nonFinite;
            Volatile.Write(ref _labelledRowsPerPass, labelled);
        }
        finally
        {
            queue.CompleteAdding();
        }
    }

    /// <summary>The shuffle pool for a pass: one buffer for every pass, sized to the rows a pass holds when that is known and smaller.</summary>
    private ShufflePool Pool(int pass)
    {
        int capacity = (int)Math.Min(ShufflePoolRows, Math.Max(2, LabelledRowsPerPass ?? _data.GetRowCount() ?? ShufflePoolRows));
        var random = new Random(unchecked((int)(_shard.ShuffleSeed(Seed) + pass)));
        if (_pool is null || _pool.Capacity != capacity)
        {
            _pool = new ShufflePool(capacity, _width, random);
        }
        else
        {
            _pool.Reset(random);
        }
        return _pool;
    }

    private static InvalidOperationException RowError(long row, int pass, Exception e) =>
        new($"Reading row {row} of the data (0-based, pass {pass + 1}) failed: {e.Message}", e);

    private Batch Rent(ConcurrentBag<Batch> free)
    {
        if (free.TryTake(out var batch))
        {
            batch.Count = 0;
            return batch;
        }
        return new Batch(BatchSize, _width, _kind);
    }

    /// <summary>A batch as the producer fills it: row-major features and one label per row.</summary>
    private sealed class Batch(int batchSize, int width, LabelKind kind)
    {
        public float[] Features { get; } = new float[(long)batchSize * width];

        public long[]? Classes { get; } = kind == LabelKind.Single ? null : new long[batchSize];

        public float[]? Targets { get; } = kind == LabelKind.Single ? new float[batchSize] : null;

        public int Count { get; set; }
    }
}
