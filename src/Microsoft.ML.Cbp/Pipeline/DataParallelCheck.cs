using System;
using System.Globalization;
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
        // 48 bits of the hash, exact in a double: equal everywhere exactly when the maximum is the mean.
        double value = long.Parse(fingerprint[..12], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var max = new[] { value };
        var sum = new[] { value };
        world.MaxInPlace(max);
        world.SumInPlace(sum);
        if (max[0] * world.Size != sum[0])
        {
            throw new InvalidOperationException(
                $"The {world.Size} ranks of this MPI job were given different Fits (options, seed, training or validation data, or network); " +
                "data-parallel training needs the same on every rank. Start every rank with the same program and data, or set DataParallel = false.");
        }
    }
}
