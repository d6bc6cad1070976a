using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Cbp.Samples;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// One CBP epoch of the small CNN on Fashion-MNIST: one process with 2 TorchSharp threads and batches of 64, against 2
/// MPI ranks (mpiexec -n 2) with 1 thread each and batches of 32 of their own rows (the same combined batch; labelled row i to rank i mod 2), taking
/// turns. Reports epoch seconds, the all-reduce's share of a step and the gradient bytes per step, and the time of one
/// streamed pass over images decoded on every read: one process reading every row against 2 ranks reading their own shards.
/// </summary>
internal static class DataParallelBenchmark
{
    private const int CombinedBatch = 64;

    public static string Run(bool quick, string command)
    {
        string mpiexec = Environment.GetEnvironmentVariable("PATH")!.Split(Path.PathSeparator).Select(d => Path.Combine(d, "mpiexec.hydra")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("mpiexec.hydra is not installed: bash build/install-mpi.sh (root, Debian) installs MPICH.");
        bool whole = File.Exists(Path.Combine(FashionMnistData.FullDataDirectory, "train-images-idx3-ubyte.gz"));
        int rows = quick ? 2048 : whole ? 60000 : 6000;
        int rounds = quick ? 1 : 2;
        var single = new List<double>();
        int imageRows = quick ? 500 : 6000;
        var ranks = new List<(double Epoch, double AllReduce, double Averaging, long Steps, long GradientBytes)>();
        var singleRead = new List<double>();
        var ranksRead = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            single.Add(Epoch(null, rows, threads: 2).Seconds);
            singleRead.Add(ReadSeconds(null, imageRows));
            Console.WriteLine($"data-parallel: round {round + 1}, one process: {single[^1]:F1} s, reading {singleRead[^1]:F1} s");
            string line = ChildProcess.Result("2 MPI ranks", new[] { "--suite", "mpi-bench-child", "--rows", rows.ToString(CultureInfo.InvariantCulture),
                "--image-rows", imageRows.ToString(CultureInfo.InvariantCulture) }, mpiexec, new[] { "-n", "2" });
            string Field(string key) => line.Split(' ').Single(f => f.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..];
            ranks.Add((double.Parse(Field("seconds"), CultureInfo.InvariantCulture), double.Parse(Field("allreduce"), CultureInfo.InvariantCulture),
                double.Parse(Field("averaging"), CultureInfo.InvariantCulture), long.Parse(Field("steps"), CultureInfo.InvariantCulture),
                long.Parse(Field("bytes"), CultureInfo.InvariantCulture)));
            ranksRead.Add(double.Parse(Field("read"), CultureInfo.InvariantCulture));
            Console.WriteLine($"data-parallel: round {round + 1}, 2 ranks: {ranks[^1].Epoch:F1} s, reading {ranksRead[^1]:F1} s");
        }
        var last = ranks[^1];
        var text = new StringBuilder();
        text.AppendLine("# Data-parallel training on MPI: one process against two ranks");
        text.AppendLine();
        text.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `{command}` on {Environment.ProcessorCount} cores ({RuntimeInformation.OSDescription.Trim()}), MPICH " +
            $"(mpiexec.hydra, shared memory). One CBP epoch of the small CNN (ternary, first and last layers float) over {rows:N0} Fashion-MNIST training images " +
            $"({(whole ? (quick ? "the first of the whole set" : "the whole set") : "the subset shipped with the samples")}), combined batch {CombinedBatch}: one process with 2 TorchSharp threads, against 2 ranks with 1 thread and " +
            $"batches of {CombinedBatch / 2} of their own rows (labelled row i to rank i mod 2, as Fit shards the data); the two take turns, {rounds} round(s).");
        text.AppendLine();
        text.AppendLine("| round | one process x 2 threads, s | 2 ranks x 1 thread, s | ranks / one process | all-reduce share of the ranks' epoch | averaging (copies + all-reduce) share |");
        text.AppendLine("|---:|---:|---:|---:|---:|---:|");
        for (int i = 0; i < rounds; i++)
        {
            text.AppendLine($"| {i + 1} | {single[i]:F1} | {ranks[i].Epoch:F1} | {ranks[i].Epoch / single[i]:F2}x | {ranks[i].AllReduce / ranks[i].Epoch:P1} | {ranks[i].Averaging / ranks[i].Epoch:P1} |");
        }
        text.AppendLine();
        text.AppendLine($"Per step: {last.GradientBytes:N0} bytes all-reduced (every parameter's gradient and the loss, float32), {last.Steps:N0} steps per epoch; " +
            $"the all-reduce took {last.AllReduce / last.Steps * 1000:F2} ms per step and the whole averaging {last.Averaging / last.Steps * 1000:F2} ms, " +
            $"of a {last.Epoch / last.Steps * 1000:F1} ms step. The all-reduce time includes waiting for the slower rank.");
        text.AppendLine();
        text.AppendLine($"Reading: one shuffled streamed pass (`StreamingBatchSource`, as Fit streams data above its cache budget) over {imageRows:N0} PNG images decoded and " +
            "resized on every read (224 px to 32 x 32, SkiaSharp, `DecodingImageView`): one process reading every row, against 2 ranks each reading its own shard " +
            "(labelled row i to rank i mod 2) at the same time, the slower rank's time; the same rounds, taking turns.");
        text.AppendLine();
        text.AppendLine("| round | one process, every row, s | 2 ranks, own shard each, s | ranks / one process |");
        text.AppendLine("|---:|---:|---:|---:|");
        for (int i = 0; i < rounds; i++)
        {
            text.AppendLine($"| {i + 1} | {singleRead[i]:F1} | {ranksRead[i]:F1} | {ranksRead[i] / singleRead[i]:F2}x |");
        }
        return text.ToString();
    }

    /// <summary>The child under mpiexec: one epoch on this rank's shares, then a RESULT line (rank 0's) with its timings.</summary>
    public static int ChildMain(string[] args)
    {
        var world = MpiWorld.Current ?? throw new InvalidOperationException("mpi-bench-child runs under mpiexec with more than one rank.");
        int rows = int.Parse(args[Array.IndexOf(args, "--rows") + 1], CultureInfo.InvariantCulture);
        int imageRows = int.Parse(args[Array.IndexOf(args, "--image-rows") + 1], CultureInfo.InvariantCulture);
        var (seconds, allReduce, averaging, steps, bytes) = Epoch(world, rows, threads: 1);
        // The reading: every rank streams its own shard at the same time; the job's time is the slower rank's.
        var read = new[] { ReadSeconds(world, imageRows) };
        world.MaxInPlace(read);
        if (world.Rank == 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT seconds={seconds:F3} allreduce={allReduce:F3} averaging={averaging:F3} steps={steps} bytes={bytes} read={read[0]:F3}"));
        }
        return 0;
    }

    /// <summary>
    /// Seconds of one shuffled streamed pass over <paramref name="rows"/> PNG images decoded and resized on every read (224 px
    /// to 32, <see cref="DecodingImageView"/>) as Fit streams them: the whole view alone, or this rank's shard under MPI.
    /// </summary>
    private static double ReadSeconds(MpiWorld? world, int rows)
    {
        string directory = File.Exists(Path.Combine(FashionMnistData.FullDataDirectory, "train-images-idx3-ubyte.gz")) ? FashionMnistData.FullDataDirectory : FashionMnistData.SubsetDirectory;
        var images = FashionMnistData.Read(directory, "train", rows);
        var png = images.Select(i => DecodingImageView.EncodePng(i.Features.Select(v => (byte)Math.Round(v * 255)).ToArray(), 224)).ToList();
        var labels = images.Select(i => (uint)Array.IndexOf(FashionMnistData.ClassNames, i.Label)).ToList();
        var data = new DecodingImageView(png, labels, 32);
        var shard = world is null ? RowShard.All : new RowShard(world.Rank, world.Size);
        var source = new StreamingBatchSource(data, "Features", "Label", LabelKind.Key, new long[] { 1, 32, 32 }, CombinedBatch / shard.Count, shuffle: true,
            2, shufflePoolRows: 1000, prefetchBatches: 4, labelledRowsPerPass: null, device: null, System.Threading.CancellationToken.None, shard: shard);
        if (world is not null)
        {
            // Start together (an all-reduce is a barrier).
            world.MaxInPlace(new[] { 0.0 });
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (var (batchFeatures, batchLabels) in source.Pass(0))
        {
            batchFeatures.Dispose();
            batchLabels.Dispose();
        }
        return clock.Elapsed.TotalSeconds;
    }

    private static (double Seconds, double AllReduce, double Averaging, long Steps, long GradientBytes) Epoch(MpiWorld? world, int rows, int threads)
    {
        int before = get_num_threads();
        set_num_threads(threads);
        try
        {
            using var scope = NewDisposeScope();
            string directory = File.Exists(Path.Combine(FashionMnistData.FullDataDirectory, "train-images-idx3-ubyte.gz")) ? FashionMnistData.FullDataDirectory : FashionMnistData.SubsetDirectory;
            var images = FashionMnistData.Read(directory, "train", rows);
            var features = tensor(images.SelectMany(i => i.Features).ToArray(), new long[] { images.Count, 1, 28, 28 });
            var labels = tensor(images.Select(i => (long)Array.IndexOf(FashionMnistData.ClassNames, i.Label)).ToArray());
            var model = CbpArchitecture.SmallCnn().Build(new long[] { 1, 28, 28 }, 10, seed: 1);
            using var module = new OnnxGraphModule(model);
            var names = ConstrainedInitializerSelection.Select(model).Select(module.MemberName).ToList();
            // Each rank its own rows (labelled row i to rank i mod N), reshuffled per pass; one process the combined batch.
            var (source, owner) = world is null
                ? (new InMemoryBatchSource(features, labels, CombinedBatch, shuffle: true, seed: 2), null)
                : ShardedTensors.ForRank(features, labels, CombinedBatch / world.Size, world, shuffle: true, seed: 2);
            using var owned = owner ?? (IDisposable)source;
            using var trainer = new CbpTrainer(module, (o, y) => nn.functional.cross_entropy(o, y), names, WeightConstraint.Ternary, new CbpTrainerOptions { Epochs = 1 }) { World = world };
            var report = trainer.TrainEpoch(source);
            long parameters = module.parameters().Sum(p => p.numel());
            return (report.Seconds, trainer.AllReduceSeconds, trainer.AveragingSeconds, report.Batches, 4 * (parameters + 1));
        }
        finally
        {
            set_num_threads(before);
        }
    }
}
