using System;
using TorchSharp;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// Sets TorchSharp's intra-op thread count for a scope and restores the previous value when disposed, so a Fit never
/// leaves the process-wide setting changed.
/// </summary>
internal sealed class TorchThreads : IDisposable
{
    private readonly int _previous;

    private TorchThreads(int threads)
    {
        _previous = torch.get_num_threads();
        if (threads != _previous)
        {
            torch.set_num_threads(threads);
        }
    }

    /// <summary>Uses <paramref name="threads"/> threads until disposed.</summary>
    /// <param name="threads">At least 1.</param>
    public static TorchThreads Use(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        return new TorchThreads(threads);
    }

    /// <summary>The current setting.</summary>
    public static int Current => torch.get_num_threads();

    /// <summary>Restores the previous thread count.</summary>
    public void Dispose()
    {
        if (torch.get_num_threads() != _previous)
        {
            torch.set_num_threads(_previous);
        }
    }
}
