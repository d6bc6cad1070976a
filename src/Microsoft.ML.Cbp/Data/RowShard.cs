using System;

namespace Microsoft.ML.Cbp.Data;

/// <summary>
/// The rows of an IDataView one process trains on under data-parallel training: the k-th row with a label that the
/// view's cursor yields (0-based; rows without a label belong to no shard and are skipped by all) belongs to shard
/// k mod <see cref="Count"/>, the rule of tf.data's <c>Dataset.shard</c> applied to the labelled rows. Every labelled row
/// is in exactly one shard, and the shards of L labelled rows hold ceil((L - index) / Count) rows each, so they differ by
/// one row at most whatever the pattern of missing labels. Every process reads every row's label (one column, cheap);
/// a shard's features are never computed by another process (ML.NET getters are lazy).
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

    /// <summary>Whether the labelled row <paramref name="labelledIndex"/> belongs to this shard.</summary>
    /// <param name="labelledIndex">0-based index of the row among the rows with a label, in the cursor's order.</param>
    public bool Contains(long labelledIndex) => Count == 1 || labelledIndex % Count == Index;

    /// <summary>
    /// Whether this shard reports the row without a label at <paramref name="position"/> of the cursor as skipped
    /// (position mod <see cref="Count"/>): every such row is counted by one shard, so the shards' counts add up.
    /// </summary>
    /// <param name="position">0-based position in the cursor.</param>
    public bool CountsUnlabelled(long position) => Count == 1 || position % Count == Index;

    /// <summary>Labelled rows this shard holds when the view has <paramref name="labelledRows"/>: ceil((labelledRows - Index) / Count).</summary>
    /// <param name="labelledRows">The view's labelled rows.</param>
    public long RowsOf(long labelledRows) => labelledRows <= Index ? 0 : (labelledRows - Index + Count - 1) / Count;

    /// <summary>
    /// The seed of this shard's shuffles (pass k uses it + k): the common seed for shard 0 (so one process shuffles as
    /// before), offset by 1,000,003 per shard, so shards of equal size are not permuted alike and no two shards share a
    /// seed within a million passes.
    /// </summary>
    /// <param name="seed">The Fit's seed.</param>
    public long ShuffleSeed(long seed) => unchecked(seed + Index * 1_000_003L);

    /// <summary>One line for the training report.</summary>
    public override string ToString() => IsAll ? "every row" : $"labelled rows k with k mod {Count} = {Index}";
}
