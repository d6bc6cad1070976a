using System.Collections.Generic;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// A training source that leaves out batches with fewer than <c>minimumRows</c> rows: batch normalisation in training mode
/// needs two values per channel, and a final batch of one row (a row count of k x batch size + 1) would make its running
/// variance NaN and the whole model NaN. With shuffled passes the left-out row differs from pass to pass.
/// </summary>
internal sealed class MinimumBatchSource(IBatchSource inner, int minimumRows) : IBatchSource
{
    /// <inheritdoc />
    public IEnumerable<(Tensor Features, Tensor Labels)> Pass(int pass)
    {
        foreach (var (features, labels) in inner.Pass(pass))
        {
            if (features.shape[0] >= minimumRows)
            {
                yield return (features, labels);
            }
        }
    }
}
