using System;
using System.Collections.Generic;
using System.Globalization;
using System.Security.Cryptography;
using System.Linq;
using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>Checks, before data-parallel training starts, that every rank of the MPI job runs the same Fit.</summary>
internal static class DataParallelCheck
{
    /// <summary>
    /// Compares the Fit's fingerprint (options, seed, data rows and schema, initial network, ranks) across ranks with two
    /// all-reduces; every rank throws alike when they differ, before any gradient all-reduce could wait forever.
    /// </summary>
    /// <param name="world">The MPI job.</param>
    /// <param name="fingerprint">This rank's fingerprint, a hexadecimal SHA-256 (<see cref="TrainingCheckpoint.Fingerprint"/>).</param>
    /// <exception cref="InvalidOperationException">The ranks were given different options, data or networks.</exception>
    public static void SameFitOnEveryRank(MpiWorld world, string fingerprint)
    {
        // 48 bits of the hash, exact in a double.
        if (!SameOnEveryRank(world, long.Parse(fingerprint[..12], NumberStyles.HexNumber, CultureInfo.InvariantCulture)))
        {
            throw new InvalidOperationException(
                $"The {world.Size} ranks of this MPI job were given different Fits (options, seed, TorchSharp threads, training or validation data, or network); " +
                "data-parallel training needs the same on every rank. Start every rank with the same program and data, with as many threads each " +
                "(TrainingThreads; by default cores / ranks on the node, so place ranks evenly or set it), or set DataParallel = false. " +
                "(The training data's rows count and its labels in the view's order are compared: a view whose order changes from process to process, " +
                "such as ShuffleRows without a seed, cannot be divided between ranks; give it a seed.)");
        }
    }

    /// <summary>
    /// Checks, after training, that every rank holds bit-identical weights and buffers (a SHA-256 of their bytes, 48 bits
    /// of it compared by an all-reduced minimum and maximum): the averaged steps keep them identical, and a rank that drifted
    /// (hardware or library differences between nodes) would otherwise export another model than rank 0 without a word.
    /// </summary>
    /// <param name="world">The MPI job.</param>
    /// <param name="tensors">The module's named parameters and buffers, in the same order on every rank.</param>
    /// <exception cref="InvalidOperationException">The ranks' weights differ.</exception>
    public static void SameWeightsOnEveryRank(MpiWorld world, IEnumerable<(string Name, TorchSharp.torch.Tensor Value)> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, value) in tensors)
        {
            using var contiguous = value.detach().cpu().contiguous();
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
            hash.AppendData(contiguous.bytes);
        }
        long digest = long.Parse(Convert.ToHexString(hash.GetHashAndReset())[..12], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        if (!SameOnEveryRank(world, digest))
        {
            throw new InvalidOperationException(
                $"The {world.Size} ranks of this MPI job ended training with different weights (an all-reduced checksum); their models would differ, so nothing was exported. " +
                "Train on nodes with the same hardware and libraries, or with DataParallel = false. Please report this.");
        }
    }

    /// <summary>
    /// Checks that every rank resumes from the same point: the checkpoint only rank 0 writes must be visible to every rank
    /// (a shared file system), or every rank would train a different number of steps and wait in an all-reduce forever.
    /// </summary>
    /// <param name="world">The MPI job.</param>
    /// <param name="phase">The checkpoint's phase (0: none, 1: pre-training, 2: CBP).</param>
    /// <param name="epoch">Its epoch.</param>
    /// <exception cref="InvalidOperationException">The ranks found different checkpoints.</exception>
    public static void SameResumePointOnEveryRank(MpiWorld world, int phase, int epoch)
    {
        if (!SameOnEveryRank(world, phase * 1_000_000.0 + epoch))
        {
            throw new InvalidOperationException(
                "The ranks of this MPI job found different checkpoints at CheckpointPath (rank 0 writes it; every rank reads it to resume): " +
                "put CheckpointPath on a file system every rank sees, or delete the checkpoint to start over.");
        }
    }

    /// <summary>The sum of <paramref name="value"/> over the ranks (exact below 2^53).</summary>
    /// <param name="world">The MPI job.</param>
    /// <param name="value">This rank's value.</param>
    public static long Total(MpiWorld world, long value)
    {
        var sum = new[] { (double)value };
        world.SumInPlace(sum);
        return (long)sum[0];
    }

    /// <summary>The mean over the ranks of every value of <paramref name="values"/> (jagged arrays of the same shape on every rank).</summary>
    /// <param name="world">The MPI job.</param>
    /// <param name="values">This rank's values.</param>
    public static double[][] Mean(MpiWorld world, double[][] values)
    {
        var flat = values.SelectMany(v => v).ToArray();
        world.SumInPlace(flat);
        int at = 0;
        return values.Select(v => v.Select(_ => flat[at++] / world.Size).ToArray()).ToArray();
    }

    /// <summary>The smallest <paramref name="value"/> of any rank.</summary>
    /// <param name="world">The MPI job.</param>
    /// <param name="value">This rank's value.</param>
    public static double Minimum(MpiWorld world, double value)
    {
        var min = new[] { value };
        world.MinInPlace(min);
        return min[0];
    }

    /// <summary>Rank 0's <paramref name="value"/>, on every rank (a broadcast).</summary>
    /// <param name="world">The MPI job.</param>
    /// <param name="value">This rank's value.</param>
    public static double FromRankZero(MpiWorld world, double value) => FromRankZero(world, new[] { value })[0];

    /// <summary>Rank 0's <paramref name="values"/>, on every rank (a broadcast; every rank passes as many).</summary>
    /// <param name="world">The MPI job.</param>
    /// <param name="values">This rank's values.</param>
    public static double[] FromRankZero(MpiWorld world, double[] values)
    {
        var received = values.ToArray();
        world.Broadcast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(received.AsSpan()), root: 0);
        return received;
    }

    /// <summary>Whether <paramref name="value"/> is the same on every rank: its minimum equals its maximum (exact for any number of ranks).</summary>
    private static bool SameOnEveryRank(MpiWorld world, double value)
    {
        var max = new[] { value };
        var min = new[] { value };
        world.MaxInPlace(max);
        world.MinInPlace(min);
        return max[0] == min[0];
    }
}
