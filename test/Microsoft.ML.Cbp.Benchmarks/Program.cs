using System;
using System.Globalization;
using System.IO;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>Runs the benchmarks and writes their report. Not a test: nothing here asserts on wall-clock time.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        bool quick = args.Contains("--quick");
        string suite = ArgValue(args, "--suite") ?? "all";
        string folder = Path.Combine(FindRepoRoot(), "docs", "benchmarks");
        if (suite == "scoring-gpu")
        {
            return ScoringOnGpu(args, quick, folder);
        }
        if (suite == "fuzz-child")
        {
            return OnnxLoadFuzz.ChildMain(args);
        }
        if (suite == "fuzz")
        {
            int mutants = int.Parse(ArgValue(args, "--mutants") ?? (quick ? "500" : "12600"), CultureInfo.InvariantCulture);
            int fuzzSeed = int.Parse(ArgValue(args, "--seed") ?? "1", CultureInfo.InvariantCulture);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var failures = OnnxLoadFuzz.Run(fuzzSeed, mutants, System.Reflection.Assembly.GetExecutingAssembly().Location);
            Write(Path.Combine(folder, "fuzz.md"), $"# Load-stage mutation fuzz\n\nMeasured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `bash build/bench.sh {string.Join(" ", args)}`: " +
                $"{mutants:N0} mutants (seed {fuzzSeed}) of a small MLP and a small CNN through OnnxModelFile.Parse and OnnxGraphModule, in {clock.Elapsed.TotalSeconds:N0} s. " +
                $"Only InvalidDataException, NotSupportedException and ArgumentException may come out.\n\n" +
                (failures.Count == 0 ? "No mutant let another exception out or ended the process.\n" : "Failures:\n\n" + string.Join("\n", failures.Select(f => "- " + f)) + "\n"));
            return failures.Count == 0 ? 0 : 1;
        }
        if (suite == "mpi-bench-child")
        {
            return DataParallelBenchmark.ChildMain(args);
        }
        if (suite == "data-parallel")
        {
            Write(Path.Combine(folder, quick ? "data-parallel-quick.md" : "data-parallel.md"), DataParallelBenchmark.Run(quick, ("bash build/bench.sh " + string.Join(" ", args)).Trim()));
            return 0;
        }
        if (suite == "mpi-fit")
        {
            return MpiFitCheck.ChildMain(args);
        }
        if (suite == "mpi-train")
        {
            return MpiTrainCheck.ChildMain(args);
        }
        if (suite == "mpi-check")
        {
            return MpiCheck.Run();
        }
        if (suite == "lowbit-child")
        {
            return LowBitExecutionBenchmark.ChildMain(args);
        }
        if (suite == "lowbit")
        {
            Write(Path.Combine(folder, quick ? "low-bit-execution-quick.md" : "low-bit-execution.md"), LowBitExecutionBenchmark.Run(quick, ("bash build/bench.sh " + string.Join(" ", args)).Trim()));
            return 0;
        }
        if (suite == "budget")
        {
            int seeds = int.Parse(ArgValue(args, "--seeds") ?? "1", CultureInfo.InvariantCulture);
            Write(Path.Combine(folder, quick ? "size-budget-quick.md" : "size-budget.md"), SizeBudgetBenchmark.Report(quick, seeds, ArgValue(args, "--network") ?? "all", ("bash build/bench.sh " + string.Join(" ", args)).Trim()));
            return 0;
        }
        if (suite == "zoo")
        {
            Write(Path.Combine(folder, "zoo-coverage.md"), ZooCoverageBenchmark.Run(quick, FindRepoRoot(), ("bash build/bench.sh " + string.Join(" ", args)).Trim(), ArgValue(args, "--models")));
            return 0;
        }
        if (suite == "streaming-child")
        {
            return StreamingBenchmark.ChildMain(args);
        }
        if (suite == "streaming")
        {
            string part = ArgValue(args, "--part") ?? "all";
            Write(Path.Combine(folder, part == "all" ? "streaming.md" : $"streaming-{part}.md"), StreamingBenchmark.Run(quick, ("bash build/bench.sh " + string.Join(" ", args)).Trim(), part));
            return 0;
        }
        if (suite is "all" or "accuracy")
        {
            torch.set_num_threads(1);
            var settings = StudySettingsFrom(args, quick);
            string command = "bash build/bench.sh " + string.Join(" ", args);
            var rows = AccuracyStudy.Run(settings, Console.WriteLine);
            var speed = AccuracyStudyReport.MeasureSpeedAndSize(quick);
            string scoring = ScoringBenchmark.Run(quick);
            Directory.CreateDirectory(folder);
            string name = ArgValue(args, "--report") ?? "accuracy-study";
            var charts = AccuracyStudyReport.Charts(rows, folder, name == "accuracy-study" ? "" : name + "-");
            Write(Path.Combine(folder, name + ".md"), AccuracyStudyReport.Markdown(settings, rows, speed, scoring, command.Trim(), charts));
            if (suite == "accuracy")
            {
                return 0;
            }
        }
        if (suite == "speed")
        {
            // The accuracy study's speed and size section on its own (minutes instead of hours).
            var speed = AccuracyStudyReport.MeasureSpeedAndSize(quick);
            Write(Path.Combine(folder, "speed-and-size.md"), $"# Speed and size: compact INT4 models versus float in ONNX Runtime\n\nMeasured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC " +
                $"with `bash build/bench.sh {string.Join(" ", args)}` on {Environment.ProcessorCount} cores ({RuntimeInformation.OSDescription.Trim()}), ONNX Runtime " +
                $"{Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetVersionString()} CPU execution provider, the scoring session CbpQuantize uses (one single-threaded " +
                "Run per core on slices of each 256-row batch). Binary weights (scale = mean |w|) on freshly initialised networks; speed does not depend on the " +
                "weights' values. Median of the runs, the two models taking turns in alternating order.\n\n" + AccuracyStudyReport.SpeedMarkdown(speed, "no training in this run (see the accuracy study reports for training runs)"));
            return 0;
        }
        if (suite is "all" or "scoring")
        {
            Write(Path.Combine(folder, "scoring.md"), ScoringBenchmark.Run(quick));
            if (suite == "scoring")
            {
                return 0;
            }
        }
        if (suite is "all" or "onnx-export")
        {
            string exportReport = OnnxExportBenchmark.Run(quick, FindRepoRoot());
            Write(Path.Combine(folder, "onnx-export.md"), exportReport);
            if (suite == "onnx-export")
            {
                return 0;
            }
        }
        string output = ArgValue(args, "--output") ?? Path.Combine(folder, "training-step.md");
        int threads = int.Parse(ArgValue(args, "--threads") ?? "1", CultureInfo.InvariantCulture);
        torch.set_num_threads(threads);
        int steps = quick ? 5 : 40, repetitions = quick ? 2 : 5;

        string only = ArgValue(args, "--network") ?? "all";
        var results = new List<StepTiming>();
        if (only is "all" or "cnn")
        {
            results.Add(TrainingStepBenchmark.Measure("small CNN (28x28)", TrainingStepBenchmark.SmallCnn, 64, steps, repetitions));
        }
        if (only is "all" or "mlp")
        {
            results.Add(TrainingStepBenchmark.Measure("MLP 784-512-512-10", TrainingStepBenchmark.Mlp, 256, steps, repetitions));
        }

        var report = new StringBuilder();
        report.AppendLine("# Training-step time: CBP versus float");
        report.AppendLine();
        report.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `bash build/bench.sh{(quick ? " --quick" : "")}` " +
            $"on {Environment.ProcessorCount} cores ({RuntimeInformation.OSDescription.Trim()}, {RuntimeInformation.ProcessArchitecture}), " +
            $"TorchSharp {typeof(torch).Assembly.GetName().Version} on {(torch.cuda.is_available() ? "CUDA" : "CPU")}, {threads} torch thread(s), " +
            $"binary constraint, first and last layers float, median of {repetitions} runs of {steps} steps after one warm-up run, the three modes taking turns run by run.");
        report.AppendLine("Each mode runs the same engine code with the same network, batch and data; only the mode differs.");
        report.AppendLine();
        report.AppendLine("| network | batch | constrained / all weights | float ms/step | straight-through ms/step | CBP ms/step | CBP / float |");
        report.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            report.AppendLine($"| {r.Network} | {r.BatchSize} | {r.ConstrainedWeights:N0} / {r.TotalWeights:N0} | {r.FloatStepMs:F2} | {r.StraightThroughStepMs:F2} | {r.CbpStepMs:F2} | {r.CbpOverFloat:F2}x |");
        }
        Write(output, report.ToString());
        return 0;
    }

    /// <summary>
    /// The CUDA scoring figures: --prepare DIR trains and exports the models (needs TorchSharp, any machine); --models DIR
    /// [--gpu N] [--output FILE] checks and measures them on a GPU (needs no libtorch); without either, both in turn.
    /// </summary>
    private static int ScoringOnGpu(string[] args, bool quick, string folder)
    {
        string? prepare = ArgValue(args, "--prepare");
        if (prepare != null)
        {
            CudaScoringBenchmark.Prepare(prepare);
            return 0;
        }
        string models = ArgValue(args, "--models") ?? Path.Combine(Path.GetTempPath(), "cbp-scoring-gpu-models");
        if (ArgValue(args, "--models") == null)
        {
            CudaScoringBenchmark.Prepare(models);
        }
        // --gpu cpu: a dry run of the same code on the CPU (no GPU here); its report is not written into docs.
        string gpuArg = ArgValue(args, "--gpu") ?? "0";
        int? gpu = gpuArg == "cpu" ? null : int.Parse(gpuArg, CultureInfo.InvariantCulture);
        string command = ArgValue(args, "--models") == null
            ? $"`bash build/bench.sh {string.Join(" ", args)}` (models trained by TorchSharp on the CPU first)"
            : "`bash build/gpu-scoring-bundle.sh` (models trained by TorchSharp on the CPU of a machine without a GPU), then `bash run-on-gpu.sh` " +
              $"on the GPU machine, which has no .NET SDK and no libtorch (it runs `--suite scoring-gpu --models DIR --gpu {gpuArg}`)";
        string report = CudaScoringBenchmark.Run(models, gpu, quick ? 2000 : 20000, quick ? 2 : 5, command);
        Write(ArgValue(args, "--output") ?? (gpu == null ? Path.Combine(models, "scoring-dry-run.md") : Path.Combine(folder, "scoring-gpu.md")), report);
        return 0;
    }

    /// <summary>
    /// The study's settings: the whole Fashion-MNIST from the Debian package when installed (else the shipped subset),
    /// 5 float epochs, 10 more per method, seeds 1, 2, 3; --quick: 1,000/300 images of the subset, 1 + 1 epochs, one seed;
    /// --subset, --train-rows N, --test-rows N, --pretrain-epochs N, --epochs N, --networks cnn,mlp override.
    /// </summary>
    internal static StudySettings StudySettingsFrom(string[] args, bool quick)
    {
        bool subset = quick || args.Contains("--subset") || !Directory.Exists(global::Cbp.Samples.FashionMnistData.FullDataDirectory);
        string directory = subset ? global::Cbp.Samples.FashionMnistData.SubsetDirectory : global::Cbp.Samples.FashionMnistData.FullDataDirectory;
        int Int(string name, int fallback) => ArgValue(args, name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        var constraints = (ArgValue(args, "--constraints") ?? "binary,ternary,onebitshift,twobitshift").Split(',').Select(name => name switch
        {
            "binary" => WeightConstraint.Binary,
            "ternary" => WeightConstraint.Ternary,
            "onebitshift" => WeightConstraint.OneBitShift,
            "twobitshift" => WeightConstraint.TwoBitShift,
            _ => throw new ArgumentException($"Unknown constraint '{name}' in --constraints."),
        }).ToArray();
        return new StudySettings(
            directory,
            Int("--train-rows", quick ? 1000 : subset ? 6000 : 60000),
            Int("--test-rows", quick ? 300 : subset ? 1000 : 10000),
            Int("--pretrain-epochs", quick ? 1 : 5),
            Int("--epochs", quick ? 1 : 10),
            quick ? new[] { 1 } : new[] { 1, 2, 3 },
            constraints,
            (ArgValue(args, "--networks") ?? "cnn,mlp").Split(','))
        {
            MultiplierLearningRate = ArgValue(args, "--multiplier-lr") is { } lr ? double.Parse(lr, CultureInfo.InvariantCulture) : 0.01,
            ScheduleEpochsPerPass = Int("--schedule-epochs-per-pass", 4),
            ScaleMode = ArgValue(args, "--scale-mode") is { } mode
                ? Enum.Parse<ScaleMode>(mode.Replace("-", "", StringComparison.Ordinal), ignoreCase: true)
                : ScaleMode.PerLayer,
        };
    }

    private static void Write(string output, string report)
    {
        Console.Write(report);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        string temp = output + ".tmp";
        File.WriteAllText(temp, report);
        File.Move(temp, output, overwrite: true);
        Console.WriteLine($"\nwritten to {output}");
    }

    private static string? ArgValue(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Cbp.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
