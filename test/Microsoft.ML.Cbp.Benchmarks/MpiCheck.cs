using System;
using System.Globalization;
using System.Linq;
using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// The MPI binding's smoke check, run under a launcher (<c>mpiexec -n N dotnet Microsoft.ML.Cbp.Benchmarks.dll --suite
/// mpi-check</c>): every rank sums, maximises and broadcasts known values, and checks identical and drifted weights with the
/// end-of-training check, and prints one RESULT line saying whether each came back as computed by hand. Exit code 0 when all did.
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
        bool ok = sums && floatSums && max && broadcast && weights;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT rank={rank} size={size} library={world.LibraryName} sums={sums} float_sums={floatSums} max={max} broadcast={broadcast} weights={weights} ok={ok}"));
        return ok ? 0 : 1;
    }
}
