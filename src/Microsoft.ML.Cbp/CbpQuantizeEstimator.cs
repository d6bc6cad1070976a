using System;
using System.Linq;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Pipeline;
using Microsoft.ML.Cbp.Scoring;
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
        // Options are validated again: they are a mutable object that may have changed since CbpQuantize(...).
        _options.Validate();
        using var channel = _environment?.Start("CbpQuantize");
        void Progress(CbpProgressReport report)
        {
            channel?.Info(MessageSensitivity.None, report.ToString());
            _options.Progress?.Invoke(report);
        }
        long seed = _options.Seed ?? (_environment is null ? null : MLNetInternals.Seed(_environment)) ?? 1;
        int? gpuDeviceId = _options.GpuDeviceId ?? (_environment is null ? null : MLNetInternals.GpuDeviceId(_environment));
        bool fallbackToCpu = _options.FallbackToCpu ?? (_environment is null || MLNetInternals.FallbackToCpu(_environment));
        if (gpuDeviceId is int gpu && !fallbackToCpu)
        {
            // Knowable before training: scoring must run on this GPU.
            OnnxScoringSession.RequireCuda(gpu);
        }
        var result = QuantizationPipeline.Fit(_options, input, seed, Progress);
        channel?.Info(MessageSensitivity.None, $"Constrained {result.Report.ConstrainedLayers.Count} of {result.Report.WeightLayers.Count} weight layers ({result.Report.Constraint}); float: {(result.Report.WeightLayers.Any(l => l.State != CbpWeightLayerState.Constrained) ? string.Join(", ", result.Report.WeightLayers.Where(l => l.State != CbpWeightLayerState.Constrained).Select(l => $"{l.Name} ({l.State})")) : "none")}; compact model {result.Report.CompactModelBytes:N0} bytes versus {result.Report.FloatModelBytes:N0} float.");
        var transformer = CbpQuantizeTransformer.Create(
            result,
            _options.FeatureColumnName,
            gpuDeviceId,
            fallbackToCpu,
            _options.ScoringBatchSize,
            _options.WeightExecution,
            message => channel?.Info(MessageSensitivity.None, message));
        QuantizationPipeline.Complete(_options);
        return transformer;
    }

    /// <summary>The output schema: the input columns plus Score and, for classification, PredictedLabel.</summary>
    /// <param name="inputSchema">The input's schema shape.</param>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of an unsupported type.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var label = InputColumns.Check(inputSchema, _options.FeatureColumnName, _options.LabelColumnName);
        return ScoringOutput.OutputShape(inputSchema, _options.FeatureColumnName, label);
    }
}
