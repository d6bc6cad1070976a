using System;
using System.Linq;
using Microsoft.ML.Cbp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp;

/// <summary>
/// On-the-fly augmentation of each training batch (<see cref="CbpQuantizeOptions.Augmentation"/>): applied to the
/// features of every training mini-batch, float pre-training and CBP alike, never to validation or scored data. Batches
/// are images [rows, channels, height, width] as <see cref="CbpQuantizeOptions.InputShape"/> says. Each batch draws from a
/// generator seeded by the Fit's seed, the pass and the batch's position, so runs are reproducible.
/// </summary>
/// <example>
/// <code>
/// options.Augmentation = CbpAugmentation.Compose(CbpAugmentation.RandomCrop(padding: 2), CbpAugmentation.RandomHorizontalFlip());
/// </code>
/// </example>
public sealed class CbpAugmentation
{
    private readonly Func<Tensor, Generator, Tensor> _apply;

    private CbpAugmentation(string name, Func<Tensor, Generator, Tensor> apply)
    {
        Name = name;
        _apply = apply;
    }

    /// <summary>What the augmentation does, for reports.</summary>
    public string Name { get; }

    /// <summary>Mirrors each image left to right with probability <paramref name="probability"/> (default 0.5).</summary>
    /// <param name="probability">In [0, 1].</param>
    /// <exception cref="ArgumentOutOfRangeException">The probability is outside [0, 1].</exception>
    public static CbpAugmentation RandomHorizontalFlip(double probability = 0.5)
    {
        if (!(probability >= 0 && probability <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "The flip probability must be in [0, 1].");
        }
        return new($"RandomHorizontalFlip({probability})", (batch, generator) => BatchAugmentation.HorizontalFlip(batch, probability, generator));
    }

    /// <summary>Pads each image with <paramref name="padding"/> zeros on every side and crops it back to its size at a random offset (CIFAR's usual padding is 4).</summary>
    /// <param name="padding">Pixels on each side, at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The padding is below 1.</exception>
    public static CbpAugmentation RandomCrop(int padding)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(padding, 1);
        return new($"RandomCrop(padding {padding})", (batch, generator) => BatchAugmentation.RandomCrop(batch, padding, generator));
    }

    /// <summary>
    /// A user's own augmentation: <paramref name="apply"/> receives a training batch and a generator for its random draws
    /// and returns the augmented batch of the same shape, made with TorchSharp operations (it must not dispose its input;
    /// tensors it creates are released with the batch).
    /// </summary>
    /// <param name="name">A name for reports.</param>
    /// <param name="apply">The augmentation.</param>
    public static CbpAugmentation Custom(string name, Func<Tensor, Generator, Tensor> apply)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(apply);
        return new(name, apply);
    }

    /// <summary>Applies the steps in order.</summary>
    /// <param name="steps">The augmentations.</param>
    public static CbpAugmentation Compose(params CbpAugmentation[] steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Length == 0 || steps.Any(s => s is null))
        {
            throw new ArgumentException("Compose needs at least one augmentation and no nulls.", nameof(steps));
        }
        return new(string.Join(" then ", steps.Select(s => s.Name)), (batch, generator) =>
        {
            var current = batch;
            foreach (var step in steps)
            {
                current = step._apply(current, generator);
            }
            return current;
        });
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    /// <summary>Wraps a training source so that its batches are augmented.</summary>
    internal IBatchSource Wrap(IBatchSource source, long seed) => new AugmentedBatchSource(source, seed, (batch, generator) =>
    {
        var augmented = _apply(batch, generator);
        if (!augmented.shape.SequenceEqual(batch.shape))
        {
            throw new InvalidOperationException(
                $"Augmentation {Name} turned a batch of shape [{string.Join(", ", batch.shape)}] into [{string.Join(", ", augmented.shape)}]; it must keep the shape.");
        }
        return augmented;
    });
}
