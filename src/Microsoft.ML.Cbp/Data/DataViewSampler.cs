using System;
using System.Threading;

namespace Microsoft.ML.Cbp.Data;

/// <summary>
/// Rows spread evenly across a view: every k-th labelled row of one cursor pass, so a sample of a sorted or grouped
/// file still covers all of it. Only the sampled rows' features are computed (ML.NET getters are lazy), so the pass
/// costs about as much as counting the labels; sampled rows are handed over in small batches, so memory holds one batch.
/// </summary>
internal static class DataViewSampler
{
    /// <summary>
    /// Every k-th labelled row with finite features (k = labelled rows / <paramref name="count"/>, at least 1: about
    /// <paramref name="count"/> rows, all of them when there are fewer), as class indices, in batches.
    /// </summary>
    /// <param name="data">The data (columns checked by <see cref="InputColumns.Inspect"/>).</param>
    /// <param name="featureColumn">Feature column name.</param>
    /// <param name="labelColumn">Label column name (a key or Boolean).</param>
    /// <param name="labelledRows">Labelled rows in a pass (known before training), which sets the stride.</param>
    /// <param name="count">Rows wanted.</param>
    /// <param name="batchRows">Rows per batch handed to <paramref name="onBatch"/>.</param>
    /// <param name="onBatch">Receives the features (row after row), the class indices and the number of rows of each batch; the arrays are reused.</param>
    /// <param name="cancellationToken">Checked every 1024 rows.</param>
    /// <returns>The rows sampled.</returns>
    public static long SampleClasses(IDataView data, string featureColumn, string labelColumn, long labelledRows, int count, int batchRows,
        Action<float[], long[], int> onBatch, CancellationToken cancellationToken = default)
    {
        var (width, kind, _) = InputColumns.Inspect(data.Schema, featureColumn, labelColumn);
        if (kind == LabelKind.Single)
        {
            throw new ArgumentException($"Label column '{labelColumn}' is a regression target; sampling classes needs a key or Boolean label.", nameof(labelColumn));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(batchRows, 1);
        long stride = Math.Max(1, labelledRows / Math.Max(1, count));
        var features = new float[checked((long)batchRows * width)];
        var classes = new long[batchRows];
        int inBatch = 0;
        long sampled = 0;
        var featureCol = data.Schema[featureColumn];
        var labelCol = data.Schema[labelColumn];
        using (var cursor = data.GetRowCursor(new[] { featureCol, labelCol }))
        {
            var reader = new LabelledRowReader(cursor, featureCol, labelCol, kind!.Value);
            long labelled = 0, position = -1;
            while (true)
            {
                var row = features.AsSpan(inBatch * width, width);
                try
                {
                    if (!cursor.MoveNext())
                    {
                        break;
                    }
                    position++;
                    if (position % 1024 == 0)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                    if (!reader.ReadLabel() || labelled++ % stride != 0)
                    {
                        continue;
                    }
                    reader.ReadFeatures(row);
                }
                catch (Exception e) when (e is not (OperationCanceledException or ArgumentException))
                {
                    throw new InvalidOperationException($"Reading row {position} of the data (0-based, while sampling it) failed: {e.Message}", e);
                }
                if (LabelledRowReader.FirstNonFinite(row) >= 0)
                {
                    continue;
                }
                classes[inBatch++] = reader.ClassIndex;
                sampled++;
                if (inBatch == batchRows)
                {
                    onBatch(features, classes, inBatch);
                    inBatch = 0;
                }
            }
        }
        if (inBatch > 0)
        {
            onBatch(features, classes, inBatch);
        }
        return sampled;
    }
}
