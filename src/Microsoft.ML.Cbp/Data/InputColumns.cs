using System;
using System.Linq;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Data;

/// <summary>What the label column says about the task.</summary>
internal enum LabelKind
{
    /// <summary>A key column: multiclass classification; class index = key value - 1.</summary>
    Key = 0,

    /// <summary>A Boolean column: binary classification with classes 0 (false) and 1 (true).</summary>
    Boolean = 1,

    /// <summary>A Single column: regression.</summary>
    Single = 2,
}

/// <summary>
/// The one owner of the input column rules: the feature column must be a known-size vector of Single (ImageAnalytics'
/// ExtractPixels produces one); the label column a key (multiclass), Boolean (binary) or Single (regression). Other types
/// fail with an error naming the column, its type and the accepted types, for a schema before Fit
/// (<see cref="Check(SchemaShape, string, string)"/>) and for data (<see cref="Inspect"/>).
/// </summary>
internal static class InputColumns
{
    private const string FeatureRule = "a known-size vector of Single";
    private const string LabelRule = "a key (multiclass), Boolean (binary) or Single (regression)";

    /// <summary>Checks the columns and returns the feature width and label kind without reading rows.</summary>
    /// <param name="schema">The data's schema.</param>
    /// <param name="featureColumn">Feature column name.</param>
    /// <param name="labelColumn">Label column name, or null when only features are read (scoring).</param>
    /// <exception cref="ArgumentException">A column is missing or of an unsupported type.</exception>
    public static (int FeatureWidth, LabelKind? LabelKind, int ClassCount) Inspect(DataViewSchema schema, string featureColumn, string? labelColumn)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var features = Column(schema, featureColumn, "FeatureColumnName");
        if (features.Type is not VectorDataViewType { ItemType: NumberDataViewType n } vector || n.RawType != typeof(float) || !vector.IsKnownSize)
        {
            throw new ArgumentException(
                $"Feature column '{featureColumn}' is {features.Type}; it must be {FeatureRule} (for example from " +
                "Transforms.Concatenate, or ExtractPixels for images).", "FeatureColumnName");
        }
        if (labelColumn is null)
        {
            return (vector.Size, null, 0);
        }
        var label = Column(schema, labelColumn, "LabelColumnName");
        return label.Type switch
        {
            KeyDataViewType key when key.Count is > 1 and <= int.MaxValue => (vector.Size, LabelKind.Key, (int)key.Count),
            KeyDataViewType key => throw new ArgumentException(
                $"Label column '{labelColumn}' is a key with {key.Count} class{(key.Count == 1 ? "" : "es")}; classification needs at least 2 " +
                "(the data's labels all have one value?).", "LabelColumnName"),
            BooleanDataViewType => (vector.Size, LabelKind.Boolean, 2),
            NumberDataViewType number when number.RawType == typeof(float) => (vector.Size, LabelKind.Single, 1),
            _ => throw new ArgumentException(
                $"Label column '{labelColumn}' is {label.Type}; it must be {LabelRule}; map text or number classes to a key with " +
                "Conversion.MapValueToKey.", "LabelColumnName"),
        };
    }

    /// <summary>Checks the feature and label columns of a schema shape (an estimator's input before Fit).</summary>
    /// <param name="schema">The input schema shape.</param>
    /// <param name="featureColumn">Feature column name.</param>
    /// <param name="labelColumn">Label column name.</param>
    /// <returns>The label column.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of an unsupported type (ML.NET's convention for schema shapes).</exception>
    public static SchemaShape.Column Check(SchemaShape schema, string featureColumn, string labelColumn)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var features = Find(schema, featureColumn);
        if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType is not NumberDataViewType number || number.RawType != typeof(float))
        {
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Feature column '{featureColumn}' must be {FeatureRule}; it is {(features.Name is not null ? Describe(features) : "missing")}.");
        }
        var label = Find(schema, labelColumn);
        if (label.Name is null || label.Kind != SchemaShape.Column.VectorKind.Scalar
            || !(label.IsKey || label.ItemType is BooleanDataViewType || (label.ItemType is NumberDataViewType l && l.RawType == typeof(float))))
        {
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Label column '{labelColumn}' must be {LabelRule}; it is {(label.Name is not null ? Describe(label) : "missing")}.");
        }
        return label;
    }

    private static SchemaShape.Column Find(SchemaShape schema, string name) =>
        schema.Where(c => c.Name == name).DefaultIfEmpty().Last();

    private static string Describe(SchemaShape.Column column) =>
        $"{(column.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : column.Kind + " of ")}{(column.IsKey ? "Key of " : "")}{column.ItemType}";

    private static DataViewSchema.Column Column(DataViewSchema schema, string name, string option)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException($"{option} must name a column.", option);
        }
        return schema.GetColumnOrNull(name) ?? throw new ArgumentException(
            $"Column '{name}' ({option}) is not in the data; columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.", option);
    }
}
