using System.Collections.Generic;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// Mini-batches for the engine. Each call to <see cref="Pass"/> enumerates one pass over the data.
/// </summary>
/// <remarks>
/// The trainer opens a dispose scope per batch before asking for it, so tensors a source creates for a batch
/// are released with that batch; state that must live across batches must be detached from dispose scopes.
/// </remarks>
public interface IBatchSource
{
    /// <summary>Enumerates one pass; <paramref name="pass"/> (0-based) lets a source reshuffle deterministically.</summary>
    /// <param name="pass">Index of the pass.</param>
    IEnumerable<(Tensor Features, Tensor Labels)> Pass(int pass);
}
