using System;
using System.Linq;
using System.Threading;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Data;

/// <summary>Rows of an <see cref="IDataView"/> cached as tensors: features [rows, shape...] and one label per row.</summary>
/// <param name="Features">Float features, rows along the first dimension.</param>
/// <param name="Labels">Class indices (int64) for key and Boolean labels, targets (float32) for Single labels.</param>
/// <param name="SkippedRows">Rows left out because their label was missing (key 0 or NaN).</param>
/// <param name="NonFiniteRows">Rows left out because a feature was NaN or infinite (when asked to skip them).</param>
internal sealed record CachedRows(Tensor Features, Tensor Labels, long SkippedRows, long NonFiniteRows) : IDisposable
{
    /// <summary>Rows read.</summary>
    public long Rows => Features.shape[0];

    /// <summary>Releases the tensors.</summary>
    public void Dispose()
    {
        Features.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Reads an <see cref="IDataView"/> whole into tensors through one cursor, after <see cref="InputColumns"/> checked its
/// columns: the feature tensor is allocated once for the expected row count and filled in chunks, so the data's float
/// size is held once (no growing list, no intermediate array of the whole data).
/// </summary>
internal static class DataViewTensorReader
{
    private const int ChunkRows = 1024;

    /// <summary>Bytes of the staging chunk that rows are read into before they are copied into the cache tensor.</summary>
    private const long ChunkBytes = 8L << 20;

    /// <summary>
    /// Counts, in a cheap pass over only the label column (features are not computed), the labelled rows of
    /// <paramref name="shard"/> and the rows without a label it reports, the view's rows, and the view's labelled rows
    /// (every shard's); and hashes the labels in the cursor's order (FNV-1a over each row's class index or target bits, -1
    /// for a missing label), so that processes can check they see the same rows in the same order.
    /// </summary>
    /// <param name="data">The data.</param>
    /// <param name="featureColumn">Feature column name.</param>
    /// <param name="labelColumn">Label column name.</param>
    /// <param name="cancellationToken">Checked every 1024 rows.</param>
    /// <param name="shard">The rows counted (every row when null); the others' labels are not computed.</param>
    public static (long Labelled, long Skipped, long ViewRows, long ViewLabelled, ulong LabelHash) CountRows(IDataView data, string featureColumn, string labelColumn, CancellationToken cancellationToken = default,
        RowShard? shard = null)
    {
        shard ??= RowShard.All;
        ArgumentNullException.ThrowIfNull(data);
        var (_, kind, _) = InputColumns.Inspect(data.Schema, featureColumn, labelColumn);
        var label = data.Schema[labelColumn];
        using var cursor = data.GetRowCursor(new[] { label });
        var reader = new LabelledRowReader(cursor, data.Schema[featureColumn], label, kind!.Value, withFeatures: false);
        long labelled = 0, skipped = 0, labelledIndex = 0;
        ulong hash = 14695981039346656037UL;
        long row = 0;
        for (; ; row++)
        {
            bool hasLabel;
            try
            {
                if (!cursor.MoveNext())
                {
                    break;
                }
                if (row % ChunkRows == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }
                hasLabel = reader.ReadLabel();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new InvalidOperationException($"Reading row {row} of the data (0-based, while counting its rows) failed: {e.Message}", e);
            }
            long value = !hasLabel ? -1 : kind == LabelKind.Single ? BitConverter.SingleToInt32Bits(reader.Target) : reader.ClassIndex;
            hash = (hash ^ unchecked((ulong)value)) * 1099511628211UL;
            if (hasLabel)
            {
                labelled += shard.Contains(labelledIndex++) ? 1 : 0;
            }
            else if (shard.CountsUnlabelled(row))
            {
                skipped++;
            }
        }
        return (labelled, skipped, row, labelledIndex, hash);
    }

    /// <summary>Reads every row (of <paramref name="shard"/>) into tensors.</summary>
    /// <param name="data">The data.</param>
    /// <param name="featureColumn">Feature column name.</param>
    /// <param name="labelColumn">Label column name.</param>
    /// <param name="rowShape">How the network sees one feature vector (its product is the feature width).</param>
    /// <param name="expectedRows">Rows to allocate for (the view's row count, or a count pass's); more rows than this is an error.</param>
    /// <param name="skipNonFinite">Leave out rows with NaN or infinite features (counted) instead of failing after the read with their count and the first.</param>
    /// <param name="cancellationToken">Checked every 1024 rows.</param>
    /// <param name="shard">The rows read (every row when null); the others are moved past, their columns not computed.</param>
    /// <exception cref="ArgumentException">A column is missing or of an unsupported type, no row has a label, or features are not finite.</exception>
    /// <exception cref="InvalidOperationException">The data yielded more rows than <paramref name="expectedRows"/>, or reading a row failed (the row is named).</exception>
    public static CachedRows Read(IDataView data, string featureColumn, string labelColumn, long[] rowShape, long expectedRows, bool skipNonFinite = false,
        CancellationToken cancellationToken = default, RowShard? shard = null)
    {
        shard ??= RowShard.All;
        ArgumentNullException.ThrowIfNull(data);
        var (width, kind, _) = InputColumns.Inspect(data.Schema, featureColumn, labelColumn);
        long expectedWidth = rowShape.Aggregate(1L, (a, b) => a * b);
        if (expectedWidth != width)
        {
            throw new ArgumentException($"The row shape [{string.Join(", ", rowShape)}] holds {expectedWidth} values; feature column '{featureColumn}' has {width}.", nameof(rowShape));
        }
        var featureCol = data.Schema[featureColumn];
        var labelCol = data.Schema[labelColumn];
        bool classes = kind != LabelKind.Single;
        using var scope = NewDisposeScope();
        var features = empty(new[] { expectedRows }.Concat(rowShape).ToArray());
        var labels = classes ? empty(expectedRows, int64) : empty(expectedRows, float32);
        var flat = features.view(expectedRows, width);
        // A staging chunk of about 8 MiB (at least one row), shared with a tensor view so the copy into the cache is native.
        int chunkRows = (int)Math.Clamp(ChunkBytes / (sizeof(float) * (long)width), 1, Math.Max(1, Math.Min(ChunkRows, expectedRows)));
        var chunk = new float[(long)chunkRows * width];
        var chunkClasses = new long[chunkRows];
        var chunkTargets = new float[chunkRows];
        long rows = 0, skipped = 0, row = -1, nonFinite = 0, firstBadRow = -1, labelledIndex = 0;
        int firstBadSlot = -1;
        float firstBadValue = 0;
        int inChunk = 0;
        void Flush()
        {
            if (inChunk == 0)
            {
                return;
            }
            using var shared = from_array(chunk);
            using var source = shared.view(chunkRows, width);
            flat.narrow(0, rows - inChunk, inChunk).copy_(source.narrow(0, 0, inChunk));
            using var labelSource = classes ? from_array(chunkClasses) : from_array(chunkTargets);
            labels.narrow(0, rows - inChunk, inChunk).copy_(labelSource.narrow(0, 0, inChunk));
            inChunk = 0;
        }
        using (var cursor = data.GetRowCursor(new[] { featureCol, labelCol }))
        {
            var reader = new LabelledRowReader(cursor, featureCol, labelCol, kind!.Value);
            while (true)
            {
                bool more, labelled;
                try
                {
                    more = cursor.MoveNext();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new InvalidOperationException($"Reading row {row + 1} of the data (0-based) failed: {e.Message}", e);
                }
                if (!more)
                {
                    break;
                }
                row++;
                if (row % ChunkRows == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }
                try
                {
                    labelled = reader.ReadLabel();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new InvalidOperationException($"Reading row {row} of the data (0-based) failed: {e.Message}", e);
                }
                if (!labelled)
                {
                    skipped += shard.CountsUnlabelled(row) ? 1 : 0;
                    continue;
                }
                if (!shard.Contains(labelledIndex++))
                {
                    continue;
                }
                if (rows == expectedRows)
                {
                    throw new InvalidOperationException(
                        $"The data yielded more than the {expectedRows:N0} rows it reported; training needs a data view that returns the same rows every time it is read.");
                }
                var destination = chunk.AsSpan(checked(inChunk * width), width);
                try
                {
                    reader.ReadFeatures(destination);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new InvalidOperationException($"Reading row {row} of the data (0-based) failed: {e.Message}", e);
                }
                if (LabelledRowReader.FirstNonFinite(destination) is int slot and >= 0)
                {
                    if (nonFinite++ == 0)
                    {
                        (firstBadRow, firstBadSlot, firstBadValue) = (row, slot, destination[slot]);
                    }
                    // Skipped, or counted to report them all before training.
                    continue;
                }
                chunkClasses[inChunk] = reader.ClassIndex;
                chunkTargets[inChunk] = reader.Target;
                inChunk++;
                rows++;
                if (inChunk == chunkRows)
                {
                    Flush();
                }
            }
            Flush();
        }
        if (nonFinite > 0 && !skipNonFinite)
        {
            throw LabelledRowReader.NonFiniteFeatures(featureColumn, $"{nonFinite:N0} row(s)", firstBadRow, firstBadSlot, firstBadValue);
        }
        if (rows == 0)
        {
            throw new ArgumentException($"The data has no rows with a label in '{labelColumn}' ({skipped} rows had a missing label, {nonFinite} non-finite features).", nameof(data));
        }
        // Rows with a missing label were counted but not stored: keep a view of the rows that were (same storage, no copy).
        var result = rows == expectedRows
            ? new CachedRows(features, labels, skipped, nonFinite)
            : new CachedRows(features.narrow(0, 0, rows), labels.narrow(0, 0, rows), skipped, nonFinite);
        result.Features.MoveToOuterDisposeScope();
        result.Labels.MoveToOuterDisposeScope();
        return result;
    }
}
