// Model Builder-style training code: the pipeline, training, and saving.
using System;
using Microsoft.ML;
using Microsoft.ML.Cbp;

namespace Cbp.Samples.FashionMnist;

public static partial class FashionMnistModel
{
    /// <summary>The pipeline: class names to keys, CBP training of a small CNN with constrained weights, keys back to names.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="constraint">The weight level set (binary by default).</param>
    /// <param name="pretrainEpochs">Float epochs before CBP.</param>
    /// <param name="epochs">CBP epochs.</param>
    /// <param name="validationData">Data whose accuracy is reported after every epoch (labels already keys), or null.</param>
    /// <param name="progress">Receives the training progress.</param>
    /// <param name="maxModelBytes">A size budget for the compact ONNX file (per-layer precision chosen to fit), or null.</param>
    /// <param name="weightExecution">How scoring runs the constrained weights (MatMulNBits keeps fully connected layers as codes).</param>
    public static IEstimator<ITransformer> BuildPipeline(MLContext mlContext, WeightConstraint? constraint = null, int pretrainEpochs = 5, int epochs = 12,
        IDataView? validationData = null, Action<CbpProgressReport>? progress = null, long? maxModelBytes = null,
        WeightExecution weightExecution = WeightExecution.DecodedFloat) =>
        mlContext.Transforms.Conversion.MapValueToKey("Label", "Label")
            .Append(mlContext.Transforms.CbpQuantize(new CbpQuantizeOptions
            {
                LabelColumnName = "Label",
                FeatureColumnName = "Features",
                InputShape = new[] { 1, 28, 28 },
                Architecture = CbpArchitecture.SmallCnn(),
                Constraint = constraint ?? WeightConstraint.Binary,
                PretrainEpochs = pretrainEpochs,
                Epochs = epochs,
                ValidationData = validationData,
                Progress = progress,
                MaxModelBytes = maxModelBytes,
                WeightExecution = weightExecution,
            }))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel", "PredictedLabel"));

    /// <summary>Trains the pipeline on <paramref name="trainData"/>.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="trainData">Images with string labels.</param>
    /// <param name="pipeline">The pipeline from <see cref="BuildPipeline"/>.</param>
    public static ITransformer RetrainPipeline(MLContext mlContext, IDataView trainData, IEstimator<ITransformer> pipeline) => pipeline.Fit(trainData);

    /// <summary>Saves the model where <see cref="MLNetModelPath"/> says (a plain ML.NET model zip with the ONNX network inside).</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The trained model.</param>
    /// <param name="schema">The training data's schema.</param>
    /// <param name="outputModelPath">The zip to write.</param>
    public static void SaveModel(MLContext mlContext, ITransformer model, DataViewSchema schema, string outputModelPath)
    {
        mlContext.Model.Save(model, schema, outputModelPath);
        MLNetModelPath = outputModelPath;
    }
}
