using System;

namespace Microsoft.ML.Cbp.Data;

/// <summary>
/// The rows of an IDataView one process reads under data-parallel training: row i of the view's cursor (0-based, in
/// the view's own order, every row counted whether or not it has a label) belongs to shard i mod <see cref="Count"/>,
/// the rule of tf.data's <c>Dataset.shard</c>. Every row is in exactly one shard; a shard's rows are never computed by
/// another process (ML.NET getters are lazy, so a row outside the shard costs only the cursor's move past it).
/// </summary>
/// <param name="Index">This shard, 0 to <paramref name="Count"/> - 1 (the MPI rank).</param>
/// <param name="Count">The number of shards (the MPI world size); 1 reads every row.</param>
internal sealed record RowShard(int Index, int Count)
{
    /// <summary>Every row: the shard of a process that trains alone.</summary>
    public static RowShard All { get; } = new(0, 1);

    /// <summary>Checks the shard.</summary>
    public int Index { get; } = Count >= 1 && Index >= 0 && Index < Count
        ? Index
        : throw new ArgumentOutOfRangeException(nameof(Index), Index, $"Shard {Index} is not one of 0..{Count - 1} (of {Count} shard(s)).");

    /// <summary>Whether this shard holds every row.</summary>
    public bool IsAll => Count == 1;

    /// <summary>Whether the row at <paramref name="position"/> of the view's cursor belongs to this shard.</summary>
    /// <param name="position">0-based position in the view's cursor.</param>
    public bool Contains(long position) => Count == 1 || position % Count == Index;

    /// <summary>
    /// The seed of this shard's shuffles (pass k uses it + k): the common seed for shard 0 (so one process shuffles as
    /// before), offset by 1,000,003 per shard, so shards of equal size are not permuted alike and no two shards share a
    /// seed within a million passes.
    /// </summary>
    /// <param name="seed">The Fit's seed.</param>
    public long ShuffleSeed(long seed) => unchecked(seed + Index * 1_000_003L);

    /// <summary>One line for the training report.</summary>
    public override string ToString() => IsAll ? "every row" : $"rows i with i mod {Count} = {Index}";
}
