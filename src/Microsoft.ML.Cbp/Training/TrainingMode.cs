namespace Microsoft.ML.Cbp.Training;

/// <summary>What <see cref="CbpTrainer"/> optimises. All modes share the optimiser and data path, so comparisons are fair.</summary>
public enum TrainingMode
{
    /// <summary>Constrained backpropagation: forward with <c>Q(w)</c>, straight-through gradients, pseudo-Lagrange multipliers.</summary>
    Cbp = 0,

    /// <summary>The straight-through baseline (BinaryConnect / BWN style): as <see cref="Cbp"/> with the multipliers held at zero.</summary>
    StraightThrough = 1,

    /// <summary>Plain full-precision training (pre-training, and the float reference): no quantization, no clamping.</summary>
    Float = 2,
}
