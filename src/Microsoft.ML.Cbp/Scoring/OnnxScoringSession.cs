using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.Cbp.Scoring;

/// <summary>
/// An ONNX Runtime session that scores rows of a single-input, single-output float model in batches: one
/// <c>Run</c> per batch, not per row. Uses the CUDA execution provider on the requested GPU, falling back to the
/// CPU when allowed; <see cref="ExecutionProvider"/> says which one runs.
/// </summary>
/// <remarks>
/// Session settings: <c>session.disable_quant_qdq = 1</c>, so the integer weight codes of a compact model are
/// decoded once when the session is created and the model scores as fast as its float form (constant folding,
/// Conv-BatchNorm fusion), and <c>session.qdq_matmulnbits_accuracy_level = 1</c>, so no int8-activation
/// MatMulNBits rewrite changes results. <see cref="Score"/> reuses one buffer and is not thread-safe;
/// <see cref="ScoreBatch"/> is.
/// </remarks>
public sealed class OnnxScoringSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly string[] _allOutputNames;
    private readonly RunOptions _runOptions = new();
    private float[] _batch = Array.Empty<float>();

    private OnnxScoringSession(InferenceSession session, string provider)
    {
        _session = session;
        ExecutionProvider = provider;
        var input = session.InputMetadata.First();
        var output = session.OutputMetadata.First();
        _inputNames = new[] { input.Key };
        _outputNames = new[] { output.Key };
        _allOutputNames = session.OutputMetadata.Keys.ToArray();
        InputRowShape = input.Value.Dimensions.Skip(1).Select(d => (long)d).ToArray();
        if (InputRowShape.Any(d => d <= 0))
        {
            throw new ArgumentException(
                $"Input '{input.Key}' of the model has shape [{string.Join(", ", input.Value.Dimensions)}]; every dimension but the batch must be fixed to score rows.");
        }
        RowWidth = InputRowShape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>"CUDA" or "CPU": the execution provider that runs the model.</summary>
    public string ExecutionProvider { get; }

    /// <summary>Shape of one input row (without the batch dimension).</summary>
    public long[] InputRowShape { get; }

    /// <summary>Floats per input row.</summary>
    public long RowWidth { get; }

    /// <summary>Creates a session for a model.</summary>
    /// <param name="model">Serialized ONNX model.</param>
    /// <param name="gpuDeviceId">GPU to score on with the CUDA execution provider; null for the CPU.</param>
    /// <param name="fallbackToCpu">When the GPU cannot be used, score on the CPU instead of failing.</param>
    /// <param name="log">Receives one line saying which execution provider runs, and why when it fell back.</param>
    /// <exception cref="InvalidOperationException">The GPU was requested, cannot be used, and fallback is off.</exception>
    public static OnnxScoringSession Create(byte[] model, int? gpuDeviceId = null, bool fallbackToCpu = true, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (gpuDeviceId is int id)
        {
            if (id < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(gpuDeviceId), id, "The GPU device id must be 0 or greater.");
            }
            var options = CreateOptions();
            try
            {
                options.AppendExecutionProvider_CUDA(id);
                var session = new InferenceSession(model, options);
                log?.Invoke($"ONNX Runtime scores on the CUDA execution provider, GPU {id}.");
                return new OnnxScoringSession(session, "CUDA");
            }
            catch (OnnxRuntimeException e)
            {
                if (!fallbackToCpu)
                {
                    throw new InvalidOperationException(
                        $"GPU {id} was requested for scoring but ONNX Runtime's CUDA execution provider could not be used ({FirstLine(e.Message)}). " +
                        "ONNX Runtime 1.31's CUDA build needs an NVIDIA GPU with the CUDA 13 libraries; set FallbackToCpu to score on the CPU instead.", e);
                }
                log?.Invoke($"ONNX Runtime's CUDA execution provider is unavailable for GPU {id} ({FirstLine(e.Message)}); scoring on the CPU.");
            }
            finally
            {
                options.Dispose();
            }
        }
        using var cpuOptions = CreateOptions();
        var cpu = new InferenceSession(model, cpuOptions);
        log?.Invoke("ONNX Runtime scores on the CPU execution provider.");
        return new OnnxScoringSession(cpu, "CPU");
    }

    /// <summary>Scores <paramref name="rowCount"/> rows stored one after another, <paramref name="batchSize"/> rows per run.</summary>
    /// <param name="rows">Row-major input values: <paramref name="rowCount"/> times <see cref="RowWidth"/> floats.</param>
    /// <param name="rowCount">Number of rows.</param>
    /// <param name="batchSize">Rows per ONNX Runtime run (default 256).</param>
    /// <returns>The outputs, row-major, and the number of floats per output row.</returns>
    /// <exception cref="ArgumentException">The input length does not match the row count and width.</exception>
    public (float[] Outputs, int OutputWidth) Score(ReadOnlySpan<float> rows, int rowCount, int batchSize = 256)
    {
        if (rowCount < 0 || rows.Length != rowCount * RowWidth)
        {
            throw new ArgumentException(
                $"{rowCount} rows of the model's input [{string.Join(", ", InputRowShape)}] need {rowCount * RowWidth} floats; got {rows.Length}.", nameof(rows));
        }
        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be at least 1.");
        }
        float[] results = Array.Empty<float>();
        int outputWidth = 0;
        for (int start = 0; start < rowCount; start += batchSize)
        {
            int count = Math.Min(batchSize, rowCount - start);
            int length = (int)(count * RowWidth);
            if (_batch.Length != length)
            {
                _batch = new float[length];
            }
            rows.Slice((int)(start * RowWidth), length).CopyTo(_batch);
            using var input = OrtValue.CreateTensorValueFromMemory(_batch, new long[] { count }.Concat(InputRowShape).ToArray());
            using var outputs = _session.Run(_runOptions, _inputNames, new[] { input }, _outputNames);
            var values = outputs[0].GetTensorDataAsSpan<float>();
            if (start == 0)
            {
                // Every row yields the same number of outputs: size the result once.
                outputWidth = values.Length / count;
                results = new float[(long)rowCount * outputWidth];
            }
            values.CopyTo(results.AsSpan(start * outputWidth, count * outputWidth));
        }
        return (results, outputWidth);
    }

    /// <summary>
    /// Scores one batch with a single <c>Run</c>, returning every output of the model: float outputs as
    /// <see cref="float"/> arrays and int64 outputs as <see cref="long"/> arrays, row-major, by output name.
    /// Safe to call from several threads at once (no state is shared between calls).
    /// </summary>
    /// <param name="rows">Exactly <paramref name="count"/> times <see cref="RowWidth"/> floats.</param>
    /// <param name="count">Rows in the batch.</param>
    /// <exception cref="ArgumentException">The input length does not match the row count and width.</exception>
    /// <exception cref="NotSupportedException">An output is neither float nor int64.</exception>
    public IReadOnlyDictionary<string, Array> ScoreBatch(float[] rows, int count)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (count < 1 || rows.Length != count * RowWidth)
        {
            throw new ArgumentException(
                $"{count} rows of the model's input [{string.Join(", ", InputRowShape)}] need {count * RowWidth} floats; got {rows.Length}.", nameof(rows));
        }
        using var runOptions = new RunOptions();
        using var input = OrtValue.CreateTensorValueFromMemory(rows, new long[] { count }.Concat(InputRowShape).ToArray());
        using var outputs = _session.Run(runOptions, _inputNames, new[] { input }, _allOutputNames);
        var result = new Dictionary<string, Array>(StringComparer.Ordinal);
        for (int i = 0; i < _allOutputNames.Length; i++)
        {
            var value = outputs[i];
            result[_allOutputNames[i]] = value.GetTensorTypeAndShape().ElementDataType switch
            {
                TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
                TensorElementType.Int64 => value.GetTensorDataAsSpan<long>().ToArray(),
                var other => throw new NotSupportedException($"Output '{_allOutputNames[i]}' is {other}; batched scoring reads float and int64 outputs."),
            };
        }
        return result;
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose()
    {
        _runOptions.Dispose();
        _session.Dispose();
    }

    private static SessionOptions CreateOptions()
    {
        var options = new SessionOptions();
        options.AddSessionConfigEntry("session.disable_quant_qdq", "1");
        options.AddSessionConfigEntry("session.qdq_matmulnbits_accuracy_level", "1");
        return options;
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
