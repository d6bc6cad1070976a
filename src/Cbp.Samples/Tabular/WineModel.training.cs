// Model Builder-style training code for the wine classifier.
using Microsoft.ML;
using Microsoft.ML.Cbp;

namespace Cbp.Samples.Tabular;

public static partial class WineModel
{
    /// <summary>The 13 measurement columns.</summary>
    public static readonly string[] FeatureColumns =
    {
        "Alcohol", "MalicAcid", "Ash", "AlcalinityOfAsh", "Magnesium", "TotalPhenols", "Flavanoids",
        "NonflavanoidPhenols", "Proanthocyanins", "ColorIntensity", "Hue", "OD280OD315", "Proline",
    };

    /// <summary>Loads wine.csv (a header line, comma-separated).</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="path">The CSV file.</param>
    public static IDataView LoadData(MLContext mlContext, string path) =>
        mlContext.Data.LoadFromTextFile<ModelInput>(path, separatorChar: ',', hasHeader: true);

    /// <summary>
    /// The pipeline: measurements into one normalised vector, cultivar names to keys, an MLP whose hidden layer has
    /// ternary weights trained by CBP, keys back to names.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="constraint">The weight level set (ternary by default).</param>
    /// <param name="epochs">CBP epochs.</param>
    public static IEstimator<ITransformer> BuildPipeline(MLContext mlContext, WeightConstraint? constraint = null, int epochs = 20) =>
        mlContext.Transforms.Concatenate("Features", FeatureColumns)
            .Append(mlContext.Transforms.NormalizeMeanVariance("Features"))
            .Append(mlContext.Transforms.Conversion.MapValueToKey("Label", "Cultivar"))
            .Append(mlContext.Transforms.CbpQuantize(new CbpQuantizeOptions
            {
                Architecture = CbpArchitecture.Mlp(new[] { 64, 64 }),
                Constraint = constraint ?? WeightConstraint.Ternary,
                PretrainEpochs = 40,
                Epochs = epochs,
                BatchSize = 16,
            }))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel", "PredictedLabel"));

    /// <summary>Trains the pipeline.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="trainData">Rows of wine.csv.</param>
    /// <param name="pipeline">The pipeline from <see cref="BuildPipeline"/>.</param>
    public static ITransformer RetrainPipeline(MLContext mlContext, IDataView trainData, IEstimator<ITransformer> pipeline) => pipeline.Fit(trainData);

    /// <summary>Saves the model (a plain ML.NET model zip) and remembers the path for <see cref="Predict"/>.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The model.</param>
    /// <param name="schema">The training data's schema.</param>
    /// <param name="outputModelPath">The zip to write.</param>
    public static void SaveModel(MLContext mlContext, ITransformer model, DataViewSchema schema, string outputModelPath)
    {
        mlContext.Model.Save(model, schema, outputModelPath);
        MLNetModelPath = outputModelPath;
    }
}
