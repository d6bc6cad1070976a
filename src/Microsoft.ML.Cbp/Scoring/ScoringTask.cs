namespace Microsoft.ML.Cbp.Scoring;

/// <summary>What a network's output means, which decides the scoring head and the output columns.</summary>
internal enum ScoringTask
{
    /// <summary>Class logits: <c>Score</c> holds softmax probabilities, <c>PredictedLabel</c> the label value of the arg-max class.</summary>
    Multiclass,

    /// <summary>Two class logits (false, true): <c>Score</c> holds the two probabilities, <c>PredictedLabel</c> is true when class 1 wins.</summary>
    Binary,

    /// <summary>One output value: <c>Score</c>.</summary>
    Regression,
}
