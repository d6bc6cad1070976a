namespace Microsoft.ML.Cbp;

/// <summary>How the positive scale <c>s</c> that multiplies the normalised levels is chosen for a layer.</summary>
public enum ScaleMode
{
    /// <summary>One scale per layer: <c>s = mean(|w|)</c> at the start of constrained training (the paper's choice).</summary>
    PerLayer = 0,

    /// <summary>One scale per output channel (first weight dimension), each the mean |w| of that channel.</summary>
    PerOutputChannel = 1,
}
