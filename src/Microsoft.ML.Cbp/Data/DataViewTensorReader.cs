using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Data;

/// <summary>Rows of an <see cref="IDataView"/> as flat arrays: features (row-major floats) and labels.</summary>
/// <param name="Features">Row-major features, <see cref="RowCount"/> times <see cref="FeatureWidth"/> floats.</param>
/// <param name="FeatureWidth">Floats per row.</param>
/// <param name="ClassLabels">Class indices for key and Boolean labels (key value - 1; missing keys are skipped rows); null for regression.</param>
/// <param name="TargetLabels">Targets for Single labels; null for classification.</param>
/// <param name="LabelKind">The kind of label.</param>
/// <param name="ClassCount">Number of classes (key count, or 2 for Boolean); 1 for regression.</param>
/// <param name="SkippedRows">Rows left out because their label was missing (key 0 or NaN).</param>
internal sealed record DataViewTensors(float[] Features, int FeatureWidth, long[]? ClassLabels, float[]? TargetLabels, LabelKind LabelKind, int ClassCount, long SkippedRows)
{
    /// <summary>Rows read.</summary>
    public int RowCount => Features.Length / Math.Max(1, FeatureWidth);
}

/// <summary>
/// Reads an <see cref="IDataView"/> into arrays through a cursor, after <see cref="InputColumns"/> checked its columns.
/// </summary>
internal static class DataViewTensorReader
{
    /// <summary>Reads every row.</summary>
    /// <param name="data">The data.</param>
    /// <param name="featureColumn">Feature column name.</param>
    /// <param name="labelColumn">Label column name.</param>
    /// <param name="cancellationToken">Checked every 1024 rows.</param>
    /// <exception cref="ArgumentException">A column is missing or of an unsupported type, or no row has a label.</exception>
    public static DataViewTensors Read(IDataView data, string featureColumn, string labelColumn, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var (width, kind, classes) = InputColumns.Inspect(data.Schema, featureColumn, labelColumn);
        var featureCol = data.Schema[featureColumn];
        var labelCol = data.Schema[labelColumn];
        var features = new List<float>();
        var classLabels = kind is LabelKind.Key or LabelKind.Boolean ? new List<long>() : null;
        var targets = kind == LabelKind.Single ? new List<float>() : null;
        long skipped = 0, row = 0;
        using var cursor = data.GetRowCursor(new[] { featureCol, labelCol });
        var getFeatures = cursor.GetGetter<VBuffer<float>>(featureCol);
        VBuffer<float> buffer = default;
        var dense = new float[width];
        ValueGetter<uint>? getKey = kind == LabelKind.Key ? cursor.GetGetter<uint>(labelCol) : null;
        ValueGetter<bool>? getBool = kind == LabelKind.Boolean ? cursor.GetGetter<bool>(labelCol) : null;
        ValueGetter<float>? getFloat = kind == LabelKind.Single ? cursor.GetGetter<float>(labelCol) : null;
        uint key = 0;
        bool flag = false;
        float target = 0;
        while (cursor.MoveNext())
        {
            if (++row % 1024 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
            getKey?.Invoke(ref key);
            getBool?.Invoke(ref flag);
            getFloat?.Invoke(ref target);
            if ((kind == LabelKind.Key && key == 0) || (kind == LabelKind.Single && float.IsNaN(target)))
            {
                skipped++;
                continue;
            }
            getFeatures(ref buffer);
            buffer.CopyTo(dense);
            features.AddRange(dense);
            classLabels?.Add(kind == LabelKind.Key ? key - 1 : flag ? 1 : 0);
            targets?.Add(target);
        }
        if (features.Count == 0)
        {
            throw new ArgumentException($"The data has no rows with a label in '{labelColumn}' ({skipped} rows had a missing label).", nameof(data));
        }
        return new DataViewTensors(features.ToArray(), width, classLabels?.ToArray(), targets?.ToArray(), kind!.Value, classes, skipped);
    }
}
