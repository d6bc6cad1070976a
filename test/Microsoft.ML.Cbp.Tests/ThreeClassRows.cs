using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Six features whose first three are the class one-hot: a task any small network learns in a few epochs.</summary>
internal sealed class ThreeClassRows
{
    [VectorType(6)]
    public float[] Features { get; set; } = Array.Empty<float>();

    [KeyType(3)]
    public uint Label { get; set; }

    /// <summary><paramref name="count"/> rows, classes in turn (0-based key values).</summary>
    public static List<ThreeClassRows> Make(int count) => Enumerable.Range(0, count).Select(i => new ThreeClassRows
    {
        Features = new[] { i % 3 == 0 ? 1f : 0f, i % 3 == 1 ? 1f : 0f, i % 3 == 2 ? 1f : 0f, i % 5 / 5f, 0.5f, i % 7 / 7f },
        Label = (uint)(i % 3),
    }).ToList();
}
