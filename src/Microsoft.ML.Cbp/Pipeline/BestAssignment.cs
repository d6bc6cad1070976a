using System;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>
/// The one-to-one assignment of rows to columns of a square count matrix with the largest total (the Hungarian
/// algorithm with potentials, O(n^3)): which relabelling of a model's predicted classes best matches the labels.
/// </summary>
internal static class BestAssignment
{
    /// <summary>For each row i, the column assigned to it; the sum of <c>counts[i, result[i]]</c> is the largest any permutation gives.</summary>
    /// <param name="counts">A square matrix of non-negative counts.</param>
    public static int[] Maximise(long[,] counts)
    {
        int n = counts.GetLength(0);
        if (counts.GetLength(1) != n)
        {
            throw new ArgumentException($"The matrix is {n} x {counts.GetLength(1)}; the assignment needs a square one.", nameof(counts));
        }
        // Minimises the cost -counts; rows and columns are 1-based, index 0 is the virtual start column.
        var u = new long[n + 1];
        var v = new long[n + 1];
        var rowOfColumn = new int[n + 1];
        var way = new int[n + 1];
        for (int i = 1; i <= n; i++)
        {
            rowOfColumn[0] = i;
            int column = 0;
            var minimum = new long[n + 1];
            var used = new bool[n + 1];
            Array.Fill(minimum, long.MaxValue);
            do
            {
                used[column] = true;
                int row = rowOfColumn[column], next = 0;
                long delta = long.MaxValue;
                for (int j = 1; j <= n; j++)
                {
                    if (used[j])
                    {
                        continue;
                    }
                    long reduced = -counts[row - 1, j - 1] - u[row] - v[j];
                    if (reduced < minimum[j])
                    {
                        minimum[j] = reduced;
                        way[j] = column;
                    }
                    if (minimum[j] < delta)
                    {
                        delta = minimum[j];
                        next = j;
                    }
                }
                for (int j = 0; j <= n; j++)
                {
                    if (used[j])
                    {
                        u[rowOfColumn[j]] += delta;
                        v[j] -= delta;
                    }
                    else
                    {
                        minimum[j] -= delta;
                    }
                }
                column = next;
            }
            while (rowOfColumn[column] != 0);
            do
            {
                int previous = way[column];
                rowOfColumn[column] = rowOfColumn[previous];
                column = previous;
            }
            while (column != 0);
        }
        var result = new int[n];
        for (int j = 1; j <= n; j++)
        {
            result[rowOfColumn[j] - 1] = j - 1;
        }
        return result;
    }
}
