namespace Microsoft.ML.Cbp;

/// <summary>What training did with a weight layer (<see cref="CbpTrainingReport.WeightLayers"/>).</summary>
public enum CbpWeightLayerState
{
    /// <summary>Trained with CBP to the level set; stored as integer codes times the layer's scale.</summary>
    Constrained,

    /// <summary>Kept float as the network's first or last weight layer (<see cref="CbpQuantizeOptions.KeepFirstAndLastLayersFloat"/>).</summary>
    FloatFirstOrLast,

    /// <summary>Kept float because <see cref="CbpQuantizeOptions.FloatLayers"/> names it.</summary>
    FloatByOption,

    /// <summary>Kept float by the <see cref="CbpQuantizeOptions.MaxModelBytes"/> choice (the budget allowed it and it lost least that way).</summary>
    FloatByBudget,
}
