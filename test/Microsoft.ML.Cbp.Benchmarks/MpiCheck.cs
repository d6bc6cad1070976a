using System;
using System.Globalization;
using System.Linq;
using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// The MPI binding's smoke check, run under a launcher (<c>mpiexec -n N dotnet Microsoft.ML.Cbp.Benchmarks.dll --suite
/// mpi-check</c>): every rank sums, maximises and broadcasts known values, and checks identical and drifted weights with the
/// end-of-training check, and streams its shard of a view in two shuffled passes (every row once across the ranks), and prints one RESULT line saying whether each came back as computed by hand. Exit code 0 when all did.
/// </summary>
internal static class MpiCheck
{
    public static int Run()
    {
        MpiWorld? world;
        try
        {
            world = MpiWorld.Current;
        }
        catch (NotSupportedException e)
        {
            Console.WriteLine("REFUSED " + e.Message);
            return 3;
        }
        if (world is null)
        {
            Console.WriteLine("NO-WORLD this process was not started by an MPI launcher with more than one rank.");
            return 2;
        }
        int rank = world.Rank, size = world.Size;
        // Rank r contributes r + 1 and 10 (r + 1): the sums are n(n+1)/2 and ten times that; the maximum is n.
        var doubles = new[] { rank + 1.0, 10.0 * (rank + 1) };
        world.SumInPlace(doubles);
        double triangle = size * (size + 1) / 2.0;
        bool sums = doubles[0] == triangle && doubles[1] == 10 * triangle;
        var floats = Enumerable.Range(0, 1000).Select(i => (float)(rank + i)).ToArray();
        world.SumInPlace(floats);
        bool floatSums = floats.Select((v, i) => v == size * i + (float)(size * (size - 1) / 2)).All(ok => ok);
        var maximum = new[] { (double)rank };
        world.MaxInPlace(maximum);
        bool max = maximum[0] == size - 1;
        var bytes = rank == 0 ? Enumerable.Range(0, 257).Select(i => (byte)(i * 7)).ToArray() : new byte[257];
        world.Broadcast(bytes, root: 0);
        bool broadcast = bytes.Select((b, i) => b == (byte)(i * 7)).All(ok => ok);
        // The end-of-training weights check: the same tensors on every rank pass; one value changed on the last rank by one
        // float32 step is refused on every rank.
        bool weights;
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            var same = TorchSharp.torch.arange(12, dtype: TorchSharp.torch.ScalarType.Float32).reshape(3, 4);
            var drifted = same.clone();
            if (rank == size - 1)
            {
                drifted[1, 2] = TorchSharp.torch.tensor(MathF.BitIncrement(6f));
            }
            Pipeline.DataParallelCheck.SameWeightsOnEveryRank(world, new[] { ("w", same), ("b", same.sum(1)) });
            try
            {
                Pipeline.DataParallelCheck.SameWeightsOnEveryRank(world, new[] { ("w", drifted), ("b", same.sum(1)) });
                weights = false;
            }
            catch (InvalidOperationException e)
            {
                weights = e.Message.Contains("ended training with different weights", StringComparison.Ordinal);
            }
        }
        bool shards = ShardsHoldEveryRowOnce(world, cache: false) && ShardsHoldEveryRowOnce(world, cache: true);
        bool ok = sums && floatSums && max && broadcast && weights && shards;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT rank={rank} size={size} library={world.LibraryName} sums={sums} float_sums={floatSums} max={max} broadcast={broadcast} weights={weights} shards={shards} ok={ok}"));
        return ok ? 0 : 1;
    }

    /// <summary>
    /// Each rank streams its shard of 50 rows (every 7th without a label) for two shuffled passes, as a data-parallel Fit
    /// does; the ranks' rows of each pass, added up across ranks, must hold every labelled row once. A view that shuffles
    /// itself (an ML.NET cache) must give every process the same order, and the shards then change from pass to pass.
    /// </summary>
    private static bool ShardsHoldEveryRowOnce(MpiWorld world, bool cache)
    {
        const int rows = 50;
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => new RecordedRow
        {
            Id = i,
            Features = Enumerable.Repeat((float)i, RecordedRow.Width).ToArray(),
            Label = i % 7 == 3 ? 3u : (uint)(i % 3),
        }));
        if (cache)
        {
            view = ml.Data.Cache(view);
        }
        var shard = new Data.RowShard(world.Rank, world.Size);
        var source = new Data.StreamingBatchSource(view, "Features", "Label", Data.LabelKind.Key, new long[] { RecordedRow.Width }, batchSize: 4, shuffle: true, seed: 11,
            shufflePoolRows: 8, prefetchBatches: 2, labelledRowsPerPass: null, device: null, System.Threading.CancellationToken.None, shard: shard);
        bool ok = true;
        var mine = new System.Collections.Generic.List<int[]>();
        for (int pass = 0; pass < 2; pass++)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var ids = source.Pass(pass).SelectMany(b => b.Features.select(1, 0).data<float>().ToArray()).Select(v => (int)v).ToArray();
            mine.Add(ids);
            var seen = new double[rows];
            foreach (int id in ids)
            {
                seen[id]++;
            }
            world.SumInPlace(seen);
            ok &= seen.Select((n, i) => n == (i % 7 == 3 ? 0 : 1)).All(x => x);
            ok &= ids.Length == shard.RowsOf(Enumerable.Range(0, rows).Count(i => i % 7 != 3));
        }
        // A cached view's shards are its shuffled order's labelled rows: other rows in each pass.
        bool changed = !mine[0].OrderBy(i => i).SequenceEqual(mine[1].OrderBy(i => i));
        return ok && changed == cache;
    }
}
