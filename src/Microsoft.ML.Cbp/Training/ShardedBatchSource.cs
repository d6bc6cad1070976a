using System;
using System.Collections.Generic;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// One rank's share of a data-parallel pass: the source yields combined batches (every rank's rows, the same on every
/// rank, reshuffled per pass from the common seed) and rank r keeps rows [r x b, (r + 1) x b) of each, where b is the
/// combined batch's rows divided by the number of ranks. So every row is in exactly one rank's share per pass, and the
/// average of the ranks' mean gradients is the mean gradient of the combined batch: N ranks with batches of b train as
/// one process with batches of N x b.
/// </summary>
/// <remarks>
/// A combined batch whose rows do not divide evenly drops its last (rows mod N) rows, so every rank takes the same number
/// of rows and steps; one with fewer rows than ranks is skipped on every rank alike. Every rank reads the whole combined
/// batch: the computation is divided, the reading is not.
/// </remarks>
internal sealed class ShardedBatchSource : IBatchSource
{
    private readonly IBatchSource _combined;
    private readonly int _rank;
    private readonly int _ranks;

    /// <summary>Creates a rank's view of a source of combined batches.</summary>
    /// <param name="combined">Batches of every rank's rows, identical on all ranks.</param>
    /// <param name="rank">This rank, 0 to <paramref name="ranks"/> - 1.</param>
    /// <param name="ranks">The number of ranks.</param>
    public ShardedBatchSource(IBatchSource combined, int rank, int ranks)
    {
        _combined = combined ?? throw new ArgumentNullException(nameof(combined));
        if (ranks < 1 || rank < 0 || rank >= ranks)
        {
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"Rank {rank} is not one of 0..{ranks - 1}.");
        }
        _rank = rank;
        _ranks = ranks;
    }

    /// <inheritdoc />
    public IEnumerable<(Tensor Features, Tensor Labels)> Pass(int pass)
    {
        foreach (var (features, labels) in _combined.Pass(pass))
        {
            long share = features.shape[0] / _ranks;
            if (share == 0)
            {
                continue;
            }
            yield return (features.narrow(0, _rank * share, share), labels.narrow(0, _rank * share, share));
        }
    }
}
