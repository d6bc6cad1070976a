using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Cbp.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// What a scoring session holds and how fast it runs, per form of the constrained weights: float initializers, the
/// DequantizeLinear export, SaveOnnx's Cast/Mul form (decoded at load), MatMulNBits with fp32 activations and with int8
/// activations. Memory is each session's resident-set growth in a fresh process; speed is rows/s at batch 1 and 256, the
/// forms taking turns; kernel placement is read from ONNX Runtime's profile.
/// </summary>
internal static class LowBitExecutionBenchmark
{
    private sealed record Form(string Name, ModelProto Model, bool DefaultOptions = false);

    private static readonly string[] WeightOps = { "MatMulNBits", "Gemm", "MatMul", "FusedGemm", "FusedMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "DequantizeLinear", "Conv", "FusedConv" };

    public static string Run(bool quick, string command)
    {
        var report = new StringBuilder();
        report.AppendLine("# Low-bit execution: session memory and speed per form of the constrained weights");
        report.AppendLine();
        report.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `{command}` on {Environment.ProcessorCount} cores ({RuntimeInformation.OSDescription.Trim()}, " +
            $"{RuntimeInformation.ProcessArchitecture}), ONNX Runtime {OrtEnv.Instance().GetVersionString()} CPU execution provider, 1 intra-op thread, default graph " +
            "optimisation (ORT_ENABLE_ALL). Every constrained layer (all Gemm/Conv weights, first and last included) is rounded onto the levels (ternary: 2-bit codes; " +
            "2-bit shift: 4-bit codes). Forms: float (the same values as float32 initializers); DequantizeLinear (the INT2/INT4 export, session with default " +
            "options, as another ONNX Runtime user would run it); Cast/Mul (SaveOnnx's file, decoded to float when the session starts: WeightExecution.DecodedFloat); " +
            "MatMulNBits (WeightExecution.MatMulNBits: fp32 activations, accuracy_level 1, codes at 4 bits, block 128), MatMulNBits int8 " +
            "(WeightExecution.MatMulNBitsInt8Activations: accuracy_level 4, ternary codes at 2 bits) and, for ternary, 2-bit codes with fp32 activations (which the library does not build); " +
            "for a 5-bit uniform level set (codes -15..15, 8 bits), 8-bit codes with fp32 activations (not built: the exact form leaves such layers decoded) and with int8 activations. Sessions of the other forms set " +
            "session.qdq_matmulnbits_accuracy_level = 1 as the library's do (one session per form, one thread; the library's own sessions also split a batch across cores). Memory: resident-set growth of a fresh process when the session is created and has " +
            "scored one row (after an empty warm-up session). Speed: median rows/s of the forms taking turns. Error: max |y - y_float| / max |y_float| on 64 rows.");
        report.AppendLine();
        var cases = new List<(string Name, ModelProto Model, long[] Row)>
        {
            ("MLP 784-512-512-10", CbpArchitecture.Mlp(new[] { 512, 512 }).Build(new long[] { 784 }, 10, seed: 1), new long[] { 784 }),
            (quick ? "MLP 1024-1024-1024-10" : "MLP 4096-4096-4096-10", CbpArchitecture.Mlp(quick ? new[] { 1024, 1024 } : new[] { 4096, 4096 }).Build(new long[] { quick ? 1024 : 4096 }, 10, seed: 1), new long[] { quick ? 1024 : 4096 }),
            ("small CNN (28x28)", CbpArchitecture.SmallCnn().Build(new long[] { 1, 28, 28 }, 10, seed: 1), new long[] { 1, 28, 28 }),
        };
        report.AppendLine("| network | levels | form | session MB | vs float | rows/s batch 1 | vs float | rows/s batch 256 | vs float | error | weight kernels (provider) |");
        report.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
        string folder = Path.Combine(Path.GetTempPath(), $"cbp-lowbit-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            foreach (var (name, model, row) in cases)
            {
                var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false);
                var wide = WeightConstraint.Uniform(5);
                foreach (var (constraint, storage, codes) in new[]
                {
                    (WeightConstraint.Ternary, WeightStorage.Int2, "ternary"), (WeightConstraint.TwoBitShift, WeightStorage.Int4, "2-bit shift"),
                    (wide, WeightStorage.Int8, "uniform 5-bit (8-bit codes)"),
                })
                {
                    // A fresh module per level set: rounding weights already on ternary levels would leave three codes.
                    using var module = new OnnxGraphModule(model);
                    var scales = Baselines.RoundToLevels(module, names.Select(module.MemberName), constraint);
                    var constrained = names.Select(n => new QuantizedInitializer(n, constraint, scales[module.MemberName(n)])).ToList();
                    var dq = QuantizedOnnxExporter.Export(module, constrained, storage);
                    var castMul = ScoringGraph.DecodeWithCastAndMul(dq);
                    var forms = constraint == wide ? new List<Form>
                    {
                        // Codes of 31 values need 8 bits: the exact form leaves such layers decoded; here is why.
                        new("float", QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Float32)),
                        new("Cast/Mul (decoded)", castMul),
                        new("MatMulNBits 8-bit, fp32 (not used)", MatMulNBitsGraph.Rewrite(castMul, WeightExecution.MatMulNBits, minimumBits: 4, maximumBits: 8, out _)),
                        new("MatMulNBits int8 (8-bit)", MatMulNBitsGraph.Rewrite(castMul, WeightExecution.MatMulNBitsInt8Activations, forCuda: false, out _)),
                    } : new List<Form>
                    {
                        new("float", QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Float32)),
                        new("DequantizeLinear", dq, DefaultOptions: true),
                        new("Cast/Mul (decoded)", castMul),
                        new("MatMulNBits (4-bit)", MatMulNBitsGraph.Rewrite(castMul, WeightExecution.MatMulNBits, forCuda: false, out _)),
                        new(constraint == WeightConstraint.Ternary ? "MatMulNBits int8 (2-bit)" : "MatMulNBits int8 (4-bit)",
                            MatMulNBitsGraph.Rewrite(castMul, WeightExecution.MatMulNBitsInt8Activations, forCuda: false, out _)),
                    };
                    if (constraint == WeightConstraint.Ternary)
                    {
                        // Not a form the library builds: 2-bit codes with fp32 activations, to show why it stores them at 4 bits.
                        forms.Add(new("MatMulNBits 2-bit, fp32 (not used)", MatMulNBitsGraph.Rewrite(castMul, WeightExecution.MatMulNBits, minimumBits: 2, maximumBits: 8, out _)));
                    }
                    Console.WriteLine($"low-bit: {name}, {codes}");
                    var files = forms.ToDictionary(f => f.Name, f => Write(folder, f));
                    var memory = forms.ToDictionary(f => f.Name, f => SessionMegabytes(files[f.Name], f.DefaultOptions, row));
                    var sessions = forms.ToDictionary(f => f.Name, f => new InferenceSession(files[f.Name], Options(f.DefaultOptions)));
                    try
                    {
                        var one = Speed(sessions, row, 1, quick ? 20 : (row[0] >= 4096 ? 100 : 400), quick ? 2 : 5);
                        var many = Speed(sessions, row, 256, quick ? 1 : (row[0] >= 4096 ? 2 : 8), quick ? 2 : 5);
                        var probe = Input(row, 64, 5);
                        var reference = Run(sessions["float"], probe);
                        double scale = reference.Max(v => Math.Abs(v));
                        foreach (var form in forms)
                        {
                            double error = Run(sessions[form.Name], probe).Zip(reference, (a, b) => Math.Abs(a - b)).Max() / scale;
                            report.AppendLine($"| {name} | {codes} | {form.Name} | {memory[form.Name]:N1} | {memory[form.Name] / memory["float"]:F3} | {one[form.Name]:N0} | {one[form.Name] / one["float"]:F2}x | " +
                                $"{many[form.Name]:N0} | {many[form.Name] / many["float"]:F2}x | {error:E1} | {Kernels(files[form.Name], form.DefaultOptions, row)} |");
                        }
                    }
                    finally
                    {
                        foreach (var session in sessions.Values)
                        {
                            session.Dispose();
                        }
                    }
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        report.AppendLine();
        report.AppendLine("Session MB counts everything a session adds: weights, prepacked kernel buffers and the activations of one row. Kernels are the weight-bearing " +
            "nodes ONNX Runtime ran after its graph optimisations (MatMulIntegerToFloat / DynamicQuantizeMatMul mean int8 activations), with their execution provider.");
        return report.ToString();
    }

    /// <summary>The child process: creates one session and prints its resident-set growth (see <see cref="SessionMegabytes"/>).</summary>
    public static int ChildMain(string[] args)
    {
        string file = args[Array.IndexOf(args, "--model") + 1];
        bool defaults = args.Contains("--default-options");
        long[] row = args[Array.IndexOf(args, "--row") + 1].Split('x').Select(long.Parse).ToArray();
        // Warm up ONNX Runtime's environment and allocators with an empty model's session.
        using (var warm = new InferenceSession(OnnxModelFile.ToBytes(Identity()), Options(defaults)))
        {
            using var _ = warm.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(new[] { 1f }, new[] { 1, 1 })) });
        }
        Collect();
        long before = ResidentKib();
        using var session = new InferenceSession(file, Options(defaults));
        Run(session, Input(row, 1, 1));
        Collect();
        long after = ResidentKib();
        Console.WriteLine(FormattableString.Invariant($"RESULT kib={after - before}"));
        return 0;
    }

    private static double SessionMegabytes(string file, bool defaults, long[] row)
    {
        string line = ChildProcess.Result($"memory of {file}", new[] { "--suite", "lowbit-child", "--model", file, "--row", string.Join("x", row) }
            .Concat(defaults ? new[] { "--default-options" } : Array.Empty<string>()));
        return long.Parse(line["kib=".Length..], CultureInfo.InvariantCulture) / 1024.0;
    }

    private static Dictionary<string, double> Speed(Dictionary<string, InferenceSession> sessions, long[] row, int batch, int runs, int repetitions)
    {
        var input = Input(row, batch, 2);
        var paths = sessions.ToDictionary(kv => kv.Key, kv => (Func<long>)(() =>
        {
            for (int i = 0; i < runs; i++)
            {
                Run(kv.Value, input);
            }
            return (long)runs * batch;
        }));
        return TakingTurns.MedianPerSecond(paths, (long)runs * batch, repetitions);
    }

    /// <summary>The weight-bearing nodes ONNX Runtime ran, counted by op and provider, from a profiled run of one row.</summary>
    private static string Kernels(string file, bool defaults, long[] row)
    {
        using var options = Options(defaults);
        options.EnableProfiling = true;
        options.ProfileOutputPathPrefix = Path.Combine(Path.GetDirectoryName(file)!, "profile");
        string profile;
        using (var session = new InferenceSession(file, options))
        {
            Run(session, Input(row, 1, 3));
            profile = session.EndProfiling();
        }
        using var json = JsonDocument.Parse(File.ReadAllText(profile));
        File.Delete(profile);
        var counts = new SortedDictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var e in json.RootElement.EnumerateArray())
        {
            if (e.TryGetProperty("cat", out var cat) && cat.GetString() == "Node" && e.TryGetProperty("args", out var a)
                && a.TryGetProperty("op_name", out var op) && WeightOps.Contains(op.GetString()) && a.TryGetProperty("provider", out var provider))
            {
                string key = $"{op.GetString()} ({provider.GetString()!.Replace("ExecutionProvider", "", StringComparison.Ordinal)})";
                (counts.TryGetValue(key, out var nodes) ? nodes : counts[key] = new HashSet<string>()).Add(e.GetProperty("name").GetString()!.Replace("_kernel_time", "", StringComparison.Ordinal));
            }
        }
        return string.Join(", ", counts.Select(kv => $"{kv.Key} x{kv.Value.Count}"));
    }

    private static SessionOptions Options(bool defaults)
    {
        var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        if (!defaults)
        {
            options.AddSessionConfigEntry("session.qdq_matmulnbits_accuracy_level", "1");
        }
        return options;
    }

    private static string Write(string folder, Form form)
    {
        string path = Path.Combine(folder, form.Name.Replace(' ', '_').Replace('/', '_').Replace("(", "", StringComparison.Ordinal).Replace(")", "", StringComparison.Ordinal) + ".onnx");
        File.WriteAllBytes(path, OnnxModelFile.ToBytes(form.Model));
        return path;
    }

    private static DenseTensor<float> Input(long[] row, int batch, int seed)
    {
        var random = new Random(seed);
        long width = row.Aggregate(1L, (a, b) => a * b);
        var values = Enumerable.Range(0, (int)(width * batch)).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        return new DenseTensor<float>(values, new[] { batch }.Concat(row.Select(d => (int)d)).ToArray());
    }

    private static float[] Run(InferenceSession session, DenseTensor<float> input)
    {
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), input) });
        return results.First().AsTensor<float>().ToArray();
    }

    private static ModelProto Identity()
    {
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "warm-up" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = 13 });
        var node = new NodeProto { OpType = "Identity", Name = "identity" };
        node.Input.Add("x");
        node.Output.Add("y");
        model.Graph.Node.Add(node);
        model.Graph.Input.Add(Float("x"));
        model.Graph.Output.Add(Float("y"));
        return model;

        static ValueInfoProto Float(string name)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = OnnxTensorConversion.DataTypes.Float, Shape = shape } } };
        }
    }

    private static void Collect()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    private static long ResidentKib() => ChildProcess.StatusKib("VmRSS");
}
