using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cbp.Samples;

/// <summary>Reading a scored data view the way scoring-speed measurements do.</summary>
public static class ScoreColumn
{
    /// <summary>
    /// Reads the <c>Score</c> vector of every row of <paramref name="scored"/> (ML.NET scores lazily: only reading a column
    /// makes the model run) and returns how many rows there were.
    /// </summary>
    /// <param name="scored">A data view with a <c>Score</c> column of float vectors.</param>
    public static long ReadAll(IDataView scored)
    {
        var column = scored.Schema["Score"];
        using var cursor = scored.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> value = default;
        long count = 0;
        while (cursor.MoveNext())
        {
            getter(ref value);
            count++;
        }
        return count;
    }
}
