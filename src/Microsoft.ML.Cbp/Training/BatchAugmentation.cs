using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// On-the-fly augmentation of image batches [N, C, H, W], each row drawn independently from a seeded generator, so a
/// run is reproducible and a resumed run draws what the uninterrupted one would have.
/// </summary>
internal static class BatchAugmentation
{
    /// <summary>Mirrors each row left to right with probability <paramref name="probability"/>.</summary>
    /// <param name="batch">Images [N, C, H, W].</param>
    /// <param name="probability">In [0, 1].</param>
    /// <param name="generator">The batch's generator.</param>
    public static Tensor HorizontalFlip(Tensor batch, double probability, Generator generator)
    {
        RequireImages(batch);
        using var draw = rand(new[] { batch.shape[0] }, generator: generator);
        using var threshold = probability.ToScalar();
        using var flip = draw.lt(threshold).view(batch.shape[0], 1, 1, 1).to(batch.device);
        using var mirrored = batch.flip(3);
        return where(flip, mirrored, batch);
    }

    /// <summary>Pads each row with <paramref name="padding"/> zeros on every side, then crops it back to H x W at a random offset.</summary>
    /// <param name="batch">Images [N, C, H, W].</param>
    /// <param name="padding">Pixels of zeros on each side (at least 1).</param>
    /// <param name="generator">The batch's generator.</param>
    public static Tensor RandomCrop(Tensor batch, int padding, Generator generator)
    {
        RequireImages(batch);
        long n = batch.shape[0], h = batch.shape[2], w = batch.shape[3];
        using var padded = nn.functional.pad(batch, new long[] { padding, padding, padding, padding });
        using var offsets = randint(0, (2 * padding) + 1, new[] { n, 2 }, generator: generator).data<long>();
        var rows = new List<Tensor>();
        try
        {
            for (long i = 0; i < n; i++)
            {
                rows.Add(padded[i].narrow(1, offsets[i, 0], h).narrow(2, offsets[i, 1], w));
            }
            return stack(rows);
        }
        finally
        {
            foreach (var row in rows)
            {
                row.Dispose();
            }
        }
    }

    /// <summary>The generator of one batch: a function of the seed, the pass and the batch's index in it (not of what ran before).</summary>
    /// <param name="seed">The Fit's seed.</param>
    /// <param name="pass">0-based pass.</param>
    /// <param name="batch">0-based batch in the pass.</param>
    public static Generator GeneratorFor(long seed, int pass, long batch) =>
        new(unchecked((ulong)(seed * 1_000_003 + pass) * 1_000_033UL + (ulong)batch));

    private static void RequireImages(Tensor batch)
    {
        if (batch.dim() != 4)
        {
            throw new ArgumentException(
                $"Image augmentation needs batches of images [rows, channels, height, width]; this batch is [{string.Join(", ", batch.shape)}]. Set InputShape to { "{" } channels, height, width { "}" }.");
        }
    }
}
