// Model Builder-style consumption code for the wine classifier.
using System;
using System.IO;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cbp.Samples.Tabular;

/// <summary>Classifies wines by cultivar from 13 chemical measurements, with a ternary-weight network.</summary>
public static partial class WineModel
{
    /// <summary>One wine, as a row of wine.csv.</summary>
    public sealed class ModelInput
    {
        /// <summary>Alcohol, %.</summary>
        [LoadColumn(0)] public float Alcohol { get; set; }

        /// <summary>Malic acid.</summary>
        [LoadColumn(1)] public float MalicAcid { get; set; }

        /// <summary>Ash.</summary>
        [LoadColumn(2)] public float Ash { get; set; }

        /// <summary>Alcalinity of ash.</summary>
        [LoadColumn(3)] public float AlcalinityOfAsh { get; set; }

        /// <summary>Magnesium.</summary>
        [LoadColumn(4)] public float Magnesium { get; set; }

        /// <summary>Total phenols.</summary>
        [LoadColumn(5)] public float TotalPhenols { get; set; }

        /// <summary>Flavanoids.</summary>
        [LoadColumn(6)] public float Flavanoids { get; set; }

        /// <summary>Nonflavanoid phenols.</summary>
        [LoadColumn(7)] public float NonflavanoidPhenols { get; set; }

        /// <summary>Proanthocyanins.</summary>
        [LoadColumn(8)] public float Proanthocyanins { get; set; }

        /// <summary>Color intensity.</summary>
        [LoadColumn(9)] public float ColorIntensity { get; set; }

        /// <summary>Hue.</summary>
        [LoadColumn(10)] public float Hue { get; set; }

        /// <summary>OD280/OD315 of diluted wines.</summary>
        [LoadColumn(11)] public float OD280OD315 { get; set; }

        /// <summary>Proline.</summary>
        [LoadColumn(12)] public float Proline { get; set; }

        /// <summary>The cultivar ("cultivar 1" to "cultivar 3"), when known.</summary>
        [LoadColumn(13)] public string Cultivar { get; set; } = "";
    }

    /// <summary>The prediction.</summary>
    public sealed class ModelOutput
    {
        /// <summary>Probability of each cultivar.</summary>
        [ColumnName("Score")]
        public float[] Score { get; set; } = Array.Empty<float>();

        /// <summary>The predicted cultivar (a one-slot vector: ML.NET's OnnxTransformer emits vectors).</summary>
        [ColumnName("PredictedLabel")]
        public string[] PredictedLabel { get; set; } = Array.Empty<string>();
    }

    /// <summary>Where <see cref="Predict"/> loads the model from.</summary>
    public static string MLNetModelPath { get; set; } = Path.GetFullPath("WineModel.zip");

    /// <summary>A prediction engine over the saved model, created on first use.</summary>
    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, true);

    /// <summary>Classifies one wine.</summary>
    /// <param name="input">The measurements.</param>
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
