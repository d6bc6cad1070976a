using System;
using System.IO;
using System.Linq;
using Microsoft.ML;

namespace Cbp.Samples.Tabular;

/// <summary>What the tabular sample measured.</summary>
/// <param name="Accuracy">Test accuracy (30% of the rows held out).</param>
/// <param name="ModelPath">The saved model.</param>
/// <param name="Prediction">The predicted cultivar of the first test wine.</param>
public sealed record TabularResult(double Accuracy, string ModelPath, string Prediction);

/// <summary>The tabular sample: wine cultivars from a CSV that ships with the repository, ternary weights.</summary>
public static class TabularSample
{
    /// <summary>The shipped CSV.</summary>
    public static string DataPath => Path.Combine(AppContext.BaseDirectory, "Data", "wine", "wine.csv");

    /// <summary>Runs the sample.</summary>
    /// <param name="options">Settings (constraint, epochs, output folder).</param>
    /// <param name="log">Receives progress lines.</param>
    public static TabularResult Run(SampleOptions options, Action<string> log)
    {
        var mlContext = new MLContext(seed: 1);
        var data = WineModel.LoadData(mlContext, DataPath);
        var split = mlContext.Data.TrainTestSplit(data, testFraction: 0.3, seed: 1);
        var constraint = options.ConstraintGiven ? options.Constraint : null;
        var model = WineModel.RetrainPipeline(mlContext, split.TrainSet, WineModel.BuildPipeline(mlContext, constraint, options.Quick ? 4 : options.EpochsGiven ? options.Epochs : 20));
        var cbp = ((System.Collections.Generic.IEnumerable<ITransformer>)model).OfType<Microsoft.ML.Cbp.CbpQuantizeTransformer>().Single();
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
        Directory.CreateDirectory(options.OutputDirectory);
        string path = Path.Combine(options.OutputDirectory, "WineModel.zip");
        WineModel.SaveModel(mlContext, model, data.Schema, path);
        var first = mlContext.Data.CreateEnumerable<WineModel.ModelInput>(split.TestSet, reuseRowObject: false).First();
        var prediction = WineModel.Predict(first);
        log($"Wine: {cbp.TrainingReport!.TrainingRows} training rows, {cbp.TrainingReport.Constraint.Name} weights in {string.Join(", ", cbp.TrainingReport.ConstrainedLayers)}; " +
            $"test accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3}. Saved {path}.");
        log($"Reloaded and predicted the first test wine: '{prediction.PredictedLabel[0]}' (it is '{first.Cultivar}').");
        (model as IDisposable)?.Dispose();
        return new TabularResult(metrics.MicroAccuracy, path, prediction.PredictedLabel[0]);
    }
}
