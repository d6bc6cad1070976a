using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Cbp.Data;

/// <summary>
/// A shuffle pool over a stream of rows (the method of ML.NET's <c>ShuffleRows</c> and tf.data's <c>shuffle</c>): the
/// first <see cref="Capacity"/> rows fill the pool; then each new row evicts a uniformly chosen pool row, which is
/// emitted, and takes its slot; at the end the pool empties in random order. Memory: <see cref="Capacity"/> rows.
/// </summary>
internal sealed class ShufflePool
{
    private readonly float[] _rows;
    private readonly long[] _classes;
    private readonly float[] _targets;
    private readonly int _width;
    private Random _random;
    private int _count;

    /// <summary>Creates an empty pool.</summary>
    /// <param name="capacity">Rows it holds (at least 2).</param>
    /// <param name="width">Floats per row.</param>
    /// <param name="random">The pass's seeded generator.</param>
    public ShufflePool(int capacity, int width, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        Capacity = capacity;
        _width = width;
        _random = random;
        _rows = new float[(long)capacity * width];
        _classes = new long[capacity];
        _targets = new float[capacity];
    }

    /// <summary>Empties the pool for a new pass, keeping its buffer.</summary>
    /// <param name="random">The new pass's seeded generator.</param>
    public void Reset(Random random)
    {
        _random = random;
        _count = 0;
    }

    /// <summary>Rows the pool holds when full.</summary>
    public int Capacity { get; }

    /// <summary>
    /// Adds a row while the pool fills (returns null); once full, returns the slot of the row to emit now, which the
    /// caller reads and then overwrites with <see cref="Replace"/>.
    /// </summary>
    /// <param name="row">The new row.</param>
    /// <param name="classIndex">Its class index (classification).</param>
    /// <param name="target">Its target (regression).</param>
    public int? Add(ReadOnlySpan<float> row, long classIndex, float target)
    {
        if (_count < Capacity)
        {
            Replace(_count++, row, classIndex, target);
            return null;
        }
        return _random.Next(Capacity);
    }

    /// <summary>Writes a row into a slot.</summary>
    /// <param name="slot">The slot.</param>
    /// <param name="row">The row.</param>
    /// <param name="classIndex">Its class index.</param>
    /// <param name="target">Its target.</param>
    public void Replace(int slot, ReadOnlySpan<float> row, long classIndex, float target)
    {
        row.CopyTo(_rows.AsSpan((int)((long)slot * _width), _width));
        _classes[slot] = classIndex;
        _targets[slot] = target;
    }

    /// <summary>The features of the row in a slot.</summary>
    /// <param name="slot">The slot.</param>
    public ReadOnlySpan<float> Row(int slot) => _rows.AsSpan((int)((long)slot * _width), _width);

    /// <summary>The class index of the row in a slot.</summary>
    /// <param name="slot">The slot.</param>
    public long ClassIndex(int slot) => _classes[slot];

    /// <summary>The target of the row in a slot.</summary>
    /// <param name="slot">The slot.</param>
    public float Target(int slot) => _targets[slot];

    /// <summary>The slots still holding rows, in random order (the end of the stream).</summary>
    public IEnumerable<int> RemainingInRandomOrder()
    {
        var slots = Enumerable.Range(0, _count).ToArray();
        _random.Shuffle(slots);
        return slots;
    }
}
