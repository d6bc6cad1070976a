using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>Mini-batches drawn from feature and label tensors held in memory, optionally shuffled per pass with a fixed seed.</summary>
public sealed class InMemoryBatchSource : IBatchSource, IDisposable
{
    private readonly Tensor _features;
    private readonly Tensor _labels;

    /// <summary>Creates a source. The tensors are moved to <paramref name="device"/> once and owned by the source.</summary>
    /// <param name="features">Rows along the first dimension.</param>
    /// <param name="labels">One label per row (class indices as int64 for classification, float for regression).</param>
    /// <param name="batchSize">Rows per batch; the last batch of a pass may be smaller.</param>
    /// <param name="shuffle">Reshuffle the rows on every pass.</param>
    /// <param name="seed">Seed of the shuffles (pass <c>k</c> uses <c>seed + k</c>).</param>
    /// <param name="device">Where batches are produced; <see langword="null"/> keeps the tensors' device.</param>
    public InMemoryBatchSource(Tensor features, Tensor labels, int batchSize, bool shuffle = true, long seed = 1, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be at least 1.");
        }
        if (features.dim() < 1 || labels.dim() < 1 || features.shape[0] != labels.shape[0])
        {
            throw new ArgumentException(
                $"Features ({string.Join("x", features.shape)}) and labels ({string.Join("x", labels.shape)}) must have the same number of rows.",
                nameof(labels));
        }
        if (features.shape[0] == 0)
        {
            throw new ArgumentException("The data has no rows.", nameof(features));
        }
        _features = (device is null ? features.alias() : features.to(device)).DetachFromDisposeScope();
        _labels = (device is null ? labels.alias() : labels.to(device)).DetachFromDisposeScope();
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
    }

    /// <summary>Rows per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether rows are reshuffled every pass.</summary>
    public bool Shuffle { get; }

    /// <summary>The shuffle seed.</summary>
    public long Seed { get; }

    /// <summary>Number of rows.</summary>
    public long Rows => _features.shape[0];

    /// <inheritdoc />
    public IEnumerable<(Tensor Features, Tensor Labels)> Pass(int pass)
    {
        long rows = Rows;
        Tensor? order = null;
        if (Shuffle)
        {
            using var generator = new Generator((ulong)(Seed + pass));
            order = randperm(rows, generator: generator, device: _features.device).DetachFromDisposeScope();
        }
        try
        {
            for (long start = 0; start < rows; start += BatchSize)
            {
                long length = Math.Min(BatchSize, rows - start);
                if (order is null)
                {
                    yield return (_features.narrow(0, start, length), _labels.narrow(0, start, length));
                }
                else
                {
                    using var index = order.narrow(0, start, length);
                    yield return (_features.index_select(0, index), _labels.index_select(0, index));
                }
            }
        }
        finally
        {
            order?.Dispose();
        }
    }

    /// <summary>Releases the data tensors.</summary>
    public void Dispose()
    {
        _features.Dispose();
        _labels.Dispose();
    }
}
