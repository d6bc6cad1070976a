using System;
using System.Linq;
using System.Reflection;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Training;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Cbp;

/// <summary>
/// Trains a network whose weights obey a precision constraint (constrained backpropagation, NeurIPS 2021) and yields a
/// <see cref="CbpQuantizeTransformer"/> that scores it with ONNX Runtime. Create it with
/// <see cref="CbpCatalog.CbpQuantize(TransformsCatalog, CbpQuantizeOptions)"/>.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// ### Estimator Characteristics
/// |  |  |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | Yes |
/// | Input column data type | Features: known-size vector of Single. Label: key (multiclass), Boolean (binary) or Single (regression) |
/// | Output column data type | Score: vector of Single (class probabilities, or the one predicted value). PredictedLabel (classification): a one-slot vector of the label's key type, or of Boolean |
/// | Exportable to ONNX | Yes: the model is ONNX (`CbpQuantizeTransformer.SaveOnnx`) |
///
/// Training runs in TorchSharp (CUDA when available, otherwise the CPU): float pre-training of a built-in
/// architecture (or none for a pretrained ONNX model), then CBP, which drives every constrained weight onto
/// scale x level; the result is projected exactly onto the levels and exported. Scoring runs in ONNX Runtime, batched.
/// PredictedLabel is a one-slot vector because the model saves as ML.NET's standard OnnxTransformer, which emits
/// vectors only; `MulticlassClassification.Evaluate` and `MapKeyToValue` accept it as it is.
/// ]]></format>
/// </remarks>
public sealed class CbpQuantizeEstimator : IEstimator<CbpQuantizeTransformer>
{
    private readonly CbpQuantizeOptions _options;
    private readonly IHostEnvironment? _environment;

    internal CbpQuantizeEstimator(IHostEnvironment? environment, CbpQuantizeOptions options)
    {
        _environment = environment;
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>The options (validated).</summary>
    public CbpQuantizeOptions Options => _options;

    /// <summary>Reads the data, trains, quantizes and returns the transformer.</summary>
    /// <param name="input">Training data with the feature and label columns.</param>
    /// <exception cref="ArgumentException">A column is missing or of a type the options cannot use, or an option does not fit the data.</exception>
    /// <exception cref="OperationCanceledException">The options' cancellation token was cancelled; nothing is left behind.</exception>
    public CbpQuantizeTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (_, kind, _) = DataViewTensorReader.Inspect(input.Schema, _options.FeatureColumnName, _options.LabelColumnName);
        using var channel = _environment?.Start("CbpQuantize");
        void Progress(CbpProgressReport report)
        {
            channel?.Info(MessageSensitivity.None, report.ToString());
            _options.Progress?.Invoke(report);
        }
        Progress(new CbpProgressReport(CbpPhase.LoadingData, 0, 0, 0, 0, null));
        var train = DataViewTensorReader.Read(input, _options.FeatureColumnName, _options.LabelColumnName, _options.CancellationToken);
        var validation = _options.ValidationData is { } v
            ? DataViewTensorReader.Read(v, _options.FeatureColumnName, _options.LabelColumnName, _options.CancellationToken)
            : null;
        if (validation is not null && (validation.LabelKind != train.LabelKind || validation.ClassCount != train.ClassCount || validation.FeatureWidth != train.FeatureWidth))
        {
            throw new ArgumentException(
                $"ValidationData's columns differ from the training data's ({validation.FeatureWidth} features, {validation.LabelKind} label with {validation.ClassCount} classes " +
                $"versus {train.FeatureWidth}, {train.LabelKind}, {train.ClassCount}).", nameof(input));
        }
        long seed = _options.Seed ?? EnvironmentSetting<int?>("Seed") ?? 1;
        var result = QuantizationTraining.Run(_options, train, validation, seed, Progress);
        var labelValues = kind == LabelKind.Key ? LabelValues(input.Schema[_options.LabelColumnName]) : null;
        channel?.Info(MessageSensitivity.None, $"Constrained {result.Report.ConstrainedLayers.Count} layers ({result.Report.Constraint}); compact model {result.Report.CompactModelBytes:N0} bytes versus {result.Report.FloatModelBytes:N0} float.");
        return CbpQuantizeTransformer.Create(
            result,
            _options.FeatureColumnName,
            kind!.Value,
            labelValues,
            _options.GpuDeviceId ?? EnvironmentSetting<int?>("GpuDeviceId"),
            _options.FallbackToCpu ?? EnvironmentSetting<bool?>("FallbackToCpu") ?? true,
            _options.ScoringBatchSize,
            message => channel?.Info(MessageSensitivity.None, message));
    }

    /// <summary>The output schema: the input columns plus Score and, for classification, PredictedLabel.</summary>
    /// <param name="inputSchema">The input's schema shape.</param>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of an unsupported type.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var features = Find(inputSchema, _options.FeatureColumnName);
        if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType is not NumberDataViewType number || number.RawType != typeof(float))
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Feature column '{_options.FeatureColumnName}' must be a known-size vector of Single; it is {(features.Name is not null ? Describe(features) : "missing")}.");
        }
        var label = Find(inputSchema, _options.LabelColumnName);
        if (label.Name is null || label.Kind != SchemaShape.Column.VectorKind.Scalar
            || !(label.IsKey || label.ItemType is BooleanDataViewType || (label.ItemType is NumberDataViewType l && l.RawType == typeof(float))))
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Label column '{_options.LabelColumnName}' must be a key (multiclass), Boolean (binary) or Single (regression); it is {(label.Name is not null ? Describe(label) : "missing")}.");
        }
        // SchemaShape.Column cannot be built outside ML.NET: public estimators with the same output shapes derive it.
        var context = new MLContext();
        IEstimator<ITransformer> shape = context.Transforms.Concatenate(ScoringNames.Score, _options.FeatureColumnName);
        const string value = "cbp_label_value", vector = "cbp_label_vector";
        if (label.ItemType is BooleanDataViewType)
        {
            shape = shape.Append(context.Transforms.Concatenate(ScoringNames.PredictedLabel, _options.LabelColumnName));
        }
        else if (label.IsKey)
        {
            // A one-slot vector of the label's key type, carrying its key values (as MapValueToKey gives it).
            IEstimator<ITransformer> toValue = label.Annotations.Any(a => a.Name == "KeyValues")
                ? context.Transforms.Conversion.MapKeyToValue(value, _options.LabelColumnName)
                : context.Transforms.Conversion.ConvertType(value, _options.LabelColumnName, DataKind.UInt32);
            shape = shape.Append(toValue)
                .Append(context.Transforms.Concatenate(vector, value))
                .Append(context.Transforms.Conversion.MapValueToKey(ScoringNames.PredictedLabel, vector))
                .Append(context.Transforms.DropColumns(value, vector));
        }
        return shape.GetOutputSchema(inputSchema);
    }

    private static SchemaShape.Column Find(SchemaShape schema, string name) =>
        schema.Where(c => c.Name == name).DefaultIfEmpty().Last();

    private static string Describe(SchemaShape.Column column) =>
        $"{(column.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : column.Kind + " of ")}{(column.IsKey ? "Key of " : "")}{column.ItemType}";

    private T? EnvironmentSetting<T>(string name)
    {
        // MLContext's Seed, GpuDeviceId and FallbackToCpu live on its internal environment.
        var property = _environment?.GetType().GetProperty(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance);
        return property?.GetValue(_environment) is T value ? value : default;
    }

    private static Array LabelValues(DataViewSchema.Column label)
    {
        int count = (int)((KeyDataViewType)label.Type).Count;
        var annotation = label.Annotations.Schema.GetColumnOrNull("KeyValues");
        if (annotation is null)
        {
            // A key without values: the predicted label carries the key's own raw value (1-based).
            return Enumerable.Range(1, count).Select(i => (uint)i).ToArray();
        }
        var itemType = ((VectorDataViewType)annotation.Value.Type).ItemType.RawType;
        var method = typeof(CbpQuantizeEstimator).GetMethod(nameof(ReadKeyValues), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(itemType);
        var values = (Array)method.Invoke(null, new object[] { label })!;
        var texts = values.Cast<object>().Select(v => v.ToString()).ToList();
        if (texts.Distinct().Count() != texts.Count)
        {
            throw new ArgumentException($"Label column '{label.Name}' has repeated key values; each class needs its own value.");
        }
        return values;
    }

    private static T[] ReadKeyValues<T>(DataViewSchema.Column label)
    {
        VBuffer<T> values = default;
        label.GetKeyValues(ref values);
        return values.DenseValues().ToArray();
    }
}

/// <summary>Column names of the scoring output.</summary>
internal static class ScoringNames
{
    public const string Score = "Score";
    public const string PredictedLabel = "PredictedLabel";
}
