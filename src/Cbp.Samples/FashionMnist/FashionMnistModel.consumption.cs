// Model Builder-style consumption code: load the saved model once, predict one image at a time.
using System;
using System.IO;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cbp.Samples.FashionMnist;

/// <summary>The Fashion-MNIST classifier with binary (or other CBP-constrained) weights.</summary>
public static partial class FashionMnistModel
{
    /// <summary>One image to classify.</summary>
    public sealed class ModelInput
    {
        /// <summary>The true class name, when known (the pipeline maps it to a key; unused for prediction).</summary>
        [ColumnName("Label")]
        public string Label { get; set; } = "";

        /// <summary>28 x 28 pixels in [0, 1], row by row.</summary>
        [ColumnName("Features")]
        [VectorType(28 * 28)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    /// <summary>The prediction.</summary>
    public sealed class ModelOutput
    {
        /// <summary>Probability of each class, in the order of <see cref="FashionMnistData.ClassNames"/> as the label key saw them.</summary>
        [ColumnName("Score")]
        public float[] Score { get; set; } = Array.Empty<float>();

        /// <summary>The predicted class name (a one-slot vector: ML.NET's OnnxTransformer emits vectors).</summary>
        [ColumnName("PredictedLabel")]
        public string[] PredictedLabel { get; set; } = Array.Empty<string>();

        /// <summary>The predicted class name.</summary>
        public string Label => PredictedLabel.Length > 0 ? PredictedLabel[0] : "";
    }

    /// <summary>Where <see cref="Predict"/> loads the model from (the training code saves it there).</summary>
    public static string MLNetModelPath { get; set; } = Path.GetFullPath("FashionMnistModel.zip");

    /// <summary>A prediction engine over the saved model, created on first use.</summary>
    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, true);

    /// <summary>Classifies one image.</summary>
    /// <param name="input">The image.</param>
    public static ModelOutput Predict(ModelInput input) => PredictEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        // To score on a GPU (ONNX Runtime's CUDA execution provider; needs the CUDA 13 libraries):
        // mlContext.GpuDeviceId = 0;
        // mlContext.FallbackToCpu = true;
        ITransformer mlModel = mlContext.Model.Load(MLNetModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(mlModel);
    }
}
