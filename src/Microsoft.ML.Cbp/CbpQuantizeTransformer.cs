using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Pipeline;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Data;
using Onnx;

namespace Microsoft.ML.Cbp;

/// <summary>
/// A network trained by <see cref="CbpQuantizeEstimator"/>, scored by ONNX Runtime in batches (one <c>Run</c> per
/// <see cref="CbpQuantizeOptions.ScoringBatchSize"/> rows) on the CUDA execution provider or the CPU.
/// </summary>
/// <remarks>
/// <para><c>mlContext.Model.Save</c> writes it as ML.NET's standard <c>OnnxTransformer</c> (plus <c>MapValueToKey</c>
/// for multiclass labels), with the quantized network inside the zip, so <c>mlContext.Model.Load</c> gives a model that
/// plain ML.NET scores bit for bit alike, without this library (with a <see cref="WeightExecution"/> other than
/// DecodedFloat, alike within float rounding: ONNX Runtime's <c>MatMulNBits</c> sums one row in another order than a
/// batch, up to about 1e-6 of the score). That loaded form scores one row per ONNX Runtime run;
/// <c>mlContext.Model.LoadWithBatchedScoring</c> (<see cref="CbpModelOperations"/>) loads it with batched scoring restored.</para>
/// <para>Prediction engines use the per-row form too (<see cref="GetRowToRowMapper"/>). Dispose the transformer to release
/// its ONNX Runtime sessions.</para>
/// </remarks>
public sealed class CbpQuantizeTransformer : ITransformer, IDisposable
{
    private readonly ITransformer _perRow;
    private readonly OnnxScoringSession _session;
    private readonly ScoringTask _task;
    private readonly Array? _labelValues;
    private readonly byte[] _compactOnnx;
    private readonly ScoringLifetime _lifetime;
    private string? _temporaryModelFile;

    /// <summary>The batched scoring graph that <see cref="Transform"/> runs.</summary>
    internal byte[] BatchedScoringGraph { get; private init; } = Array.Empty<byte>();

    /// <summary>The per-row scoring graph that the saved OnnxTransformer runs.</summary>
    internal byte[] PerRowScoringGraph { get; private init; } = Array.Empty<byte>();

    private CbpQuantizeTransformer(ITransformer perRow, OnnxScoringSession session, string featureColumn, ScoringTask task, Array? labelValues,
        byte[] compactOnnx, int batchSize, CbpTrainingReport? report)
    {
        _perRow = perRow;
        _session = session;
        FeatureColumnName = featureColumn;
        _task = task;
        _labelValues = labelValues;
        _compactOnnx = compactOnnx;
        ScoringBatchSize = batchSize;
        TrainingReport = report;
        _lifetime = new ScoringLifetime(this);
    }

    /// <summary>What training did (epochs, CFS, accuracies, sizes); null for a transformer loaded from a saved model.</summary>
    public CbpTrainingReport? TrainingReport { get; }

    /// <summary>The feature column the network reads.</summary>
    public string FeatureColumnName { get; }

    /// <summary>Rows per ONNX Runtime run in <see cref="Transform"/>.</summary>
    public int ScoringBatchSize { get; }

    /// <summary>"CUDA" or "CPU": the ONNX Runtime execution provider that scores batches.</summary>
    public string ExecutionProvider => _session.ExecutionProvider;

    /// <summary>
    /// How the scoring sessions run the constrained weights: <see cref="WeightExecution.DecodedFloat"/>, or a
    /// <c>MatMulNBits</c> form when <see cref="CbpQuantizeOptions.WeightExecution"/> asked for it and at least one fully
    /// connected layer could be rewritten (the others stay decoded; Fit logs which). A model saved with
    /// <c>mlContext.Model.Save</c> keeps the form: plain ML.NET and <see cref="CbpModelOperations.LoadWithBatchedScoring"/> run it alike.
    /// </summary>
    public WeightExecution WeightExecution { get; private init; }

    /// <summary>Always true: the transformer maps rows one to one.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>
    /// The ONNX model that <see cref="SaveOnnx(string)"/> writes: for a fitted transformer the compact network (integer codes in
    /// Constant nodes decoded by Cast and Mul, batch dimension "N"); for one loaded by <see cref="CbpModelOperations.LoadWithBatchedScoring"/> the
    /// batched scoring graph (the same network, codes decoded by Cast and Mul, with the Softmax and ArgMax head).
    /// </summary>
    /// <remarks>A transformer loaded from a model fitted with a <c>MatMulNBits</c> <see cref="WeightExecution"/> holds that
    /// form: its graph has <c>MatMulNBits</c> nodes.</remarks>
    public byte[] GetOnnxBytes() => (byte[])_compactOnnx.Clone();

    /// <summary>
    /// Writes the quantized network as a standalone ONNX model for other runtimes: input "input" [N, shape...], output the
    /// network's logits (or value), constrained weights stored as integer codes (INT4, INT2, INT8 or packed bits as
    /// <see cref="CbpQuantizeOptions.WeightStorage"/> says) in Constant nodes decoded by Cast and Mul by the layer's scale,
    /// and <c>cbp.*</c> metadata (constraint, levels, storage). Both ONNX Runtime and ML.NET's <c>ApplyOnnxModel</c> load it
    /// (ML.NET refuses INT4 and INT2 initializers, which a DequantizeLinear form would need); ONNX Runtime folds the
    /// decode into float weights when the session is created. The file is written to a temporary name and then moved.
    /// </summary>
    /// <param name="path">Destination file.</param>
    public void SaveOnnx(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        OnnxModelFile.WriteAtomically(_compactOnnx, path);
    }

    /// <summary>
    /// Writes the network as <see cref="SaveOnnx(string)"/> does, with its fully connected layers in the form
    /// <paramref name="execution"/> says: <see cref="WeightExecution.MatMulNBits"/> stores each eligible Gemm or MatMul
    /// layer as a com.microsoft <c>MatMulNBits</c> node (4- or 8-bit codes, exact; 2-bit with int8 activations), which ONNX Runtime runs without
    /// decoding the weights to float; other runtimes may lack the operator. Conv layers keep the Cast and Mul decode.
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="execution">The form of the fully connected layers.</param>
    /// <exception cref="ArgumentException"><paramref name="execution"/> is not a defined value.</exception>
    /// <exception cref="InvalidOperationException">The transformer was loaded from a model saved in another <c>MatMulNBits</c> form, which cannot be undone.</exception>
    /// <exception cref="ObjectDisposedException">The transformer is disposed.</exception>
    public void SaveOnnx(string path, WeightExecution execution)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!Enum.IsDefined(execution))
        {
            throw new ArgumentException($"WeightExecution {execution} is not DecodedFloat, MatMulNBits or MatMulNBitsInt8Activations.", nameof(execution));
        }
        ObjectDisposedException.ThrowIf(_lifetime.IsEnded, this);
        var current = OnnxModelFile.Parse(_compactOnnx);
        var form = MatMulNBitsGraph.FormOf(current);
        if (form != WeightExecution.DecodedFloat && form != execution)
        {
            throw new InvalidOperationException(
                $"This transformer was loaded from a model saved with WeightExecution.{form}, whose graph already holds MatMulNBits nodes; it cannot be written " +
                $"as {execution}. Save it with WeightExecution.{form}, or save the fitted transformer (or fit again) for another form.");
        }
        var model = MatMulNBitsGraph.Rewrite(current, execution, forCuda: false, out _);
        OnnxModelFile.WriteAtomically(OnnxModelFile.ToBytes(model), path);
    }

    /// <summary>The output schema: the input columns, then Score and (classification) PredictedLabel.</summary>
    /// <param name="inputSchema">Schema of the data to score.</param>
    /// <exception cref="ArgumentException">The feature column is missing or of the wrong type or size.</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var (width, _, _) = InputColumns.Inspect(inputSchema, FeatureColumnName, null);
        if (width != _session.RowWidth)
        {
            throw new ArgumentException($"Feature column '{FeatureColumnName}' has {width} values per row; the model reads {_session.RowWidth}.", nameof(inputSchema));
        }
        return _perRow.GetOutputSchema(inputSchema);
    }

    /// <summary>Scores <paramref name="input"/> lazily, one ONNX Runtime run per batch of rows.</summary>
    /// <param name="input">Data with the feature column.</param>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ObjectDisposedException.ThrowIf(_lifetime.IsEnded, this);
        var schema = GetOutputSchema(input.Schema);
        return new BatchedScoringDataView(input, schema, _session, FeatureColumnName, _task, _labelValues, ScoringBatchSize);
    }

    /// <summary>A row mapper (for prediction engines): the per-row ONNX Runtime form, which scores bit for bit like <see cref="Transform"/>
    /// (within float rounding with a <c>MatMulNBits</c> <see cref="WeightExecution"/>).</summary>
    /// <param name="inputSchema">Schema of the rows to map.</param>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ObjectDisposedException.ThrowIf(_lifetime.IsEnded, this);
        GetOutputSchema(inputSchema);
        return new DisposalGuardedMapper(_perRow.GetRowToRowMapper(inputSchema), _lifetime);
    }

    /// <summary>Saves the model as ML.NET's standard OnnxTransformer chain (see the remarks of this class).</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        // The saved OnnxTransformer copies the temporary model file, which Dispose deletes.
        _lifetime.Enter();
        try
        {
            _perRow.Save(ctx);
        }
        finally
        {
            _lifetime.Exit();
        }
    }

    /// <summary>Releases the ONNX Runtime sessions once predictions in flight have ended; later use throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _lifetime.End(() =>
    {
        _session.Dispose();
        ScoringOutput.DisposeChain(_perRow, _temporaryModelFile);
    });

    /// <summary>The transformer of a fitted estimator: the per-row chain (what Save writes) and the batched session.</summary>
    internal static CbpQuantizeTransformer Create(QuantizationResult result, string featureColumn, int? gpuDeviceId, bool fallbackToCpu, int batchSize,
        WeightExecution execution, Action<string> log)
    {
        var onnxLabelValues = result.LabelValues is null ? null : ScoringOutput.KeyValuesTensor(result.LabelValues);
        var network = MatMulNBitsGraph.Rewrite(result.Compact, execution, forCuda: gpuDeviceId is not null, out var lowBit);
        if (execution != WeightExecution.DecodedFloat)
        {
            log(lowBit.Count == 0
                ? $"WeightExecution {execution}: no fully connected layer reads a weight decoded from 2-D codes with one scale per output; every weight is decoded to float."
                : $"WeightExecution {execution}: {string.Join(", ", lowBit.Select(l => $"{l.Node} ({l.N}x{l.K}, {l.Bits}-bit)"))} run as MatMulNBits; other weights are decoded to float.");
        }
        var perRow = ScoringGraph.PerRow(network, result.InputName, result.OutputName, result.Task, result.Outputs, featureColumn, onnxLabelValues);
        var chain = ScoringOutput.PerRowChain(perRow, featureColumn, result.LabelValues, gpuDeviceId, fallbackToCpu, out string modelFile);
        try
        {
            var transformer = FromPerRow(perRow, chain, featureColumn, OnnxModelFile.ToBytes(result.Compact), gpuDeviceId, fallbackToCpu, batchSize, result.Report, log);
            transformer._temporaryModelFile = modelFile;
            return transformer;
        }
        catch
        {
            ScoringOutput.DisposeChain(chain, modelFile);
            throw;
        }
    }

    internal static CbpQuantizeTransformer FromPerRow(ModelProto perRow, ITransformer chain, string featureColumn, byte[]? compactOnnx,
        int? gpuDeviceId, bool fallbackToCpu, int batchSize, CbpTrainingReport? report, Action<string>? log)
    {
        var (task, _, _) = ScoringGraph.Describe(perRow);
        var batched = OnnxModelFile.ToBytes(ScoringGraph.ToBatched(perRow));
        var session = OnnxScoringSession.Create(batched, gpuDeviceId, fallbackToCpu, log);
        return new CbpQuantizeTransformer(chain, session, featureColumn, task, ScoringGraph.ReadLabelValues(perRow), compactOnnx ?? batched, batchSize, report)
        {
            WeightExecution = MatMulNBitsGraph.FormOf(perRow),
            BatchedScoringGraph = batched,
            PerRowScoringGraph = OnnxModelFile.ToBytes(perRow),
        };
    }
}
