// Model Builder-style consumption code: load the saved model once, classify one image file at a time.
using System;
using System.IO;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Cbp.Samples.Images;

/// <summary>An image classifier with CBP-constrained weights, trained on a folder of images (one subfolder per class).</summary>
public static partial class ImageFolderModel
{
    /// <summary>One image to classify.</summary>
    public sealed class ModelInput
    {
        /// <summary>The image file, relative to the folder the model was trained on (or absolute).</summary>
        [ColumnName("ImagePath")]
        public string ImagePath { get; set; } = "";

        /// <summary>The true class (its folder name), when known; unused for prediction.</summary>
        [ColumnName("Label")]
        public string Label { get; set; } = "";
    }

    /// <summary>The prediction.</summary>
    public sealed class ModelOutput
    {
        /// <summary>Probability of each class.</summary>
        [ColumnName("Score")]
        public float[] Score { get; set; } = Array.Empty<float>();

        /// <summary>The predicted class (a one-slot vector: ML.NET's OnnxTransformer emits vectors).</summary>
        [ColumnName("PredictedLabel")]
        public string[] PredictedLabel { get; set; } = Array.Empty<string>();

        /// <summary>The predicted class.</summary>
        public string Label => PredictedLabel.Length > 0 ? PredictedLabel[0] : "";
    }

    /// <summary>Where <see cref="Predict"/> loads the model from (the training code saves it there).</summary>
    public static string MLNetModelPath { get; set; } = Path.GetFullPath("ImageFolderModel.zip");

    /// <summary>A prediction engine over the saved model, created on first use.</summary>
    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, true);

    /// <summary>Classifies one image.</summary>
    /// <param name="input">The image.</param>
    public static ModelOutput Predict(ModelInput input) => PredictEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        // The image transforms live in Microsoft.ML.ImageAnalytics: make them known to the model loader.
        mlContext.ComponentCatalog.RegisterAssembly(typeof(ImageLoadingTransformer).Assembly);
        // To score on a GPU (ONNX Runtime's CUDA execution provider; needs the CUDA 13 libraries):
        // mlContext.GpuDeviceId = 0;
        // mlContext.FallbackToCpu = true;
        ITransformer mlModel = mlContext.Model.Load(MLNetModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(mlModel);
    }
}
