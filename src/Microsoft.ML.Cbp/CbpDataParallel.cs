using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp;

/// <summary>
/// Where this process stands in data-parallel training: when MPICH's <c>mpiexec -n N</c> started it (N &gt; 1), each of the
/// N processes is a rank, and Fit trains across them (<see cref="CbpQuantizeOptions.DataParallel"/>). Every rank ends
/// with the same model; save files on rank 0 only (<c>if (CbpDataParallel.Rank == 0) mlContext.Model.Save(...)</c>).
/// Saving on every rank is harmless when each writes its own path, since the models are identical.
/// </summary>
public static class CbpDataParallel
{
    /// <summary>This process's rank: 0 to <see cref="WorldSize"/> - 1; 0 without an MPI launcher.</summary>
    /// <exception cref="System.NotSupportedException">Open MPI's launcher started the process, or no MPICH-ABI library loads.</exception>
    public static int Rank => MpiWorld.Current?.Rank ?? 0;

    /// <summary>The number of ranks; 1 without an MPI launcher.</summary>
    /// <exception cref="System.NotSupportedException">Open MPI's launcher started the process, or no MPICH-ABI library loads.</exception>
    public static int WorldSize => MpiWorld.Current?.Size ?? 1;
}
