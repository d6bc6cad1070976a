using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// The hand-made MPI binding (MPICH's ABI) against the MPICH that build/install-mpi.sh installs: two ranks started by
/// mpiexec sum, maximise and broadcast known values. Where MPICH is not installed the tests report Inconclusive.
/// </summary>
[TestClass]
public sealed class MpiBindingTests
{
    private static string Worker => Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.Cbp.Benchmarks.dll");

    [TestMethod]
    public void TwoRanksSumMaximiseAndBroadcastThroughMpich()
    {
        string mpiexec = RequireMpich();
        var (code, output) = Run(mpiexec, new[] { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-check" }, new Dictionary<string, string>());
        var results = output.Split('\n').Where(l => l.StartsWith("RESULT ", StringComparison.Ordinal)).OrderBy(l => l, StringComparer.Ordinal).ToList();
        Assert.AreEqual(2, results.Count, output);
        for (int rank = 0; rank < 2; rank++)
        {
            StringAssert.StartsWith(results[rank], $"RESULT rank={rank} size=2 ", output);
            StringAssert.EndsWith(results[rank].TrimEnd(), "ok=True", output);
        }
        Assert.AreEqual(0, code, output);
    }

    [TestMethod]
    public void TwoRanksTrainLikeOneProcessWithTheCombinedBatch()
    {
        string mpiexec = RequireMpich();
        string path = Path.Combine(Path.GetTempPath(), $"cbp-mpi-{Guid.NewGuid():N}.json");
        try
        {
            // 2 ranks with batches of 16 of their own rows against one process whose batches of 32 hold both ranks' batches:
            // Mlp without batch normalisation.
            var (code, output) = Run(mpiexec, new[] { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-train", "--epochs", "10", "--rows", "16", "--output", path },
                new Dictionary<string, string>());
            Assert.AreEqual(0, code, output);
            var ranks = Microsoft.ML.Cbp.Benchmarks.MpiTrainCheck.Read(path);
            var alone = Microsoft.ML.Cbp.Benchmarks.MpiTrainCheck.Train(null, ranks: 2, rowsPerRank: 16, epochs: 10);
            Assert.IsTrue(ranks.RanksAgree, "every rank ended with the same parameters");
            double scale = alone.FirstStep.Max(v => Math.Abs(v));
            double worst = ranks.FirstStep.Zip(alone.FirstStep, (a, b) => Math.Abs(a - b)).Max() / scale;
            Assert.IsTrue(worst <= 1e-6, $"first step: relative difference {worst:E2}");
            CollectionAssert.AreEqual(alone.Updates, ranks.Updates, "the same multiplier updates, epoch by epoch");
            double same = ranks.Constrained.Zip(alone.Constrained, (a, b) => a == b ? 1.0 : 0.0).Average();
            Assert.IsTrue(same >= 0.999, $"{same:P2} of the constrained weights' codes are equal");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    [DataRow(false, false)]
    [DataRow(true, false)]
    [DataRow(false, true)]
    public void TheEstimatorTrainsDataParallelUnderMpiexec(bool streamed, bool budgetAndValidation)
    {
        string mpiexec = RequireMpich();
        string path = Path.Combine(Path.GetTempPath(), $"cbp-mpi-{Guid.NewGuid():N}.onnx");
        try
        {
            // No code change in the Fit: two ranks started by mpiexec train one model; only rank 0 reports progress.
            var args = new List<string> { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-fit", "--output", path };
            if (streamed)
            {
                args.Add("--stream");
            }
            if (budgetAndValidation)
            {
                // MaxModelBytes (rank 0's plan on every rank) and ValidationData (early stopping on rank 0's loss).
                args.Add("--budget");
            }
            var (code, output) = Run(mpiexec, args, new Dictionary<string, string>());
            Assert.AreEqual(0, code, output);
            var results = output.Split('\n').Where(l => l.StartsWith("RESULT ", StringComparison.Ordinal)).OrderBy(l => l, StringComparer.Ordinal).ToList();
            Assert.AreEqual(2, results.Count, output);
            Assert.IsTrue(results.All(r => r.Contains("agree=True", StringComparison.Ordinal)), "both ranks hold the byte-identical compact model: " + output);
            StringAssert.Contains(results[1], "rank=1 agree=True reports=0 ", "rank 1 reports no progress");
            // 960 rows, BatchSize 16, 2 ranks: 30 steps per pass on each rank's share (one process would take 60).
            Assert.IsTrue(results.All(r => r.Contains(" steps=30 ", StringComparison.Ordinal)), output);
            // Each rank computed the features of its own 480 rows only (labelled row k on rank k mod 2), and the two shards hold every row.
            Assert.IsTrue(results.All(r => r.Contains(" read=480 sharded=True ", StringComparison.Ordinal)), output);
            Assert.IsFalse(results[0].Contains("reports=0 ", StringComparison.Ordinal), "rank 0 reports progress");
            double accuracy = double.Parse(results[0].Split("accuracy=")[1], System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsTrue(accuracy >= 0.8, $"the data-parallel model learned the task: {accuracy:P1}");
            Assert.IsTrue(Microsoft.ML.Cbp.Onnx.OnnxModelFile.Parse(File.ReadAllBytes(path)).Graph.Node.Count > 0, "rank 0 wrote the model");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void ShardsOfUnequalSizesTrainTheSameStepsOnEveryRank(bool streamed)
    {
        string mpiexec = RequireMpich();
        // 961 rows; rows 7, 57, ..., 957 (20, all at odd positions) have no label; row 101 (labelled row 99: rank 1's) a NaN
        // feature, skipped. 941 labelled rows: rank 0 holds 471, rank 1 470 of which 469 finite.
        var args = new List<string> { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-fit", "--rows", "961", "--missing-every", "50", "--nan-row", "101" };
        if (streamed)
        {
            args.Add("--stream");
        }
        var (code, output) = Run(mpiexec, args, new Dictionary<string, string>());
        Assert.AreEqual(0, code, output);
        var results = output.Split('\n').Where(l => l.StartsWith("RESULT ", StringComparison.Ordinal)).OrderBy(l => l, StringComparer.Ordinal).ToList();
        Assert.AreEqual(2, results.Count, output);
        // Every rank takes the smallest shard's rows per pass: cached, rank 1's 469 finite rows (rank 0 leaves out 2 of its
        // 471, others every pass); streamed, the counted 470 (the NaN row is found while reading, so rank 1's last batch has
        // 5 rows to rank 0's 6, and 939 rows train). 30 batches of 16 or fewer either way.
        long trained = streamed ? 939 : 938;
        foreach (string result in results)
        {
            StringAssert.Contains(result, $" steps=30 read=", output);
            StringAssert.Contains(result, $" sharded=True trained={trained} skipped=20 nonfinite=1 ", output);
            Assert.IsTrue(result.Contains("agree=True", StringComparison.Ordinal), "both ranks hold the byte-identical model: " + output);
        }
        StringAssert.Contains(results[0], " read=471 ", "rank 0 computed its 471 labelled rows' features");
        StringAssert.Contains(results[1], " read=470 ", "rank 1 computed its 470 labelled rows' features (the NaN row's too)");
        double accuracy = double.Parse(results[0].Split("accuracy=")[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsTrue(accuracy >= 0.8, $"the model learned the task: {accuracy:P1}");
    }

    [TestMethod]
    public void TheMainJobRunsDataParallelAndRankZeroAloneReportsAndSaves()
    {
        string mpiexec = RequireMpich();
        string output = Path.Combine(Path.GetTempPath(), $"cbp-mpi-sample-{Guid.NewGuid():N}");
        try
        {
            // The README's data-parallel command for the main job, in its quick form.
            var (code, text) = Run(mpiexec, new[] { "-n", "2", DotnetHost(), Path.Combine(AppContext.BaseDirectory, "Cbp.Samples.dll"), "fashion-mnist", "--quick",
                "--threads", "1", "--output", output }, new Dictionary<string, string>());
            Assert.AreEqual(0, code, text);
            var accuracy = text.Split('\n').Where(l => l.TrimStart().StartsWith("test accuracy", StringComparison.Ordinal)).ToList();
            Assert.AreEqual(1, accuracy.Count, "one rank reports: " + text);
            // (--quick trains 3 passes of 500 rows per rank: too few steps to judge accuracy; the mpi-fit tests judge that.)
            double quantized = double.Parse(accuracy[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)[^2], System.Globalization.CultureInfo.InvariantCulture) / 100;
            Assert.IsTrue(quantized is > 0 and <= 1, $"rank 0 evaluated the model: {quantized:P1}");
            Assert.AreEqual(1, text.Split('\n').Count(l => l.StartsWith("Saved ", StringComparison.Ordinal)), "one rank saves: " + text);
            Assert.IsTrue(File.Exists(Path.Combine(output, "FashionMnistModel.zip")) && File.Exists(Path.Combine(output, "FashionMnistModel.onnx")), "rank 0 saved the model");
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }

    [TestMethod]
    public void AnInterruptedDataParallelFitResumesToTheSameModel()
    {
        string mpiexec = RequireMpich();
        string directory = Path.Combine(Path.GetTempPath(), $"cbp-mpi-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            string checkpoint = Path.Combine(directory, "fit.ckpt");
            string Model(string name) => Path.Combine(directory, name);
            List<string> Args(string output, params string[] more) =>
                new[] { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-fit", "--stream", "--epochs", "3", "--output", output }.Concat(more).ToList();
            // Uninterrupted, for reference.
            var (code, output) = Run(mpiexec, Args(Model("whole.onnx")), new Dictionary<string, string>());
            Assert.AreEqual(0, code, output);
            // Rank 0 fails after CBP epoch 2 (checkpointed); the job ends.
            (code, output) = Run(mpiexec, Args(Model("interrupted.onnx"), "--checkpoint", checkpoint, "--fail-after-cbp-epoch", "2"), new Dictionary<string, string>());
            Assert.AreNotEqual(0, code, output);
            StringAssert.Contains(output, "told to fail after CBP epoch 2");
            Assert.IsTrue(File.Exists(checkpoint), "rank 0 wrote the checkpoint: " + output);
            // A rank that cannot see the checkpoint would train more steps than the others: refused on every rank.
            (code, output) = Run(mpiexec, Args(Model("hidden.onnx"), "--checkpoint", checkpoint, "--hide-checkpoint-rank", "1"), new Dictionary<string, string>());
            Assert.AreNotEqual(0, code, output);
            StringAssert.Contains(output, "found different checkpoints at CheckpointPath");
            Assert.IsTrue(File.Exists(checkpoint), "the refused job left the checkpoint alone");
            // Every rank resumes at CBP epoch 3 (its own shard, the same pass position): the same model as without the interruption.
            (code, output) = Run(mpiexec, Args(Model("resumed.onnx"), "--checkpoint", checkpoint), new Dictionary<string, string>());
            Assert.AreEqual(0, code, output);
            CollectionAssert.AreEqual(File.ReadAllBytes(Model("whole.onnx")), File.ReadAllBytes(Model("resumed.onnx")), "the resumed Fit's model is byte-identical");
            Assert.IsFalse(File.Exists(checkpoint), "the completed Fit deleted its checkpoint");
            Assert.IsFalse(File.Exists(Model("hidden.onnx")), "the refused job wrote no model");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void ANaNRowOnOneRankEndsTheJobNamingIt(bool streamed)
    {
        string mpiexec = RequireMpich();
        // Row 101 (labelled row 99: rank 1's) has a NaN feature and SkipRowsWithNonFiniteFeatures is off.
        var args = new List<string> { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-fit", "--nan-row", "101", "--keep-nan" };
        if (streamed)
        {
            args.Add("--stream");
        }
        var (code, output) = Run(mpiexec, args, new Dictionary<string, string>());
        Assert.AreNotEqual(0, code, output);
        StringAssert.Contains(output, "rank 1 of 2: ArgumentException: Feature column 'Features' has NaN or infinite values", output);
        StringAssert.Contains(output, "row 101", output);
        StringAssert.Contains(output, "SkipRowsWithNonFiniteFeatures", output);
        Assert.IsFalse(output.Contains("RESULT", StringComparison.Ordinal), "no rank exported a model: " + output);
    }

    [TestMethod]
    public void ARankThatThrowsEndsEveryRank()
    {
        string mpiexec = RequireMpich();
        // Rank 1's Fit is cancelled at its first batch while rank 0 waits in the gradient all-reduce: no hang, a clear message.
        var (code, output) = Run(mpiexec, new[] { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-fit", "--cancel-rank", "1" }, new Dictionary<string, string>());
        Assert.AreNotEqual(0, code, output);
        StringAssert.Contains(output, "rank 1 of 2: OperationCanceledException", $"exit code {code}");
        StringAssert.Contains(output, "Ending every rank of the MPI job");
        Assert.IsFalse(output.Contains("RESULT", StringComparison.Ordinal), output);
    }

    [TestMethod]
    [DataRow("--different-rank", "1")]
    [DataRow("--different-data-rank", "1")]
    [DataRow("--reversed-data-rank", "1")]
    [DataRow("--rank1-threads", "2")]
    public void RanksGivenDifferentFitsAreRefusedBeforeTraining(string difference, string value)
    {
        string mpiexec = RequireMpich();
        // Another seed on rank 1, a view one row longer there, or its rows in another order (each rank reads only its shard,
        // so the view's length and its labels in order are compared), or another thread count (reductions such as a layer's
        // scale could round otherwise and the ranks drift apart).
        var (code, output) = Run(mpiexec, new[] { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-fit", difference, value }, new Dictionary<string, string>());
        Assert.AreNotEqual(0, code, output);
        StringAssert.Contains(output, "were given different Fits");
        StringAssert.Contains(output, "DataParallel = false");
    }

    [TestMethod]
    public void AKilledRankEndsTheJobWithinAMinute()
    {
        string mpiexec = RequireMpich();
        // Rank 1 dies a second into a long Fit; mpiexec ends rank 0 too (Run fails the test past 60 s).
        var (code, output) = Run(mpiexec, new[] { "-n", "2", DotnetHost(), Worker, "--suite", "mpi-fit", "--epochs", "400", "--kill-rank", "1" },
            new Dictionary<string, string>());
        Assert.AreNotEqual(0, code, output);
        Assert.IsFalse(output.Contains("RESULT", StringComparison.Ordinal), "no rank finished: " + output);
        StringAssert.Contains(output, "this rank was told to die");
    }

    [TestMethod]
    public void AProcessWithoutALauncherHasNoWorld()
    {
        // This test host was not started by mpiexec: training stays single-process, exactly as without MPI.
        if (Environment.GetEnvironmentVariable("PMI_SIZE") is not null)
        {
            Assert.Inconclusive("This test host itself runs under an MPI launcher.");
        }
        Assert.IsNull(MpiWorld.Current);
        Assert.AreEqual((0, 1), (CbpDataParallel.Rank, CbpDataParallel.WorldSize));
        var (code, output) = Run(DotnetHost(), new[] { Worker, "--suite", "mpi-check" }, new Dictionary<string, string>());
        Assert.AreEqual(2, code, output);
        StringAssert.Contains(output, "NO-WORLD");
    }

    [TestMethod]
    public void OpenMpisLauncherIsRefusedNamingMpich()
    {
        var (code, output) = Run(DotnetHost(), new[] { Worker, "--suite", "mpi-check" }, new Dictionary<string, string> { ["OMPI_COMM_WORLD_SIZE"] = "2" });
        Assert.AreEqual(3, code, output);
        StringAssert.Contains(output, "Open MPI");
        StringAssert.Contains(output, "apt-get install mpich");
    }

    /// <summary>mpiexec's path when MPICH (its launcher and library) is installed; otherwise the test is Inconclusive.</summary>
    private static string RequireMpich()
    {
        string? mpiexec = Environment.GetEnvironmentVariable("PATH")?.Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "mpiexec.hydra")).FirstOrDefault(File.Exists);
        IntPtr library = IntPtr.Zero;
        if (mpiexec is null || !NativeLibrary.TryLoad("libmpich.so.12", out library))
        {
            Assert.Inconclusive("MPICH is not installed here (bash build/install-mpi.sh installs it, as root on Debian).");
        }
        NativeLibrary.Free(library);
        return mpiexec!;
    }

    private static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    /// <summary>Runs a command with a 60-second limit; a command that overruns is killed and fails the test.</summary>
    private static (int Code, string Output) Run(string file, IEnumerable<string> args, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        // The child must not think it is a rank of a job this test host belongs to.
        start.Environment.Remove("PMI_SIZE");
        start.Environment.Remove("PMI_RANK");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"'{file} {string.Join(' ', start.ArgumentList)}' did not end within 60 s.");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
