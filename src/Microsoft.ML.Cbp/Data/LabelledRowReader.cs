using System;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Data;

/// <summary>
/// Reads the feature vector and the label of the current row of a cursor, the one place where a label value becomes a
/// class index (key value - 1, Boolean 0/1) or a regression target, and where a missing label (key 0, NaN) is detected.
/// </summary>
internal sealed class LabelledRowReader
{
    private readonly ValueGetter<VBuffer<float>>? _features;
    private readonly ValueGetter<uint>? _key;
    private readonly ValueGetter<bool>? _flag;
    private readonly ValueGetter<float>? _target;
    private VBuffer<float> _buffer;
    private uint _keyValue;
    private bool _flagValue;
    private float _targetValue;
    private readonly string _labelColumn;

    /// <summary>Getters on <paramref name="cursor"/>, which must have the label column active (and the feature column, unless <paramref name="withFeatures"/> is false).</summary>
    /// <param name="cursor">The cursor.</param>
    /// <param name="featureColumn">The feature column.</param>
    /// <param name="labelColumn">The label column.</param>
    /// <param name="kind">The label's kind (from <see cref="InputColumns.Inspect"/>).</param>
    /// <param name="withFeatures">Whether features are read (false for a count of labelled rows).</param>
    public LabelledRowReader(DataViewRowCursor cursor, DataViewSchema.Column featureColumn, DataViewSchema.Column labelColumn, LabelKind kind, bool withFeatures = true)
    {
        Kind = kind;
        _labelColumn = labelColumn.Name;
        _features = withFeatures ? cursor.GetGetter<VBuffer<float>>(featureColumn) : null;
        _key = kind == LabelKind.Key ? cursor.GetGetter<uint>(labelColumn) : null;
        _flag = kind == LabelKind.Boolean ? cursor.GetGetter<bool>(labelColumn) : null;
        _target = kind == LabelKind.Single ? cursor.GetGetter<float>(labelColumn) : null;
    }

    /// <summary>The label's kind.</summary>
    public LabelKind Kind { get; }

    /// <summary>Reads the current row's label; false when it is missing (the row is skipped).</summary>
    /// <exception cref="ArgumentException">A regression target is infinite (its squared error would make the loss infinite).</exception>
    public bool ReadLabel()
    {
        _key?.Invoke(ref _keyValue);
        _flag?.Invoke(ref _flagValue);
        _target?.Invoke(ref _targetValue);
        if (Kind == LabelKind.Single && float.IsInfinity(_targetValue))
        {
            throw new ArgumentException(
                $"Label column '{_labelColumn}' has the target {_targetValue.ToString(System.Globalization.CultureInfo.InvariantCulture)}; regression targets must be finite (NaN marks a missing label, and such rows are skipped). " +
                "Filter those rows out or replace the value.", "input");
        }
        return !((Kind == LabelKind.Key && _keyValue == 0) || (Kind == LabelKind.Single && float.IsNaN(_targetValue)));
    }

    /// <summary>The class index of the label read last (classification).</summary>
    public long ClassIndex => Kind == LabelKind.Key ? _keyValue - 1 : _flagValue ? 1 : 0;

    /// <summary>The target of the label read last (regression).</summary>
    public float Target => _targetValue;

    /// <summary>Copies the current row's features into <paramref name="destination"/> (dense, the feature width long).</summary>
    /// <param name="destination">Where the row goes.</param>
    public void ReadFeatures(Span<float> destination)
    {
        _features!(ref _buffer);
        _buffer.CopyTo(destination);
    }

    /// <summary>The first slot of <paramref name="features"/> that is NaN or infinite, or -1 when every value is finite.</summary>
    /// <param name="features">A row's features.</param>
    public static int FirstNonFinite(ReadOnlySpan<float> features)
    {
        for (int i = 0; i < features.Length; i++)
        {
            if (!float.IsFinite(features[i]))
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>The error for rows with NaN or infinite features, naming the column, the first such row and slot, and the option that skips them.</summary>
    /// <param name="column">The feature column.</param>
    /// <param name="rows">How many such rows were found ("at least" when reading stopped at the first).</param>
    /// <param name="row">The first such row (0-based).</param>
    /// <param name="slot">Its first non-finite slot.</param>
    /// <param name="value">That value.</param>
    public static ArgumentException NonFiniteFeatures(string column, string rows, long row, int slot, float value) => new(
        $"Feature column '{column}' has NaN or infinite values in {rows} (first: row {row}, slot {slot}, {value}); training on them would make " +
        "a NaN model. Clean or impute them (for example ReplaceMissingValues), or set SkipRowsWithNonFiniteFeatures = true to leave such rows out.",
        "input");
}
