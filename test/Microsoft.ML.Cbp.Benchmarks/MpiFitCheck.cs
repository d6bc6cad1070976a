using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML.Cbp.Training;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// The estimator under mpiexec (<c>--suite mpi-fit</c>): every rank runs the same Fit on the same synthetic data and
/// prints whether the ranks ended with byte-identical compact models (an all-reduced checksum), how many progress reports
/// it received, which rows it computed features for (its shard's only, every row on some rank) and the model's accuracy; rank 0 writes the compact model to --output. <c>--cancel-rank R</c> cancels rank
/// R's Fit at once, <c>--kill-rank R</c> kills rank R's process after a second and <c>--different-rank R</c> gives rank R
/// another seed <c>--different-data-rank R</c> one row more and <c>--reversed-data-rank R</c> the rows in reverse order, to check that the job ends clearly; <c>--missing-every K</c>
/// and <c>--nan-row J</c> give rows without labels and a row with a NaN feature, so the shards differ in size.
/// </summary>
internal static class MpiFitCheck
{
    public static int ChildMain(string[] args)
    {
        int rank = CbpDataParallel.Rank;
        int rows = int.Parse(Value(args, "--rows") ?? "960", CultureInfo.InvariantCulture);
        // --different-data-rank R: rank R's view has one row more, which every rank must detect before training.
        if (Value(args, "--different-data-rank") is { } differentData && int.Parse(differentData, CultureInfo.InvariantCulture) == rank)
        {
            rows++;
        }
        // --missing-every K: rows i with i mod K = 7 have no label; --nan-row J: row J has a NaN feature (and the Fit skips such rows).
        int missingEvery = int.Parse(Value(args, "--missing-every") ?? "0", CultureInfo.InvariantCulture);
        int nanRow = int.Parse(Value(args, "--nan-row") ?? "-1", CultureInfo.InvariantCulture);
        var random = new Random(5);
        var read = new System.Collections.Generic.HashSet<int>();
        var data = Enumerable.Range(0, rows).Select(i =>
        {
            var features = Enumerable.Range(0, 12).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            uint label = missingEvery > 0 && i % missingEvery == 7 ? 3u : (uint)Array.IndexOf(features, features.Take(3).Max());
            if (i == nanRow)
            {
                features[5] = float.NaN;
            }
            return new RecordedRow { Id = i, Features = features, Label = label, Read = read };
        }).ToList();
        // --reversed-data-rank R: rank R's view holds the same rows in reverse order (as an unseeded ShuffleRows would differ).
        if (Value(args, "--reversed-data-rank") is { } reversed && int.Parse(reversed, CultureInfo.InvariantCulture) == rank)
        {
            data.Reverse();
        }
        using var cancel = new CancellationTokenSource();
        if (Value(args, "--cancel-rank") is { } cancelRank && int.Parse(cancelRank, CultureInfo.InvariantCulture) == rank)
        {
            cancel.Cancel();
        }
        if (Value(args, "--kill-rank") is { } killRank && int.Parse(killRank, CultureInfo.InvariantCulture) == rank)
        {
            new Thread(() => { Thread.Sleep(1000); Environment.FailFast("mpi-fit: this rank was told to die."); }) { IsBackground = true }.Start();
        }
        int reports = 0;
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data);
        // --budget: a size budget of half the float network (the plan is made on every rank; rank 0's is kept) and
        // validation data (early stopping decides on rank 0's validation loss).
        bool budget = args.Contains("--budget");
        var validation = data.Take(200).Select(r => new RecordedRow { Id = r.Id, Features = r.Features, Label = r.Label }).ToList();
        read.Clear();
        var architecture = CbpArchitecture.Mlp(new[] { budget ? 256 : 32 });
        using var model = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            Architecture = architecture,
            MaxModelBytes = budget ? Microsoft.ML.Cbp.Onnx.OnnxModelFile.ToBytes(architecture.Build(new long[] { 12 }, 3)).Length / 2 : null,
            // Validation rows of their own (every rank reads all of them), so that Read holds only training rows.
            ValidationData = budget ? ml.Data.LoadFromEnumerable(validation) : null,
            KeepFirstAndLastLayersFloat = false,
            Constraint = WeightConstraint.Ternary,
            PretrainEpochs = int.Parse(Value(args, "--pretrain-epochs") ?? "2", CultureInfo.InvariantCulture),
            Epochs = int.Parse(Value(args, "--epochs") ?? "2", CultureInfo.InvariantCulture),
            BatchSize = 16,
            // --different-rank R: that rank's Fit differs (another seed), which every rank must detect before training.
            Seed = Value(args, "--different-rank") is { } different && int.Parse(different, CultureInfo.InvariantCulture) == rank ? 4 : 3,
            TrainingDevice = CbpTrainingDevice.Cpu,
            // --rank1-threads N: rank 1 trains with N TorchSharp threads (the others with 1).
            TrainingThreads = rank == 1 && Value(args, "--rank1-threads") is { } rankThreads ? int.Parse(rankThreads, CultureInfo.InvariantCulture) : 1,
            // --stream: the streamed data path (a shuffle pool, batches read ahead) instead of the in-memory cache.
            DataCacheBudgetBytes = args.Contains("--stream") ? 0 : 2L << 30,
            // --keep-nan: the NaN row is not skipped, so the rank that reads it must fail naming it (and end the job).
            SkipRowsWithNonFiniteFeatures = nanRow >= 0 && !args.Contains("--keep-nan"),
            CancellationToken = cancel.Token,
            // --checkpoint PATH: rank 0 writes it, every rank resumes from it; --hide-checkpoint-rank R points rank R elsewhere
            // (a checkpoint the other ranks see but R does not).
            CheckpointPath = Value(args, "--checkpoint") is { } checkpoint
                ? Value(args, "--hide-checkpoint-rank") is { } hidden && int.Parse(hidden, CultureInfo.InvariantCulture) == rank ? checkpoint + ".elsewhere" : checkpoint
                : null,
            Progress = r =>
            {
                reports += r.Epoch is null ? 0 : 1;
                // --fail-after-cbp-epoch K: rank 0 fails once CBP epoch K is over (and checkpointed), as a crash would.
                if (r.Epoch is not null && r.Phase == CbpPhase.Cbp && Value(args, "--fail-after-cbp-epoch") is { } failAt
                    && r.EpochNumber == int.Parse(failAt, CultureInfo.InvariantCulture))
                {
                    throw new IOException($"mpi-fit: told to fail after CBP epoch {failAt}.");
                }
            },
        }).Fit(view);
        // Which rows this rank computed features for: its shard's only (labelled row k to rank k mod N), and every row on some rank.
        int[] readRows;
        lock (read)
        {
            readRows = read.ToArray();
            read.Clear();
        }
        foreach (var row in data)
        {
            row.Read = null;
        }
        var world = MpiWorld.Current!;
        // Labelled row k (in the view's order) belongs to rank k mod N.
        var labelledIndex = data.Where(r => r.Label < 3).Select((r, k) => (r.Id, k)).ToDictionary(x => x.Id, x => x.k);
        bool ownRowsOnly = readRows.All(i => labelledIndex.TryGetValue(i, out int k) && k % world.Size == rank);
        var counts = new[] { (double)readRows.Length, ownRowsOnly ? 1 : 0 };
        world.SumInPlace(counts);
        // Features are computed for labelled rows only.
        bool sharded = counts[1] == world.Size && counts[0] == data.Count(r => r.Label < 3);
        var compact = model.GetOnnxBytes();
        double checksum = compact.Select((b, i) => (double)b * (1 + i % 13)).Sum();
        var max = new[] { checksum, compact.Length };
        var sum = new[] { checksum, compact.Length };
        world.MaxInPlace(max);
        world.SumInPlace(sum);
        bool agree = max[0] * world.Size == sum[0] && max[1] * world.Size == sum[1];
        var scored = model.Transform(view);
        var scores = scored.GetColumn<float[]>(scored.Schema["Score"]).ToArray();
        double accuracy = scores.Zip(data, (p, r) => (p, r)).Where(x => x.r.Label < 3 && x.r.Id != nanRow).Average(x => Array.IndexOf(x.p, x.p.Max()) == x.r.Label ? 1.0 : 0.0);
        if (rank == 0 && Value(args, "--output") is { } output)
        {
            File.WriteAllBytes(output, compact);
        }
        // Steps per pre-training epoch (a full pass): rows / (ranks x BatchSize) when each rank trains on its share.
        var report = model.TrainingReport!;
        int steps = report.Pretraining[0].Batches;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT rank={rank} agree={agree} reports={reports} steps={steps} read={readRows.Length} sharded={sharded} trained={report.TrainingRows} skipped={report.SkippedRows} nonfinite={report.SkippedNonFiniteRows} accuracy={accuracy:F3}"));
        return agree ? 0 : 1;
    }

    private static string? Value(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
