using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// Rows in memory split as a data-parallel Fit splits an IDataView (<see cref="RowShard"/>: labelled row i to rank i mod N, each
/// rank's batches made collective by <see cref="DataParallelBatchSource"/>), and the one-process source that takes the
/// same steps: its every batch holds the ranks' batches together, in rank order.
/// </summary>
internal static class ShardedTensors
{
    /// <summary>A rank's batches of its own rows: <paramref name="batchSize"/> rows each, as many on every rank.</summary>
    /// <param name="features">Every row's features.</param>
    /// <param name="labels">Every row's label.</param>
    /// <param name="batchSize">Rows per rank per batch.</param>
    /// <param name="world">The MPI job.</param>
    /// <param name="shuffle">Reshuffle the rank's rows every pass (from <see cref="RowShard.ShuffleSeed"/>); false keeps their order, which <see cref="Combined"/> replays.</param>
    /// <param name="seed">The common seed.</param>
    /// <returns>The source and the disposable that owns its tensors.</returns>
    public static (IBatchSource Source, IDisposable Owner) ForRank(Tensor features, Tensor labels, int batchSize, MpiWorld world, bool shuffle, long seed)
    {
        var shard = new RowShard(world.Rank, world.Size);
        using var index = tensor(Rows(features.shape[0], shard).ToArray());
        var own = new InMemoryBatchSource(features.index_select(0, index), labels.index_select(0, index), batchSize, shuffle, shard.ShuffleSeed(seed));
        return (DataParallelBatchSource.Over(own, features.shape[0] / world.Size, 1, world), own);
    }

    /// <summary>One process's source with the ranks' unshuffled steps: batch k holds batch k of rank 0, then of rank 1, and so on.</summary>
    /// <param name="features">Every row's features.</param>
    /// <param name="labels">Every row's label.</param>
    /// <param name="batchSize">Rows per rank per batch.</param>
    /// <param name="ranks">The number of ranks.</param>
    public static InMemoryBatchSource Combined(Tensor features, Tensor labels, int batchSize, int ranks)
    {
        long perRank = features.shape[0] / ranks;
        var order = new List<long>();
        for (long start = 0; start < perRank; start += batchSize)
        {
            for (int rank = 0; rank < ranks; rank++)
            {
                // Position j of shard r is row j x N + r (every row here has a label).
                for (long j = start; j < Math.Min(start + batchSize, perRank); j++)
                {
                    order.Add(j * ranks + rank);
                }
            }
        }
        using var index = tensor(order.ToArray());
        return new InMemoryBatchSource(features.index_select(0, index), labels.index_select(0, index), batchSize * ranks, shuffle: false);
    }

    private static IEnumerable<long> Rows(long rows, RowShard shard)
    {
        for (long i = 0; i < rows; i++)
        {
            if (shard.Contains(i))
            {
                yield return i;
            }
        }
    }
}
