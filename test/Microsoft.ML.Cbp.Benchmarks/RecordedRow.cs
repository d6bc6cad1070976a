using System;
using System.Collections.Generic;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// A row for LoadFromEnumerable that records its <see cref="Id"/> in <see cref="Read"/> whenever a cursor computes its
/// features (ML.NET's getters are lazy: a row whose features are never asked for is never recorded), to check which rows
/// a data-parallel rank really read. 12 features, a key label of 3 classes.
/// </summary>
internal sealed class RecordedRow
{
    /// <summary>Floats per row.</summary>
    public const int Width = 12;

    private float[] _features = Array.Empty<float>();

    /// <summary>Where reading the features records <see cref="Id"/> (null: not recorded); locked while written.</summary>
    [NoColumn]
    public HashSet<int>? Read { get; set; }

    /// <summary>The row's number.</summary>
    public int Id { get; set; }

    /// <summary>The features (reading them records the row).</summary>
    [VectorType(Width)]
    public float[] Features
    {
        get
        {
            if (Read is { } read)
            {
                lock (read)
                {
                    read.Add(Id);
                }
            }
            return _features;
        }
        set => _features = value;
    }

    /// <summary>The label (a value beyond the key count is stored as key 0: missing).</summary>
    [KeyType(3)]
    public uint Label { get; set; }
}
