using System;
using System.Globalization;
using System.Linq;
using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// The MPI binding's smoke check, run under a launcher (<c>mpiexec -n N dotnet Microsoft.ML.Cbp.Benchmarks.dll --suite
/// mpi-check</c>): every rank sums, maximises and broadcasts known values and prints one RESULT line saying whether
/// each came back as computed by hand. Exit code 0 when all did.
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
        bool ok = sums && floatSums && max && broadcast;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT rank={rank} size={size} library={world.LibraryName} sums={sums} float_sums={floatSums} max={max} broadcast={broadcast} ok={ok}"));
        return ok ? 0 : 1;
    }
}
