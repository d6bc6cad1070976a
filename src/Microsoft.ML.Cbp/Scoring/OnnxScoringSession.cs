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
/// MatMulNBits rewrite changes results. One thread per <c>Run</c>: on the CPU a batch is split into one slice per core,
/// scored concurrently. Thread-safe.
/// </remarks>
internal sealed class OnnxScoringSession : IDisposable
{
    private readonly InferenceSession _session;
    // Runs hold the read side; Dispose takes the write side, so it waits for runs in flight and no run starts after it.
    private readonly ScoringLifetime _lifetime;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly string[] _allOutputNames;
    private const int MinimumSliceRows = 16;
    private readonly int _parallelism = Environment.ProcessorCount;

    private OnnxScoringSession(InferenceSession session, string provider)
    {
        _session = session;
        _lifetime = new ScoringLifetime(this);
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

    /// <summary>Scores <paramref name="rowCount"/> rows stored one after another, <paramref name="batchSize"/> rows per batch.</summary>
    /// <param name="rows">Row-major input values: <paramref name="rowCount"/> times <see cref="RowWidth"/> floats.</param>
    /// <param name="rowCount">Number of rows.</param>
    /// <param name="batchSize">Rows per batch (default 256); see <see cref="ScoreBatch"/> for how a batch runs.</param>
    /// <returns>The first output, row-major, and the number of floats per output row.</returns>
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
            var values = (float[])ScoreBatch(rows.Slice((int)(start * RowWidth), (int)(count * RowWidth)).ToArray(), count)[_outputNames[0]];
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
    /// Scores one batch, returning every output of the model: float outputs as <see cref="float"/> arrays and int64 outputs
    /// as <see cref="long"/> arrays, row-major, by output name. On the CPU the batch is split into one slice per core, run
    /// concurrently by single-threaded <c>Run</c> calls (faster than ONNX Runtime's own intra-op threading for these networks,
    /// and bit for bit the same results, but for <c>MatMulNBits</c> layers, whose kernels sum a slice in another order than a
    /// batch: alike within float rounding); on CUDA it is one <c>Run</c>. Safe to call from several threads at once.
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
        int slices = ExecutionProvider == "CPU" ? Math.Max(1, Math.Min(_parallelism, count / MinimumSliceRows)) : 1;
        int sliceRows = (count + slices - 1) / slices;
        var parts = new Array[slices][];
        // A session disposed while a view or cursor of its transformer lives on: a clear error, never a native call.
        _lifetime.Enter();
        try
        {
            System.Threading.Tasks.Parallel.For(0, slices, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = slices }, slice =>
            {
                int first = slice * sliceRows;
                int n = Math.Min(sliceRows, count - first);
                parts[slice] = Run(rows.AsMemory((int)(first * RowWidth), (int)(n * RowWidth)), n);
            });
        }
        finally
        {
            _lifetime.Exit();
        }
        var result = new Dictionary<string, Array>(StringComparer.Ordinal);
        for (int output = 0; output < _allOutputNames.Length; output++)
        {
            var pieces = parts.Select(p => p[output]).ToArray();
            var joined = Array.CreateInstance(pieces[0].GetType().GetElementType()!, pieces.Sum(p => p.Length));
            int offset = 0;
            foreach (var piece in pieces)
            {
                Array.Copy(piece, 0, joined, offset, piece.Length);
                offset += piece.Length;
            }
            result[_allOutputNames[output]] = joined;
        }
        return result;
    }

    private Array[] Run(Memory<float> rows, int count)
    {
        using var runOptions = new RunOptions();
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, rows, new long[] { count }.Concat(InputRowShape).ToArray());
        using var outputs = _session.Run(runOptions, _inputNames, new[] { input }, _allOutputNames);
        var arrays = new Array[_allOutputNames.Length];
        for (int i = 0; i < arrays.Length; i++)
        {
            var value = outputs[i];
            arrays[i] = value.GetTensorTypeAndShape().ElementDataType switch
            {
                TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
                TensorElementType.Int64 => value.GetTensorDataAsSpan<long>().ToArray(),
                var other => throw new NotSupportedException($"Output '{_allOutputNames[i]}' is {other}; batched scoring reads float and int64 outputs."),
            };
        }
        return arrays;
    }

    /// <summary>
    /// Checks, on a one-node model, that the CUDA execution provider can run on <paramref name="gpuDeviceId"/>: a Fit that
    /// must score there (FallbackToCpu off) calls it before training, so a missing GPU is known in seconds, not after it.
    /// </summary>
    /// <param name="gpuDeviceId">The GPU.</param>
    /// <exception cref="InvalidOperationException">The CUDA execution provider cannot be used (the message says why and what to set).</exception>
    public static void RequireCuda(int gpuDeviceId)
    {
        var model = new global::Onnx.ModelProto { IrVersion = 7, Graph = new global::Onnx.GraphProto { Name = "cbp_cuda_probe" } };
        model.OpsetImport.Add(new global::Onnx.OperatorSetIdProto { Domain = "", Version = 13 });
        var node = new global::Onnx.NodeProto { OpType = "Identity", Name = "probe" };
        node.Input.Add("x");
        node.Output.Add("y");
        model.Graph.Node.Add(node);
        foreach (var (name, list) in new[] { ("x", model.Graph.Input), ("y", model.Graph.Output) })
        {
            var shape = new global::Onnx.TensorShapeProto();
            shape.Dim.Add(new global::Onnx.TensorShapeProto.Types.Dimension { DimParam = "N" });
            shape.Dim.Add(new global::Onnx.TensorShapeProto.Types.Dimension { DimValue = 1 });
            list.Add(new global::Onnx.ValueInfoProto
            {
                Name = name,
                Type = new global::Onnx.TypeProto { TensorType = new global::Onnx.TypeProto.Types.Tensor { ElemType = Onnx.OnnxTensorConversion.DataTypes.Float, Shape = shape } },
            });
        }
        using var probe = Create(Onnx.OnnxModelFile.ToBytes(model), gpuDeviceId, fallbackToCpu: false);
    }

    /// <summary>Releases the ONNX Runtime session once runs in flight have ended; later runs throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _lifetime.End(_session.Dispose);

    private static SessionOptions CreateOptions()
    {
        // One thread per Run: ScoreBatch runs one slice per core itself (ONNX Runtime's default here is one thread per
        // physical core, which left half of a 2-vCPU machine idle).
        var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        options.AddSessionConfigEntry("session.disable_quant_qdq", "1");
        options.AddSessionConfigEntry("session.qdq_matmulnbits_accuracy_level", "1");
        return options;
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
