using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>A training source whose every batch passes through an augmentation before it reaches the trainer.</summary>
internal sealed class AugmentedBatchSource(IBatchSource inner, long seed, Func<Tensor, Generator, Tensor> augment) : IBatchSource
{
    /// <inheritdoc />
    public IEnumerable<(Tensor Features, Tensor Labels)> Pass(int pass)
    {
        long index = 0;
        foreach (var (features, labels) in inner.Pass(pass))
        {
            using var generator = BatchAugmentation.GeneratorFor(seed, pass, index++);
            yield return (augment(features, generator), labels);
        }
    }
}
