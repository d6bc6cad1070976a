using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// Size of the compact ONNX export versus float, per storage, and ONNX Runtime CPU scoring speed of the compact models
/// versus the float model: ResNet-20 (built-in) and the imported pretrained ResNet-18.
/// </summary>
internal static class OnnxExportBenchmark
{
    public static string Run(bool quick, string repoRoot)
    {
        var report = new StringBuilder();
        report.AppendLine("# ONNX export: size and ONNX Runtime scoring speed, compact versus float");
        report.AppendLine();
        report.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `bash build/bench.sh{(quick ? " --quick" : "")} --suite onnx-export` on " +
            $"{Environment.ProcessorCount} cores ({RuntimeInformation.OSDescription.Trim()}), ONNX Runtime {OrtEnv.Instance().GetVersionString()} CPU execution provider " +
            "(session.qdq_matmulnbits_accuracy_level = 1 for exact math), 2 intra-op threads. Constrained layers: every Conv/Gemm weight but the first and last, " +
            "binary levels (naive rounding: sizes and speed do not depend on how the levels were reached). Speed: median of the timed runs, the models taking turns run by run.");
        report.AppendLine();
        string resNet18 = Path.Combine(AppContext.BaseDirectory, "models", "ResNet18.onnx");
        var cases = new List<(string Name, ModelProto Model, long[] Shape)>
        {
            ("ResNet-20 (CIFAR, 32x32)", CbpArchitecture.ResNet(20).Build(new long[] { 3, 32, 32 }, 10), new long[] { 64, 3, 32, 32 }),
            ("ResNet-18 (imported, 224x224)", OnnxModelFile.Load(resNet18), new long[] { quick ? 2 : 8, 3, 224, 224 }),
        };
        report.AppendLine("| model | storage | constrained layers, bytes | vs float | whole file, bytes | vs float | rows/s (ORT CPU) | vs float |");
        report.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, model, shape) in cases)
        {
            using var module = new OnnxGraphModule(model);
            var names = ConstrainedInitializerSelection.Select(model);
            var scales = Baselines.RoundToLevels(module, names.Select(module.MemberName), WeightConstraint.Binary);
            var constrained = names.Select(n => new QuantizedInitializer(n, WeightConstraint.Binary, scales[module.MemberName(n)])).ToList();
            var storages = new[] { WeightStorage.Float32, WeightStorage.Int8, WeightStorage.Int4, WeightStorage.Int2, WeightStorage.OneBit };
            var exported = storages.ToDictionary(s => s, s => QuantizedOnnxExporter.Export(module, constrained, s));
            var bytes = exported.ToDictionary(kv => kv.Key, kv => OnnxModelFile.ToBytes(kv.Value));
            var layerBytes = exported.ToDictionary(kv => kv.Key, kv => ConstrainedBytes(kv.Value, names));
            var speed = RowsPerSecond(bytes, shape, quick ? 3 : 15);
            foreach (var storage in storages)
            {
                report.AppendLine($"| {name} | {storage} | {layerBytes[storage]:N0} | {(double)layerBytes[storage] / layerBytes[WeightStorage.Float32]:F3} | " +
                    $"{bytes[storage].Length:N0} | {(double)bytes[storage].Length / bytes[WeightStorage.Float32].Length:F3} | {speed[storage]:N0} | {speed[storage] / speed[WeightStorage.Float32]:F2}x |");
            }
        }
        report.AppendLine();
        report.AppendLine("Constrained-layer bytes count the stored weight data: float32 values, or the integer codes (for OneBit, the packed bits of a Constant node) plus the scale of each layer.");
        return report.ToString();
    }

    private static long ConstrainedBytes(ModelProto model, IReadOnlyList<string> names)
    {
        long total = 0;
        foreach (var t in model.Graph.Initializer)
        {
            if (names.Contains(t.Name) || names.Any(n => t.Name == n + "_cbp_codes" || t.Name == n + "_cbp_scale"))
            {
                total += t.RawData.Length + t.FloatData.Count * 4L;
            }
        }
        // One-bit codes live in a Constant node (ONNX has no 1-bit initializer type).
        foreach (var node in model.Graph.Node.Where(n => n.OpType == "Constant" && names.Any(name => n.Output[0] == name + "_cbp_bits")))
        {
            total += node.Attribute[0].T.RawData.Length;
        }
        return total;
    }

    private static Dictionary<WeightStorage, double> RowsPerSecond(Dictionary<WeightStorage, byte[]> models, long[] shape, int runs)
    {
        var random = new Random(1);
        var input = new DenseTensor<float>(Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)random.NextDouble()).ToArray(),
            shape.Select(d => (int)d).ToArray());
        var sessions = new Dictionary<WeightStorage, InferenceSession>();
        var seconds = models.Keys.ToDictionary(k => k, _ => new List<double>());
        try
        {
            foreach (var (storage, bytes) in models)
            {
                var options = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 };
                options.AddSessionConfigEntry("session.qdq_matmulnbits_accuracy_level", "1");
                if (Environment.GetEnvironmentVariable("CBP_BENCH_KEEP_QDQ") != "1")
                {
                    // Weight-only quantization: let constant folding decode DequantizeLinear of initializers once, at load.
                    options.AddSessionConfigEntry("session.disable_quant_qdq", "1");
                }
                sessions[storage] = new InferenceSession(bytes, options);
            }
            for (int run = -2; run < runs; run++)
            {
                foreach (var (storage, session) in sessions)
                {
                    var feed = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), input) };
                    var clock = Stopwatch.StartNew();
                    using (session.Run(feed))
                    {
                    }
                    if (run >= 0)
                    {
                        seconds[storage].Add(clock.Elapsed.TotalSeconds);
                    }
                }
            }
        }
        finally
        {
            foreach (var s in sessions.Values)
            {
                s.Dispose();
            }
        }
        return seconds.ToDictionary(kv => kv.Key, kv => shape[0] / kv.Value.OrderBy(v => v).ElementAt(kv.Value.Count / 2));
    }
}
