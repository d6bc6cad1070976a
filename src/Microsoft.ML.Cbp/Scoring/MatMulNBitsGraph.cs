using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Onnx;

using Microsoft.ML.Cbp.Onnx;

namespace Microsoft.ML.Cbp.Scoring;

/// <summary>
/// Rewrites the fully connected layers of a compact model (the SaveOnnx form, or a DequantizeLinear export) into ONNX
/// Runtime's <c>MatMulNBits</c> (com.microsoft), so a session keeps their weights as integer codes instead of folding them to
/// float.
/// </summary>
/// <remarks>
/// <para>A layer is rewritten when a Gemm (transA 0, alpha 1, beta 1, bias absent or a constant of N values or one) or a
/// MatMul reads, as its second input and nowhere else, a 2-D weight decoded from integer codes by this library's own
/// decodes: <c>Mul(Cast(Constant codes), scale)</c>, the one-bit chain of <c>OneBitDecode</c> (<c>W_cbp_bits</c> ...
/// <c>W_cbp_float</c>), or <c>DequantizeLinear(codes, scale)</c> without a zero point. The scale is one value or one per
/// output row (per-channel scales along the input dimension cannot be expressed, so such a layer stays decoded).</para>
/// <para>Each code c is stored as q = c + z in <c>bits</c> bits (2 only with int8 activations on the CPU, else 4; 8 with
/// int8 activations or on CUDA: the exact form leaves layers that need 8 bits decoded on the CPU, where it would be slower), packed along K in blocks of <see cref="BlockSize"/> (first
/// element in the lowest bits), with every block's scale equal to the layer's (or the row's) scale, so ONNX Runtime's
/// decode (q - z) x scale is c x scale: the very float product the Cast/Mul decode computes. z is the operator's default
/// 2^(bits-1) whenever the codes fit it; otherwise an explicit zero point -min(c, 0). The last block is padded with q = z
/// (weight 0).</para>
/// </remarks>
internal static class MatMulNBitsGraph
{
    /// <summary>Weights per block along K. Every block of a row has the same scale, so the size only trades the scales'
    /// memory (one float per block: 0.25 bit per weight at 128) against ONNX Runtime's kernels. Measured on this machine's
    /// CPU (docs/benchmarks/low-bit-execution.md): 128 is faster than 32 and smaller, and at 256 the int8 2-bit kernel is gone.</summary>
    public const int BlockSize = 128;

    /// <summary>The operator's domain.</summary>
    public const string Domain = "com.microsoft";

    /// <summary>One rewritten layer: the node's name, its weight, N x K and the bits per code.</summary>
    /// <param name="Node">The Gemm or MatMul node's name (or its output when it has none).</param>
    /// <param name="Weight">The weight tensor it read.</param>
    /// <param name="N">Output features.</param>
    /// <param name="K">Input features.</param>
    /// <param name="Bits">Bits per stored code: 2, 4 or 8.</param>
    public sealed record Layer(string Node, string Weight, long N, long K, int Bits);

    /// <summary>A copy of <paramref name="model"/> whose eligible fully connected layers run as <c>MatMulNBits</c>.</summary>
    /// <param name="model">A compact model, not modified.</param>
    /// <param name="execution">The form: <see cref="WeightExecution.DecodedFloat"/> returns an unchanged copy.</param>
    /// <param name="forCuda">The sessions may run on the CUDA execution provider, whose kernels take 4 and 8 bits only.</param>
    /// <param name="layers">The layers rewritten, in graph order.</param>
    public static ModelProto Rewrite(ModelProto model, WeightExecution execution, bool forCuda, out IReadOnlyList<Layer> layers)
    {
        // ONNX Runtime 1.31's CPU kernels run 2- and 8-bit codes fast only with int8 activations; with fp32 ones it decodes
        // them on every run (0.04x of float at batch 1 for both, measured). So the exact form stores codes at 4 bits and
        // leaves layers that need 8 decoded on the CPU; CUDA takes 4 and 8 bits.
        bool exactOnCpu = execution == WeightExecution.MatMulNBits && !forCuda;
        return Rewrite(model, execution, forCuda || execution != WeightExecution.MatMulNBitsInt8Activations ? 4 : 2, exactOnCpu ? 4 : 8, out layers);
    }

    /// <summary>As <see cref="Rewrite(ModelProto, WeightExecution, bool, out IReadOnlyList{Layer})"/>, with the narrowest width
    /// allowed given (the benchmark measures 2-bit codes with fp32 activations this way).</summary>
    /// <param name="model">A compact model, not modified.</param>
    /// <param name="execution">The form.</param>
    /// <param name="minimumBits">2, 4 or 8.</param>
    /// <param name="maximumBits">4 or 8: a layer whose codes need more stays decoded.</param>
    /// <param name="layers">The layers rewritten, in graph order.</param>
    public static ModelProto Rewrite(ModelProto model, WeightExecution execution, int minimumBits, int maximumBits, out IReadOnlyList<Layer> layers)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!Enum.IsDefined(execution))
        {
            throw new ArgumentException($"WeightExecution {execution} is not DecodedFloat, MatMulNBits or MatMulNBitsInt8Activations.", nameof(execution));
        }
        var copy = model.Clone();
        var done = new List<Layer>();
        layers = done;
        if (execution == WeightExecution.DecodedFloat)
        {
            return copy;
        }
        var graph = copy.Graph;
        var producers = WeightChains.Producers(graph);
        var uses = Uses(graph);
        var initializers = graph.Initializer.GroupBy(t => t.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        long accuracyLevel = execution == WeightExecution.MatMulNBitsInt8Activations ? 4 : 1;
        for (int i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            if ((!string.IsNullOrEmpty(node.Domain) && node.Domain != "ai.onnx") || node.OpType is not ("Gemm" or "MatMul") || node.Input.Count < 2
                || uses.GetValueOrDefault(node.Input[1]) != 1
                || ReadDecoded(node.Input[1], producers, initializers) is not { } weight || weight.Dims.Length != 2)
            {
                continue;
            }
            bool rowsAreOutputs = node.OpType == "Gemm" && OnnxAttributes.Int(node, "transB", 0) != 0;
            long n = rowsAreOutputs ? weight.Dims[0] : weight.Dims[1], k = rowsAreOutputs ? weight.Dims[1] : weight.Dims[0];
            if ((weight.Scales.Length != 1 && !rowsAreOutputs) || n <= 0 || k <= 0)
            {
                continue;
            }
            string? bias = null;
            if (node.OpType == "Gemm")
            {
                if (OnnxAttributes.Int(node, "transA", 0) != 0 || OnnxAttributes.Float(node, "alpha", 1f) != 1f)
                {
                    continue;
                }
                if (node.Input.Count > 2 && !string.IsNullOrEmpty(node.Input[2]))
                {
                    if (OnnxAttributes.Float(node, "beta", 1f) != 1f || !initializers.TryGetValue(node.Input[2], out var c)
                        || c.DataType != OnnxTensorConversion.DataTypes.Float || BiasOf(c, n, node.Output[0] + "_cbp_nbits_bias") is not { } biasTensor)
                    {
                        continue;
                    }
                    graph.Initializer.Add(biasTensor);
                    bias = biasTensor.Name;
                }
            }
            // The range includes 0, so that q = c - low is never negative and the explicit zero point -low fits the width.
            int low = Math.Min(0, (int)weight.Codes.Min()), high = Math.Max(0, (int)weight.Codes.Max());
            int bits = new[] { 2, 4, 8 }.First(b => (b >= minimumBits && high - low < 1 << b) || b == 8);
            if (high - low >= 1 << bits || bits > maximumBits)
            {
                continue;
            }
            int defaultZero = 1 << (bits - 1);
            bool defaultFits = low >= -defaultZero && high < defaultZero;
            int zero = defaultFits ? defaultZero : -low;
            // Output names are unique in a graph; node names need not be.
            string prefix = node.Output[0] + "_cbp_nbits";
            long blocks = (k + BlockSize - 1) / BlockSize;
            graph.Initializer.Add(OnnxTensorConversion.Create(prefix + "_codes", OnnxTensorConversion.DataTypes.UInt8, new[] { n, blocks, BlockSize * bits / 8 },
                PackRows(weight, rowsAreOutputs, n, k, bits, zero)));
            var scales = new float[n * blocks];
            for (long row = 0; row < n; row++)
            {
                Array.Fill(scales, weight.Scales[weight.Scales.Length == 1 ? 0 : row], (int)(row * blocks), (int)blocks);
            }
            graph.Initializer.Add(OnnxTensorConversion.FromFloat(prefix + "_scales", new[] { n, blocks }, scales));
            var replacement = new NodeProto { OpType = "MatMulNBits", Domain = Domain, Name = prefix };
            replacement.Input.Add(node.Input[0]);
            replacement.Input.Add(prefix + "_codes");
            replacement.Input.Add(prefix + "_scales");
            if (!defaultFits || bias is not null)
            {
                string zeroName = "";
                if (!defaultFits)
                {
                    zeroName = prefix + "_zero_points";
                    // Packed like B: ceil(blocks x bits / 8) bytes per row, every block's zero point the same.
                    var perRow = OnnxTensorConversion.Pack(Enumerable.Repeat(unchecked((sbyte)zero), (int)blocks).ToArray(), bits);
                    graph.Initializer.Add(OnnxTensorConversion.Create(zeroName, OnnxTensorConversion.DataTypes.UInt8, new[] { n, (long)perRow.Length },
                        Enumerable.Range(0, (int)n).SelectMany(_ => perRow).ToArray()));
                }
                replacement.Input.Add(zeroName);
                if (bias is not null)
                {
                    replacement.Input.Add("");
                    replacement.Input.Add(bias);
                }
            }
            replacement.Output.Add(node.Output[0]);
            replacement.Attribute.Add(OnnxAttributes.Create("K", k));
            replacement.Attribute.Add(OnnxAttributes.Create("N", n));
            replacement.Attribute.Add(OnnxAttributes.Create("bits", (long)bits));
            replacement.Attribute.Add(OnnxAttributes.Create("block_size", (long)BlockSize));
            replacement.Attribute.Add(OnnxAttributes.Create("accuracy_level", accuracyLevel));
            graph.Node[i] = replacement;
            done.Add(new Layer(string.IsNullOrEmpty(node.Name) ? node.Output[0] : node.Name, node.Input[1], n, k, bits));
        }
        if (done.Count > 0)
        {
            if (!copy.OpsetImport.Any(o => o.Domain == Domain))
            {
                copy.OpsetImport.Add(new OperatorSetIdProto { Domain = Domain, Version = 1 });
            }
            RemoveDeadNodes(graph);
        }
        return copy;
    }

    /// <summary>The form a scoring graph runs: a MatMulNBits form when it holds such a node (its accuracy level tells which), else decoded float.</summary>
    /// <param name="model">A scoring graph or compact model.</param>
    public static WeightExecution FormOf(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var node = model.Graph.Node.FirstOrDefault(n => n.OpType == "MatMulNBits" && n.Domain == Domain);
        return node is null ? WeightExecution.DecodedFloat
            : OnnxAttributes.Int(node, "accuracy_level", 0) == 4 ? WeightExecution.MatMulNBitsInt8Activations : WeightExecution.MatMulNBits;
    }

    /// <summary>A weight decoded from codes: its shape, codes (row-major) and the value of code 1 (one, or one per row of dimension 0).</summary>
    private sealed record Decoded(long[] Dims, sbyte[] Codes, float[] Scales);

    /// <summary>Reads the codes and scale behind <paramref name="weight"/> when one of this library's decodes computes it; else null.</summary>
    private static Decoded? ReadDecoded(string weight, IReadOnlyDictionary<string, NodeProto> producers, IReadOnlyDictionary<string, TensorProto> initializers)
    {
        if (!producers.TryGetValue(weight, out var decode))
        {
            return null;
        }
        if (decode.OpType == "DequantizeLinear" && decode.Input.Count >= 2 && (decode.Input.Count < 3 || string.IsNullOrEmpty(decode.Input[2]))
            && OnnxAttributes.Find(decode, "block_size") is not { I: > 0 }
            && initializers.TryGetValue(decode.Input[0], out var stored) && initializers.TryGetValue(decode.Input[1], out var dqScale)
            && Codes(stored) is { } dqCodes && Floats(dqScale) is { } dqScales)
        {
            long axis = OnnxAttributes.Int(decode, "axis", 1);
            return dqScales.Length == 1 || stored.Dims.Count > 0 && (axis == 0 || axis == -stored.Dims.Count) && dqScales.Length == stored.Dims[0]
                ? new Decoded(stored.Dims.ToArray(), dqCodes, dqScales) : null;
        }
        if (decode.OpType != "Mul" || decode.Input.Count != 2 || !initializers.TryGetValue(decode.Input[1], out var scale) || Floats(scale) is not { } scales
            || !producers.TryGetValue(decode.Input[0], out var cast) || cast.OpType != "Cast" || cast.Input.Count != 1
            || OnnxAttributes.Int(cast, "to", 0) != OnnxTensorConversion.DataTypes.Float)
        {
            return null;
        }
        long[] dims;
        sbyte[] codes;
        if (producers.TryGetValue(cast.Input[0], out var constant) && constant.OpType == "Constant" && ConstantValue(constant) is { } value
            && Codes(value) is { } read)
        {
            // Mul(Cast(Constant codes), scale): ScoringGraph.DecodeWithCastAndMul.
            dims = value.Dims.ToArray();
            codes = read;
        }
        else if (cast.Output[0] == weight + "_cbp_float" && producers.TryGetValue(weight + "_cbp_bits", out var bitsNode) && ConstantValue(bitsNode) is { } packed
            && producers.TryGetValue(weight + "_cbp_shape", out var shapeNode) && ConstantValue(shapeNode) is { DataType: OnnxTensorConversion.DataTypes.Int64 } shape
            && packed.DataType == OnnxTensorConversion.DataTypes.UInt8)
        {
            // The one-bit chain of OneBitDecode: bit set = code +1, else -1, eight per byte, first element in the lowest bit.
            dims = shape.RawData.IsEmpty ? shape.Int64Data.ToArray() : OnnxTensorConversion.Cast<long>(shape.RawData.ToByteArray(), shape.Dims.Aggregate(1L, (a, b) => a * b), shape);
            long count = dims.Aggregate(1L, (a, b) => a * b);
            var bytes = packed.RawData.ToByteArray();
            if (dims.Any(d => d <= 0) || bytes.LongLength * 8 < count)
            {
                return null;
            }
            codes = new sbyte[count];
            for (long j = 0; j < count; j++)
            {
                codes[j] = (sbyte)(((bytes[j / 8] >> (int)(j % 8)) & 1) == 1 ? 1 : -1);
            }
        }
        else
        {
            return null;
        }
        // The scale broadcasts as a scalar, or along dimension 0 only (shape [d0, 1, ...]).
        // A scale of higher rank than the codes would broadcast the weight to more dimensions.
        bool perRow = scales.Length > 1 && dims.Length > 0 && scales.Length == dims[0] && scale.Dims.Count == dims.Length && scale.Dims.Skip(1).All(d => d == 1);
        return (scales.Length == 1 && scale.Dims.Count <= dims.Length) || perRow ? new Decoded(dims, codes, scales) : null;
    }

    /// <summary>Signed integer codes of an INT8, INT4 or INT2 tensor; null for other types.</summary>
    private static sbyte[]? Codes(TensorProto tensor)
    {
        if (tensor.ExternalData.Count > 0 || tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            return null;
        }
        long count = tensor.Dims.Aggregate(1L, (a, b) => a * b);
        byte[] raw = tensor.RawData.IsEmpty ? tensor.Int32Data.Select(v => (byte)v).ToArray() : tensor.RawData.ToByteArray();
        return tensor.DataType switch
        {
            OnnxTensorConversion.DataTypes.Int8 => raw.LongLength == count ? raw.Select(b => unchecked((sbyte)b)).ToArray() : throw Malformed(tensor, raw.LongLength, count),
            OnnxTensorConversion.DataTypes.Int4 => OnnxTensorConversion.Unpack(raw, count, 4, signed: true, tensor.Name),
            OnnxTensorConversion.DataTypes.Int2 => OnnxTensorConversion.Unpack(raw, count, 2, signed: true, tensor.Name),
            _ => null,
        };
    }

    private static InvalidDataException Malformed(TensorProto tensor, long bytes, long count) =>
        new($"Tensor '{tensor.Name}' has {bytes} bytes of int8 codes; its dimensions [{string.Join(", ", tensor.Dims)}] need {count}.");

    /// <summary>The values of a float tensor; null for other types or external data.</summary>
    private static float[]? Floats(TensorProto tensor)
    {
        if (tensor.DataType != OnnxTensorConversion.DataTypes.Float || tensor.ExternalData.Count > 0)
        {
            return null;
        }
        long count = tensor.Dims.Aggregate(1L, (a, b) => a * b);
        return tensor.RawData.IsEmpty ? OnnxTensorConversion.Check(tensor.FloatData.ToArray(), count, tensor)
            : OnnxTensorConversion.Cast<float>(tensor.RawData.ToByteArray(), count, tensor);
    }

    private static TensorProto? ConstantValue(NodeProto constant) =>
        constant.OpType == "Constant" ? constant.Attribute.FirstOrDefault(a => a.Name == "value")?.T : null;

    /// <summary>The Gemm's C as MatMulNBits' bias [N]: C of N values ([N] or [1, N]) or one value repeated; null otherwise.</summary>
    private static TensorProto? BiasOf(TensorProto c, long n, string name)
    {
        if (Floats(c) is not { } values || c.Dims.Count > 2 || c.Dims.Count == 2 && c.Dims[0] != 1)
        {
            return null;
        }
        return values.Length == n ? OnnxTensorConversion.FromFloat(name, new[] { n }, values)
            : values.Length == 1 ? OnnxTensorConversion.FromFloat(name, new[] { n }, Enumerable.Repeat(values[0], (int)n).ToArray()) : null;
    }

    /// <summary>Codes q = c + zero as MatMulNBits' B: [N][blocks][BlockSize x bits / 8] bytes, each block packed along K.</summary>
    private static byte[] PackRows(Decoded weight, bool rowsAreOutputs, long n, long k, int bits, int zero)
    {
        long blocks = (k + BlockSize - 1) / BlockSize;
        long rowBytes = blocks * BlockSize * bits / 8;
        var packed = new byte[n * rowBytes];
        int perByte = 8 / bits;
        for (long row = 0; row < n; row++)
        {
            for (long col = 0; col < blocks * BlockSize; col++)
            {
                int q = col < k ? weight.Codes[rowsAreOutputs ? row * k + col : col * n + row] + zero : zero;
                packed[row * rowBytes + col / perByte] |= (byte)(q << (int)(bits * (col % perByte)));
            }
        }
        return packed;
    }

    /// <summary>How many nodes read each tensor, graph outputs counted as readers.</summary>
    private static Dictionary<string, int> Uses(GraphProto graph)
    {
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string name in graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)))
        {
            uses[name] = uses.GetValueOrDefault(name) + 1;
        }
        return uses;
    }

    /// <summary>Drops nodes none of whose outputs is read (the decodes of rewritten weights), then initializers nothing reads.</summary>
    private static void RemoveDeadNodes(GraphProto graph)
    {
        bool removed = true;
        while (removed)
        {
            var read = new HashSet<string>(graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)), StringComparer.Ordinal);
            var dead = graph.Node.Where(n => n.Output.All(o => !read.Contains(o))).ToList();
            removed = dead.Count > 0;
            foreach (var node in dead)
            {
                graph.Node.Remove(node);
            }
        }
        var produced = new HashSet<string>(graph.Node.SelectMany(n => n.Output), StringComparer.Ordinal);
        foreach (var stale in graph.ValueInfo.Where(v => !produced.Contains(v.Name)).ToList())
        {
            graph.ValueInfo.Remove(stale);
        }
        ScoringGraph.RemoveUnusedInitializers(graph);
    }
}
