using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Cbp.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// Import coverage of torchvision's classification zoo at full size (the files <c>build/make-zoo-models.py full</c>
/// writes to artifacts/zoo, not committed): per model and opset, whether it imports, its parity with ONNX Runtime, one CBP
/// step, the compact file (SaveOnnx's form, INT4 codes, ternary levels) against the float file, and ONNX Runtime CPU
/// rows/s of both, taking turns.
/// </summary>
internal static class ZooCoverageBenchmark
{
    /// <summary>The families in the order of the table (build/make-zoo-models.py's names).</summary>
    private static readonly string[] Families =
    {
        "resnet18", "resnext50_32x4d", "wide_resnet50_2", "vgg11_bn", "alexnet", "squeezenet1_1", "densenet121", "googlenet",
        "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5", "efficientnet_b0", "regnet_y_400mf",
        "convnext_tiny", "vit_tiny_16",
    };

    public static string Run(bool quick, string repoRoot, string command, string? only)
    {
        string folder = Path.Combine(repoRoot, "artifacts", "zoo");
        var rows = new List<string>();
        int batch = quick ? 1 : 4, repetitions = quick ? 1 : 3;
        foreach (string family in Families.Where(f => only is null || only.Split(',').Contains(f)))
        {
            foreach (int opset in new[] { 13, 17 })
            {
                string path = Path.Combine(folder, $"{family}-op{opset}.onnx");
                if (!File.Exists(path))
                {
                    throw new FileNotFoundException($"{path} is missing; run /usr/bin/python3 build/make-zoo-models.py full first.", path);
                }
                Console.WriteLine($"{family} opset {opset}...");
                try
                {
                    rows.Add(Measure(family, opset, path, batch, repetitions));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // One model's failure is a row of the table, not the end of the run.
                    rows.Add($"| {family} | {opset} | failed: {e.GetType().Name}: {e.Message.Replace('|', '/').ReplaceLineEndings(" ")} | | | | | | | | |");
                }
                GC.Collect();
            }
        }
        var report = new StringBuilder();
        report.AppendLine("# torchvision classification zoo: import coverage, compact size and ONNX Runtime speed");
        report.AppendLine();
        report.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `{command}` on {Environment.ProcessorCount} cores " +
            $"({RuntimeInformation.OSDescription.Trim()}), ONNX Runtime {OrtEnv.Instance().GetVersionString()} CPU execution provider with default session options " +
            "(what ML.NET's ApplyOnnxModel uses). Models: `/usr/bin/python3 build/make-zoo-models.py full` (torch 1.13.1, torchvision 0.14.1, Debian bookworm): " +
            "the full-size torchvision constructors with random weights (seed 0) and random batch-norm statistics, 1,000 classes, 3x224x224 input, exported at opsets " +
            "13 and 17 with a dynamic batch. vit_tiny_16 is torchvision's VisionTransformer at ViT-Ti/16 size (12 layers, 3 heads, width 192), torchvision's own " +
            "smallest ViT (vit_b_16) being 86M parameters.");
        report.AppendLine();
        report.AppendLine("- imports: the TorchSharp interpreter loads the file. parity: max |TorchSharp - ORT| / max(1, max |ORT|) on one random image (target 1e-4).");
        report.AppendLine("- CBP step: one constrained step (ternary, batch of 2 random images) with a finite loss.");
        report.AppendLine("- float kept: the share of Conv/Gemm/MatMul weights left float (the first and last weight layers, the library's default); " +
            "compact / float: bytes of the file SaveOnnx writes (INT4 codes of ternary levels in Constant nodes, Cast and Mul) over the float export. " +
            "Target: <= 0.2 wherever the float-kept layers hold under 8% of the weights.");
        report.AppendLine($"- rows/s: ONNX Runtime CPU, batches of {batch} images, median of {repetitions} runs after a warm-up, compact and float taking turns.");
        report.AppendLine();
        report.AppendLine("| model | opset | imports | parity | CBP step | float kept | compact / float bytes | target met | rows/s compact | rows/s float | compact vs float |");
        report.AppendLine("|---|---:|---|---:|---|---:|---:|---|---:|---:|---:|");
        foreach (string row in rows)
        {
            report.AppendLine(row);
        }
        return report.ToString();
    }

    private static string Measure(string family, int opset, string path, int batch, int repetitions)
    {
        var model = OnnxModelFile.Load(path);
        OnnxGraphModule module;
        try
        {
            module = new OnnxGraphModule(model);
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            return $"| {family} | {opset} | no: {e.Message.Replace('|', '/')} | | | | | | | | |";
        }
        using (module)
        {
            long[] row = model.Graph.Input[0].Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue).ToArray();
            var random = new Random(3);
            float[] Image(int rows) => Enumerable.Range(0, rows * (int)row.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
            var one = Image(1);
            long[] oneShape = new long[] { 1 }.Concat(row).ToArray();
            double parity;
            using (var noGrad = no_grad())
            using (var scope = NewDisposeScope())
            {
                module.eval();
                var torchOut = module.forward(tensor(one, oneShape)).contiguous().data<float>().ToArray();
                var ortOut = RunOnce(OnnxModelFile.ToBytes(model), one, oneShape);
                double scale = Math.Max(1, ortOut.Max(v => Math.Abs(v)));
                parity = torchOut.Length != ortOut.Length ? double.NaN : torchOut.Zip(ortOut, (a, b) => Math.Abs(a - b)).Max() / scale;
            }

            var candidates = ConstrainedInitializerSelection.Candidates(model);
            var names = ConstrainedInitializerSelection.Select(model);
            long Weights(string name) => model.Graph.Initializer.First(t => t.Name == name).Dims.Aggregate(1L, (a, b) => a * b);
            double floatKept = 1 - names.Sum(Weights) / (double)candidates.Sum(Weights);

            string step;
            TorchSharp.torch.random.manual_seed(1);
            using (var x = randn(new long[] { 2 }.Concat(row).ToArray()))
            using (var y = tensor(new long[] { 0, 1 }))
            using (var data = new InMemoryBatchSource(x, y, 2, shuffle: false))
            using (var trainer = new CbpTrainer(module, (o, l) => nn.functional.cross_entropy(o, l), names.Select(module.MemberName), WeightConstraint.Ternary,
                new CbpTrainerOptions { Epochs = 1, LearningRate = 1e-3 }))
            {
                var report = trainer.TrainEpoch(data);
                step = double.IsFinite(report.TaskLoss) ? $"yes (loss {report.TaskLoss:F2})" : $"no (loss {report.TaskLoss})";
                trainer.ProjectToLevels();
                var constrained = trainer.Scales.Select(s => new QuantizedInitializer(module.InitializerName(s.Key), WeightConstraint.Ternary, s.Value)).ToList();
                var compact = OnnxModelFile.ToBytes(ScoringGraph.DecodeWithCastAndMul(QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Int4)));
                var floatBytes = OnnxModelFile.ToBytes(QuantizedOnnxExporter.Export(module, Array.Empty<QuantizedInitializer>(), WeightStorage.Float32));
                double ratio = compact.Length / (double)floatBytes.Length;
                string target = floatKept < 0.08 ? (ratio <= 0.2 ? "yes" : "**no**") : "n/a (float kept >= 8%)";
                var input = Image(batch);
                long[] shape = new long[] { batch }.Concat(row).ToArray();
                using var compactSession = new InferenceSession(compact);
                using var floatSession = new InferenceSession(floatBytes);
                var speed = TakingTurns.MedianPerSecond(new Dictionary<string, Func<long>>
                {
                    ["compact"] = Scorer(compactSession, input, shape),
                    ["float"] = Scorer(floatSession, input, shape),
                }, batch, repetitions);
                string parityCell = parity <= 1e-4 ? $"{parity:E1}" : $"**{parity:E1}** (over 1e-4)";
                return $"| {family} | {opset} | yes | {parityCell} | {step} | {floatKept:P1} | {ratio:F3} | {target} | {speed["compact"]:N1} | {speed["float"]:N1} | {speed["compact"] / speed["float"]:F2}x |";
            }
        }
    }

    private static float[] RunOnce(byte[] model, float[] input, long[] shape)
    {
        using var session = new InferenceSession(model);
        var feed = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), new DenseTensor<float>(input, shape.Select(d => (int)d).ToArray())) };
        using var results = session.Run(feed);
        return results.First().AsTensor<float>().ToArray();
    }

    /// <summary>A path that scores the batch with a session made before timing starts.</summary>
    private static Func<long> Scorer(InferenceSession session, float[] input, long[] shape)
    {
        var tensorInput = new DenseTensor<float>(input, shape.Select(d => (int)d).ToArray());
        string name = session.InputMetadata.Keys.First();
        return () =>
        {
            using var results = session.Run(new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(name, tensorInput) });
            return results.First().AsTensor<float>().Dimensions[0];
        };
    }
}
