using System;
using System.Threading;

namespace Microsoft.ML.Cbp.Scoring;

/// <summary>
/// The lifetime of native scoring objects shared by several threads: any number of uses at once, and an end that waits
/// for the uses in flight, after which a use throws <see cref="ObjectDisposedException"/> instead of reaching native code.
/// </summary>
/// <param name="owner">The object named in <see cref="ObjectDisposedException"/>.</param>
internal sealed class ScoringLifetime(object owner)
{
    // Recursion is allowed so that a getter reading another guarded getter on the same thread does not throw.
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.SupportsRecursion);
    private volatile bool _ended;

    /// <summary>Whether <see cref="End"/> has run.</summary>
    public bool IsEnded => _ended;

    /// <summary>Starts a use; pair with <see cref="Exit"/> in a <c>finally</c>.</summary>
    /// <exception cref="ObjectDisposedException">The lifetime has ended.</exception>
    public void Enter()
    {
        _lock.EnterReadLock();
        if (_ended)
        {
            _lock.ExitReadLock();
            throw new ObjectDisposedException(owner.GetType().FullName);
        }
    }

    /// <summary>Ends a use started by <see cref="Enter"/>.</summary>
    public void Exit() => _lock.ExitReadLock();

    /// <summary>Waits for the uses in flight, then runs <paramref name="release"/> once; later calls do nothing.</summary>
    /// <param name="release">Frees the native objects.</param>
    public void End(Action release)
    {
        _lock.EnterWriteLock();
        try
        {
            if (!_ended)
            {
                _ended = true;
                release();
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }
}
