using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>Timing of several code paths that take turns: each round runs every path once, so slow drifts of the machine hit all alike.</summary>
internal static class TakingTurns
{
    /// <summary>
    /// Runs the paths in turns, round after round (one warm-up round first), and returns each one's median of count / seconds.
    /// Every path must return <paramref name="expected"/> (rows or values produced), so a path that silently did less fails.
    /// </summary>
    /// <param name="paths">The measured paths by name; each returns how much it produced.</param>
    /// <param name="expected">What every path must return.</param>
    /// <param name="repetitions">Measured rounds.</param>
    public static Dictionary<string, double> MedianPerSecond(Dictionary<string, Func<long>> paths, long expected, int repetitions)
    {
        var times = paths.Keys.ToDictionary(k => k, _ => new List<double>());
        for (int repetition = -1; repetition < repetitions; repetition++)
        {
            foreach (var (key, path) in paths)
            {
                var clock = Stopwatch.StartNew();
                long count = path();
                double seconds = clock.Elapsed.TotalSeconds;
                if (count != expected)
                {
                    throw new InvalidOperationException($"{key} produced {count}, not {expected}.");
                }
                if (repetition >= 0)
                {
                    times[key].Add(count / seconds);
                }
            }
        }
        return times.ToDictionary(kv => kv.Key, kv => kv.Value.Order().ElementAt(kv.Value.Count / 2));
    }
}
