using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Cbp;
using SkiaSharp;

namespace Cbp.Samples.Images;

/// <summary>What the image-folder sample did.</summary>
/// <param name="Classes">The class (subfolder) names.</param>
/// <param name="Images">Images used.</param>
/// <param name="BadFiles">Files skipped because they could not be decoded, with the reason.</param>
/// <param name="Accuracy">Accuracy on the held-out fifth of the images.</param>
/// <param name="ModelPath">The saved model.</param>
/// <param name="PredictedFile">The file classified by the reloaded model.</param>
/// <param name="Prediction">Its predicted class.</param>
/// <param name="DataPath">How training read the images (the training report's DataPath).</param>
public sealed record ImageFolderResult(IReadOnlyList<string> Classes, int Images, IReadOnlyList<string> BadFiles, double Accuracy, string ModelPath,
    string PredictedFile, string Prediction, string DataPath);

/// <summary>
/// Image classification from a folder of images with one subfolder per class, in Model Builder's shape: the files are
/// checked, split 80/20, loaded, resized and turned into pixels by ML.NET's image transforms, and CbpQuantize trains a
/// small CNN with constrained weights; the model is evaluated, saved, reloaded and asked about one file.
/// </summary>
public static class ImageFolderSample
{
    private static readonly string[] Extensions = { ".png", ".jpg", ".jpeg" };

    /// <summary>The image folder that ships with the repository (Fashion-MNIST test images as PNG files).</summary>
    public static string DefaultFolder => Path.Combine(AppContext.BaseDirectory, "Data", "fashion-mnist-images");

    /// <summary>Runs the sample.</summary>
    /// <param name="options">Settings (folder, constraint, epochs, output folder, quick).</param>
    /// <param name="log">Receives progress lines.</param>
    /// <param name="progress">Receives training progress.</param>
    /// <exception cref="SampleException">The folder is missing or holds fewer than two classes of readable images.</exception>
    public static ImageFolderResult Run(ImageSampleOptions options, Action<string> log, Action<CbpProgressReport>? progress = null)
    {
        string folder = options.Folder ?? DefaultFolder;
        var (rows, classes, bad) = Scan(folder);
        foreach (string problem in bad)
        {
            log($"Skipped {problem}");
        }
        log($"{rows.Count} images in {classes.Count} classes ({string.Join(", ", classes)}) from {folder}.");

        var mlContext = new MLContext(seed: 1);
        // The folders list each class's files together; a random order lets the training reader's shuffle pool mix classes.
        new Random(1).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(rows));
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var split = mlContext.Data.TrainTestSplit(data, testFraction: 0.2, seed: 1);
        var pipeline = ImageFolderModel.BuildPipeline(mlContext, folder, options.ImageSize, options.Color, options.Constraint,
            pretrainEpochs: options.Quick ? 1 : 10, epochs: options.Quick ? 1 : options.Epochs,
            augmentation: options.Augment ? CbpAugmentation.Compose(CbpAugmentation.RandomCrop(2), CbpAugmentation.RandomHorizontalFlip()) : null,
            progress: progress);
        var model = ImageFolderModel.RetrainPipeline(mlContext, split.TrainSet, pipeline);
        var report = ((IEnumerable<ITransformer>)model).OfType<CbpQuantizeTransformer>().Single().TrainingReport!;
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
        Directory.CreateDirectory(options.OutputDirectory);
        string path = Path.Combine(options.OutputDirectory, "ImageFolderModel.zip");
        ImageFolderModel.SaveModel(mlContext, model, data.Schema, path);
        (model as IDisposable)?.Dispose();

        var heldOut = mlContext.Data.CreateEnumerable<ImageFolderModel.ModelInput>(split.TestSet, reuseRowObject: false).ToList();
        var first = heldOut[0];
        var prediction = ImageFolderModel.Predict(first);
        log($"Trained on {report.TrainingRows} images ({report.DataPath}); {report.Constraint.Name} weights in {string.Join(", ", report.ConstrainedLayers)}.");
        log($"Held-out accuracy {metrics.MicroAccuracy:P1} on {heldOut.Count} images. Saved {path}.");
        log($"Reloaded and classified {first.ImagePath}: '{prediction.Label}' (its folder: '{first.Label}').");
        return new ImageFolderResult(classes, rows.Count, bad, metrics.MicroAccuracy, path, first.ImagePath, prediction.Label, report.DataPath);
    }

    /// <summary>
    /// Lists the images of each class subfolder and decodes each once: ML.NET's ExtractPixels turns an image it cannot
    /// load into an all-zero vector, which training could not tell from a black image, so unreadable files are reported
    /// and left out here instead.
    /// </summary>
    /// <param name="folder">The image folder.</param>
    public static (List<ImageFolderModel.ModelInput> Rows, List<string> Classes, List<string> BadFiles) Scan(string folder)
    {
        if (!Directory.Exists(folder))
        {
            throw new SampleException($"Image folder '{folder}' does not exist; give --folder DIR with one subfolder of PNG or JPEG files per class.");
        }
        var rows = new List<ImageFolderModel.ModelInput>();
        var bad = new List<string>();
        var classes = new List<string>();
        foreach (string classFolder in Directory.GetDirectories(folder).OrderBy(d => d, StringComparer.Ordinal))
        {
            string label = Path.GetFileName(classFolder);
            int good = 0;
            foreach (string file in Directory.GetFiles(classFolder).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).OrderBy(f => f, StringComparer.Ordinal))
            {
                string relative = Path.GetRelativePath(folder, file);
                string? problem = Check(file);
                if (problem is null)
                {
                    rows.Add(new ImageFolderModel.ModelInput { ImagePath = relative, Label = label });
                    good++;
                }
                else
                {
                    bad.Add($"{relative}: {problem}");
                }
            }
            if (good > 0)
            {
                classes.Add(label);
            }
        }
        if (classes.Count < 2)
        {
            throw new SampleException(
                $"Image folder '{folder}' has {classes.Count} class subfolder(s) with readable PNG or JPEG images; classification needs at least two" +
                (bad.Count > 0 ? $" ({bad.Count} files could not be decoded)." : "."));
        }
        return (rows, classes, bad);
    }

    private static string? Check(string file)
    {
        try
        {
            using var bitmap = SKBitmap.Decode(file);
            return bitmap is null ? "not a decodable image" : bitmap.Width < 1 || bitmap.Height < 1 ? "empty image" : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return e.Message;
        }
    }
}
