using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using Microsoft.ML.Data;
using Onnx;

namespace Microsoft.ML.Cbp.Scoring;

/// <summary>
/// The one owner of the scoring output: the column names, which columns a label type yields, their schema before Fit
/// (<see cref="OutputShape"/>) and after it (the ML.NET chain of <see cref="PerRowChain"/>, whose schema the batched view
/// copies), the PredictedLabel key values, and what each output column holds (<see cref="RoleOf"/>).
/// </summary>
/// <remarks>
/// Score is a vector of Single: class probabilities, or the one predicted value. PredictedLabel (classification) is a
/// one-slot vector of the label's key type carrying its key values, or of Boolean. They are vectors because the model
/// saves as ML.NET's standard OnnxTransformer, which emits vectors only; the per-row scoring graph names its outputs
/// after these columns.
/// </remarks>
internal static class ScoringOutput
{
    /// <summary>The Score column, and the scoring graphs' output of the same name.</summary>
    public const string Score = "Score";

    /// <summary>The PredictedLabel column (classification), and the per-row graph's output of the same name.</summary>
    public const string PredictedLabel = "PredictedLabel";

    /// <summary>The annotation that holds a key column's values (ML.NET's <c>AnnotationUtils.Kinds.KeyValues</c>, which is internal).</summary>
    private const string KeyValuesAnnotation = "KeyValues";

    /// <summary>What an output column holds, which decides how the batched view fills it.</summary>
    internal enum Role
    {
        /// <summary>Score: probabilities or the value.</summary>
        Score,

        /// <summary>PredictedLabel as a key (multiclass).</summary>
        PredictedKey,

        /// <summary>PredictedLabel as a Boolean (binary).</summary>
        PredictedBoolean,

        /// <summary>PredictedLabel as the label's value (multiclass, when the chain does not map it to a key).</summary>
        PredictedValue,
    }

    /// <summary>The scoring head a label type asks for.</summary>
    /// <param name="label">The label column's type: key, Boolean or Single (checked by the data layer).</param>
    public static ScoringTask TaskFor(DataViewType label) => label switch
    {
        KeyDataViewType => ScoringTask.Multiclass,
        BooleanDataViewType => ScoringTask.Binary,
        _ => ScoringTask.Regression,
    };

    /// <summary>
    /// The output schema shape before Fit: the input columns plus Score and, for classification, PredictedLabel. Built
    /// from public estimators with the same output shapes, since <c>SchemaShape.Column</c> cannot be constructed outside
    /// ML.NET.
    /// </summary>
    /// <param name="input">The input schema shape (columns already checked).</param>
    /// <param name="featureColumn">The feature column.</param>
    /// <param name="label">The label column.</param>
    public static SchemaShape OutputShape(SchemaShape input, string featureColumn, SchemaShape.Column label)
    {
        var context = new MLContext();
        IEstimator<ITransformer> shape = context.Transforms.Concatenate(Score, featureColumn);
        const string value = "cbp_label_value", vector = "cbp_label_vector";
        if (label.ItemType is BooleanDataViewType)
        {
            shape = shape.Append(context.Transforms.Concatenate(PredictedLabel, label.Name));
        }
        else if (label.IsKey)
        {
            // A one-slot vector of the label's key type, carrying its key values (as MapValueToKey gives it).
            IEstimator<ITransformer> toValue = label.Annotations.Any(a => a.Name == KeyValuesAnnotation)
                ? context.Transforms.Conversion.MapKeyToValue(value, label.Name)
                : context.Transforms.Conversion.ConvertType(value, label.Name, DataKind.UInt32);
            shape = shape.Append(toValue)
                .Append(context.Transforms.Concatenate(vector, value))
                .Append(context.Transforms.Conversion.MapValueToKey(PredictedLabel, vector))
                .Append(context.Transforms.DropColumns(value, vector));
        }
        return shape.GetOutputSchema(input);
    }

    /// <summary>
    /// The label values PredictedLabel carries, one per class in key order: the key's values, or its raw values 1..n
    /// when it has none.
    /// </summary>
    /// <param name="label">A key label column.</param>
    /// <exception cref="ArgumentException">Two classes share a value.</exception>
    public static Array KeyValues(DataViewSchema.Column label)
    {
        int count = (int)((KeyDataViewType)label.Type).Count;
        var annotation = label.Annotations.Schema.GetColumnOrNull(KeyValuesAnnotation);
        if (annotation is null)
        {
            // A key without values: the predicted label carries the key's own raw value (1-based).
            return Enumerable.Range(1, count).Select(i => (uint)i).ToArray();
        }
        var itemType = ((VectorDataViewType)annotation.Value.Type).ItemType.RawType;
        var method = typeof(ScoringOutput).GetMethod(nameof(ReadKeyValues), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(itemType);
        var values = (Array)method.Invoke(null, new object[] { label })!;
        var texts = values.Cast<object>().Select(v => v.ToString()).ToList();
        if (texts.Distinct().Count() != texts.Count)
        {
            throw new ArgumentException($"Label column '{label.Name}' has repeated key values; each class needs its own value.");
        }
        return values;
    }

    /// <summary>The label values as the 1-D tensor the per-row graph looks PredictedLabel up in.</summary>
    /// <param name="labelValues">From <see cref="KeyValues"/>.</param>
    public static TensorProto KeyValuesTensor(Array labelValues) =>
        ScoringGraph.LabelValues("labels", labelValues is ReadOnlyMemory<char>[] texts ? texts.Select(t => t.ToString()).ToArray() : labelValues);

    /// <summary>
    /// The plain ML.NET chain that scores a per-row graph and is what a saved model holds: OnnxTransformer (outputs
    /// Score and PredictedLabel), then, for multiclass, MapValueToKey so PredictedLabel is the label's key type.
    /// </summary>
    /// <param name="perRow">The per-row scoring graph.</param>
    /// <param name="featureColumn">The feature column it reads.</param>
    /// <param name="labelValues">Multiclass: the values of <see cref="KeyValues"/>; else null.</param>
    /// <param name="gpuDeviceId">GPU for the OnnxTransformer, or null.</param>
    /// <param name="fallbackToCpu">Whether the OnnxTransformer may fall back to the CPU.</param>
    /// <param name="modelFile">
    /// The temporary file the OnnxTransformer reads the graph from (and copies into a saved model): the caller owns it and
    /// deletes it when the chain is disposed. (Given a stream, ML.NET writes a temporary file of its own that it never deletes.)
    /// </param>
    public static ITransformer PerRowChain(ModelProto perRow, string featureColumn, Array? labelValues, int? gpuDeviceId, bool fallbackToCpu, out string modelFile)
    {
        var (task, _, inputShape) = ScoringGraph.Describe(perRow);
        var context = new MLContext();
        var outputs = task == ScoringTask.Regression ? new[] { Score } : new[] { Score, PredictedLabel };
        modelFile = Path.Combine(Path.GetTempPath(), $"cbp-scoring-{Guid.NewGuid():N}.onnx");
        var transformers = new List<ITransformer>();
        try
        {
            Onnx.OnnxModelFile.Save(perRow, modelFile);
            var onnx = context.Transforms.ApplyOnnxModel(outputs, new[] { featureColumn }, modelFile, gpuDeviceId, fallbackToCpu);
            var empty = context.Data.LoadFromEnumerable(Array.Empty<FeatureRow>(), SchemaFor(featureColumn, (int)inputShape.Aggregate(1L, (a, b) => a * b)));
            var onnxTransformer = onnx.Fit(empty);
            transformers.Add(onnxTransformer);
            if (task == ScoringTask.Multiclass)
            {
                var keys = KeyData(context, labelValues ?? throw new ArgumentNullException(nameof(labelValues), "A multiclass chain needs the label values."));
                transformers.Add(context.Transforms.Conversion.MapValueToKey(PredictedLabel, PredictedLabel, keyData: keys)
                    .Fit(onnxTransformer.Transform(empty)));
            }
            return new TransformerChain<ITransformer>(transformers.ToArray());
        }
        catch
        {
            // Nothing is left behind: the steps made so far and the temporary file go before the error reaches the caller.
            DisposeChain(new TransformerChain<ITransformer>(transformers.ToArray()), modelFile);
            throw;
        }
    }

    /// <summary>
    /// Disposes a chain made by <see cref="PerRowChain"/> (a chain does not pass Dispose on to its steps, so each step is
    /// disposed) and then deletes its temporary model file; a file that cannot be deleted is left to the temp folder's
    /// cleanup rather than hiding the caller's error.
    /// </summary>
    /// <param name="chain">The chain, or any transformer.</param>
    /// <param name="modelFile">The chain's temporary model file, or null.</param>
    public static void DisposeChain(ITransformer chain, string? modelFile)
    {
        foreach (var step in chain as IEnumerable<ITransformer> ?? new[] { chain })
        {
            (step as IDisposable)?.Dispose();
        }
        (chain as IDisposable)?.Dispose();
        if (modelFile is not null)
        {
            try
            {
                File.Delete(modelFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort; see the summary.
            }
        }
    }

    /// <summary>What output column <paramref name="column"/> of a scored schema holds.</summary>
    /// <param name="column">A column the scoring added (Score or PredictedLabel).</param>
    /// <param name="task">The scoring head.</param>
    public static Role RoleOf(DataViewSchema.Column column, ScoringTask task) =>
        column.Name == Score ? Role.Score
        : column.Type is VectorDataViewType { ItemType: KeyDataViewType } ? Role.PredictedKey
        : task == ScoringTask.Binary ? Role.PredictedBoolean
        : Role.PredictedValue;

    private static T[] ReadKeyValues<T>(DataViewSchema.Column label)
    {
        VBuffer<T> values = default;
        label.GetKeyValues(ref values);
        return values.DenseValues().ToArray();
    }

    private static SchemaDefinition SchemaFor(string featureColumn, int width)
    {
        var definition = SchemaDefinition.Create(typeof(FeatureRow));
        definition[0].ColumnName = featureColumn;
        definition[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        return definition;
    }

    private static IDataView KeyData(MLContext context, Array values) => values switch
    {
        ReadOnlyMemory<char>[] texts => KeyData(context, texts.Select(t => t.ToString()).ToArray()),
        string[] v => KeyData(context, v),
        float[] v => KeyData(context, v),
        double[] v => KeyData(context, v),
        int[] v => KeyData(context, v),
        long[] v => KeyData(context, v),
        uint[] v => KeyData(context, v),
        _ => throw new ArgumentException($"Key values of type {values.GetType().GetElementType()?.Name} are not supported.", nameof(values)),
    };

    private static IDataView KeyData<T>(MLContext context, T[] values) =>
        context.Data.LoadFromEnumerable(values.Select(v => new KeyRow<T> { Value = v }));

    private sealed class KeyRow<T>
    {
        public T Value { get; set; } = default!;
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }
}
