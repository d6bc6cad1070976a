using System;
using System.Collections.Generic;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// One rank's batches under data-parallel training, made collective. Each rank reads its own shard of the data (its own
/// rows, reshuffled every pass), and shards can differ by a few rows; so every rank takes the same number of rows per
/// pass, the fewest any rank holds (a rank's rows beyond that are left out of the pass, different ones each pass when
/// its shard is shuffled), which gives every rank the same number of batches of the same sizes. A last batch smaller
/// than the minimum (batch normalisation needs 2 rows) ends the pass on every rank alike. And before each batch the
/// ranks agree that each of them has one (an all-reduced minimum): a rank that runs short, because rows turned out to
/// have NaN features and were skipped, ends the pass on every rank at once instead of leaving the others waiting in the
/// gradient all-reduce.
/// </summary>
internal sealed class DataParallelBatchSource : IBatchSource
{
    private readonly IBatchSource _rankSource;
    private readonly Func<bool, bool> _everyRankHasOne;

    /// <summary>Creates a rank's collective source.</summary>
    /// <param name="rankSource">This rank's batches (its shard), of the same batch size on every rank.</param>
    /// <param name="rowsPerPass">Rows every rank takes per pass: the fewest any rank's shard holds.</param>
    /// <param name="minimumRows">A batch with fewer rows ends the pass (1, or 2 for batch normalisation).</param>
    /// <param name="everyRankHasOne">Given whether this rank has a batch, whether every rank has one: a collective call every rank makes alike.</param>
    public DataParallelBatchSource(IBatchSource rankSource, long rowsPerPass, int minimumRows, Func<bool, bool> everyRankHasOne)
    {
        _rankSource = rankSource ?? throw new ArgumentNullException(nameof(rankSource));
        _everyRankHasOne = everyRankHasOne ?? throw new ArgumentNullException(nameof(everyRankHasOne));
        ArgumentOutOfRangeException.ThrowIfLessThan(rowsPerPass, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumRows, 1);
        RowsPerPass = rowsPerPass;
        MinimumRows = minimumRows;
    }

    /// <summary>A rank's collective source over an MPI job.</summary>
    /// <param name="rankSource">This rank's batches.</param>
    /// <param name="rowsPerPass">Rows every rank takes per pass.</param>
    /// <param name="minimumRows">A batch with fewer rows ends the pass.</param>
    /// <param name="world">The MPI job.</param>
    public static DataParallelBatchSource Over(IBatchSource rankSource, long rowsPerPass, int minimumRows, MpiWorld world)
    {
        ArgumentNullException.ThrowIfNull(world);
        return new DataParallelBatchSource(rankSource, rowsPerPass, minimumRows, has =>
        {
            var flag = new[] { has ? 1.0 : 0.0 };
            world.MinInPlace(flag);
            return flag[0] > 0;
        });
    }

    /// <summary>Rows every rank takes per pass.</summary>
    public long RowsPerPass { get; }

    /// <summary>The fewest rows a batch may have.</summary>
    public int MinimumRows { get; }

    /// <summary>The steps of a full pass, the same on every rank: batches of <paramref name="batchSize"/> rows out of <see cref="RowsPerPass"/>, the last kept when it has <see cref="MinimumRows"/>.</summary>
    /// <param name="batchSize">Rows per batch.</param>
    public long StepsPerPass(int batchSize) => RowsPerPass / batchSize + (RowsPerPass % batchSize >= MinimumRows ? 1 : 0);

    /// <inheritdoc />
    public IEnumerable<(Tensor Features, Tensor Labels)> Pass(int pass)
    {
        long left = RowsPerPass;
        using var batches = _rankSource.Pass(pass).GetEnumerator();
        while (true)
        {
            Tensor? features = null, labels = null;
            if (left >= MinimumRows && batches.MoveNext())
            {
                (features, labels) = batches.Current;
                long rows = features.shape[0];
                if (rows > left)
                {
                    (features, labels, rows) = (features.narrow(0, 0, left), labels.narrow(0, 0, left), left);
                }
                if (rows < MinimumRows)
                {
                    features = labels = null;
                }
            }
            if (!_everyRankHasOne(features is not null))
            {
                // The rows left over are read to the pass's end (a few here; more only when another rank ran short), so that a
                // streamed source finishes its pass: its per-pass counts and its same-rows-every-pass check need the end.
                while (batches.MoveNext())
                {
                    batches.Current.Features.Dispose();
                    batches.Current.Labels.Dispose();
                }
                yield break;
            }
            left -= features!.shape[0];
            yield return (features, labels!);
        }
    }
}
