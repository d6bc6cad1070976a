// Model Builder-style training code for image classification: image files in, CbpQuantize underneath.
using System;
using Microsoft.ML;
using Microsoft.ML.Cbp;
using Microsoft.ML.Transforms.Image;

namespace Cbp.Samples.Images;

public static partial class ImageFolderModel
{
    /// <summary>
    /// The pipeline: folder names to keys, then ML.NET's LoadImages, ResizeImages and ExtractPixels (pixels scaled to
    /// [0, 1], channels first), then a small CNN trained by CBP, then keys back to folder names.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="imageFolder">The folder the ImagePath column is relative to.</param>
    /// <param name="size">Images are resized to size x size.</param>
    /// <param name="color">Three colour channels instead of one grey channel.</param>
    /// <param name="constraint">The weight level set (binary by default).</param>
    /// <param name="pretrainEpochs">Float epochs before CBP.</param>
    /// <param name="epochs">CBP epochs.</param>
    /// <param name="augmentation">On-the-fly augmentation of the training batches, or null.</param>
    /// <param name="progress">Receives the training progress.</param>
    public static IEstimator<ITransformer> BuildPipeline(MLContext mlContext, string imageFolder, int size = 28, bool color = false, WeightConstraint? constraint = null,
        int pretrainEpochs = 10, int epochs = 12, CbpAugmentation? augmentation = null, Action<CbpProgressReport>? progress = null) =>
        mlContext.Transforms.Conversion.MapValueToKey("Label", "Label")
            .Append(mlContext.Transforms.LoadImages("Image", imageFolder, "ImagePath"))
            .Append(mlContext.Transforms.ResizeImages("Image", size, size, "Image"))
            .Append(mlContext.Transforms.ExtractPixels("Features", "Image",
                color ? ImagePixelExtractingEstimator.ColorBits.Rgb : ImagePixelExtractingEstimator.ColorBits.Red,
                interleavePixelColors: false, scaleImage: 1f / 255))
            .Append(mlContext.Transforms.CbpQuantize(new CbpQuantizeOptions
            {
                LabelColumnName = "Label",
                FeatureColumnName = "Features",
                InputShape = new[] { color ? 3 : 1, size, size },
                Architecture = CbpArchitecture.SmallCnn(),
                Constraint = constraint ?? WeightConstraint.Binary,
                PretrainEpochs = pretrainEpochs,
                Epochs = epochs,
                Augmentation = augmentation,
                Progress = progress,
            }))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel", "PredictedLabel"));

    /// <summary>Trains the pipeline on <paramref name="trainData"/>.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="trainData">Rows of ImagePath and Label.</param>
    /// <param name="pipeline">The pipeline from <see cref="BuildPipeline"/>.</param>
    public static ITransformer RetrainPipeline(MLContext mlContext, IDataView trainData, IEstimator<ITransformer> pipeline) => pipeline.Fit(trainData);

    /// <summary>Saves the model where <see cref="MLNetModelPath"/> says.</summary>
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
