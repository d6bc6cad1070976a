namespace Microsoft.ML.Cbp;

/// <summary>How the positive scale <c>s</c> that multiplies the normalised levels is chosen for a layer.</summary>
public enum ScaleMode
{
    /// <summary>One scale per layer: <c>s = mean(|w|)</c> at the start of constrained training (the paper's choice).</summary>
    PerLayer = 0,

    /// <summary>One scale per output channel (first weight dimension), each the mean |w| of that channel.</summary>
    PerOutputChannel = 1,

    /// <summary>
    /// One scale per layer, chosen to minimise the squared rounding error <c>sum (w - s Q(w / s))^2</c> of the layer's weights
    /// at the start of constrained training. Equals mean |w| for binary levels. For the shift level sets it matters: with
    /// s = mean |w|, every weight beyond mean |w| (about four in ten for bell-shaped weights) is capped at the outer level.
    /// </summary>
    MinimumError = 2,
}
