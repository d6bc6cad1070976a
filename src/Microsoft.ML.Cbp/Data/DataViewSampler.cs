using System;
using System.Collections.Generic;
using System.Threading;

namespace Microsoft.ML.Cbp.Data;

/// <summary>
/// Rows spread evenly across a view: every k-th labelled row of one cursor pass, so a sample of a sorted or grouped
/// file still covers all of it. Only the sampled rows' features are computed (ML.NET getters are lazy), so the pass
/// costs about as much as counting the labels.
/// </summary>
internal static class DataViewSampler
{
    /// <summary>At least <paramref name="count"/> labelled rows (all when there are fewer) with finite features, as class indices.</summary>
    /// <param name="data">The data (columns checked by <see cref="InputColumns.Inspect"/>).</param>
    /// <param name="featureColumn">Feature column name.</param>
    /// <param name="labelColumn">Label column name (a key or Boolean).</param>
    /// <param name="labelledRows">Labelled rows in a pass (known before training), which sets the stride.</param>
    /// <param name="count">Rows wanted.</param>
    /// <param name="cancellationToken">Checked every 1024 rows.</param>
    /// <returns>The features, row after row, the class index of each row, and the rows sampled.</returns>
    public static (float[] Features, long[] Classes, int Rows) SampleClasses(IDataView data, string featureColumn, string labelColumn, long labelledRows, int count,
        CancellationToken cancellationToken = default)
    {
        var (width, kind, _) = InputColumns.Inspect(data.Schema, featureColumn, labelColumn);
        if (kind == LabelKind.Single)
        {
            throw new ArgumentException($"Label column '{labelColumn}' is a regression target; sampling classes needs a key or Boolean label.", nameof(labelColumn));
        }
        long stride = Math.Max(1, labelledRows / Math.Max(1, count));
        var features = new List<float>();
        var classes = new List<long>();
        var row = new float[width];
        var featureCol = data.Schema[featureColumn];
        var labelCol = data.Schema[labelColumn];
        using var cursor = data.GetRowCursor(new[] { featureCol, labelCol });
        var reader = new LabelledRowReader(cursor, featureCol, labelCol, kind!.Value);
        long labelled = 0, position = -1;
        while (true)
        {
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
            if (LabelledRowReader.FirstNonFinite(row) < 0)
            {
                features.AddRange(row);
                classes.Add(reader.ClassIndex);
            }
        }
        return (features.ToArray(), classes.ToArray(), classes.Count);
    }
}
