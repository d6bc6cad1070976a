using System;
using System.IO;
using System.Linq;
using Cbp.Samples;
using Cbp.Samples.FashionMnist;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>The samples in their quick mode: files written, the model reloads and scores, the numbers are real.</summary>
[TestClass]
public sealed class SampleTests
{
    [TestMethod]
    public void FashionMnistMainJobTrainsSavesReloadsAndScoresInQuickMode()
    {
        string output = Path.Combine(Path.GetTempPath(), "cbp-sample-" + Guid.NewGuid().ToString("N"));
        try
        {
            var lines = new System.Collections.Generic.List<string>();
            var result = FashionMnistSample.Run(new SampleOptions { Quick = true, OutputDirectory = output }, lines.Add);
            Assert.IsNotNull(result, "a process alone is rank 0");
            Assert.IsTrue(File.Exists(result.ModelPath) && File.Exists(result.OnnxPath));
            foreach (string png in new[] { result.TrainingCurvePath, result.HistogramPath, result.LayersPath })
            {
                var header = File.ReadAllBytes(png)[..8];
                CollectionAssert.AreEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, header, $"{png} is a PNG");
            }
            Assert.IsTrue(result.QuantizedAccuracy is > 0.3 and <= 1.0, $"quantized accuracy {result.QuantizedAccuracy}");
            Assert.IsTrue(result.CompactBytes < result.FloatBytes / 5, "the compact model is several times smaller");
            Assert.IsTrue(result.BatchedRowsPerSecond > 0 && result.PlainRowsPerSecond > 0);
            Assert.IsTrue(lines.Exists(l => l.StartsWith("Reloaded and predicted the first test image", StringComparison.Ordinal)));
            Assert.IsTrue(lines.Exists(l => l.Contains("| total (5 layers) |", StringComparison.Ordinal)), "the model summary is printed");
            // The consumption code's engine reads the zip the training code wrote.
            Assert.AreEqual(result.ModelPath, FashionMnistModel.MLNetModelPath);
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }

    [TestMethod]
    public void TabularTrainsOnTheShippedCsvAndBatchScoreWritesItsPredictions()
    {
        string output = Path.Combine(Path.GetTempPath(), "cbp-sample-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new SampleOptions { Quick = true, OutputDirectory = output };
            var tabular = global::Cbp.Samples.Tabular.TabularSample.Run(options, _ => { });
            Assert.IsTrue(tabular.Accuracy is > 0.5 and <= 1.0, $"wine accuracy {tabular.Accuracy}");
            StringAssert.StartsWith(tabular.Prediction, "cultivar ");

            var scored = global::Cbp.Samples.BatchScore.BatchScoreSample.Run(options);
            Assert.AreEqual(178, scored.Rows);
            var lines = File.ReadAllLines(scored.OutputPath);
            Assert.AreEqual(179, lines.Length);
            StringAssert.EndsWith(lines[0], ",Cultivar,PredictedLabel,Score0,Score1,Score2");
            var first = lines[1].Split(',');
            StringAssert.StartsWith(first[14], "cultivar ", "the predicted label follows the input line");
            double sum = double.Parse(first[15], System.Globalization.CultureInfo.InvariantCulture) + double.Parse(first[16], System.Globalization.CultureInfo.InvariantCulture)
                + double.Parse(first[17], System.Globalization.CultureInfo.InvariantCulture);
            Assert.AreEqual(1.0, sum, 1e-5, "the three probabilities sum to 1");

            var missing = Assert.ThrowsExactly<SampleException>(() => global::Cbp.Samples.BatchScore.BatchScoreSample.Run(new SampleOptions { OutputDirectory = output, Input = Path.Combine(output, "none.zip") }));
            StringAssert.Contains(missing.Message, "does not exist");
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }

    [TestMethod]
    public void QuantizeOnnxQuantizesTheShippedPretrainedModel()
    {
        string output = Path.Combine(Path.GetTempPath(), "cbp-sample-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = global::Cbp.Samples.QuantizeOnnx.QuantizeOnnxSample.Run(new SampleOptions { Quick = true, OutputDirectory = output }, _ => { });
            // The shipped float MLP scores about 87% on the 1,000 test images; quick mode uses the first 300.
            Assert.IsTrue(result.FloatAccuracy > 0.75, $"the pretrained model is read with its own class order (float accuracy {result.FloatAccuracy:P1})");
            Assert.IsTrue(result.QuantizedAccuracy is > 0.5 and <= 1.0, $"quantized accuracy {result.QuantizedAccuracy}");
            Assert.IsTrue(File.Exists(result.OutputPath));
            Assert.IsTrue(result.CompactBytes < result.FloatBytes);
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }

    [TestMethod]
    public void FashionMnistWithASizeBudgetWritesAFileThatFits()
    {
        string output = Path.Combine(Path.GetTempPath(), "cbp-sample-" + Guid.NewGuid().ToString("N"));
        try
        {
            // With --low-bit too: the mixed plan's constrained dense layer runs as MatMulNBits, also after reloading the zip.
            var options = ProgramArguments.Parse(new[] { "fashion-mnist", "--quick", "--max-bytes", "120000", "--low-bit", "--output", output });
            Assert.AreEqual(120_000L, options.MaxBytes);
            Assert.IsTrue(options.LowBit);
            var lines = new System.Collections.Generic.List<string>();
            var result = FashionMnistSample.Run(options, lines.Add);
            Assert.IsNotNull(result);
            Assert.IsTrue(lines.Any(l => l.Contains("with its weights as MatMulNBits", StringComparison.Ordinal)), string.Join("\n", lines));
            Assert.IsTrue(result.CompactBytes <= 120_000, $"{result.CompactBytes:N0} bytes");
            Assert.AreEqual(result.CompactBytes, new FileInfo(result.OnnxPath).Length);
            Assert.IsTrue(result.QuantizedAccuracy is > 0.3 and <= 1.0, $"quantized accuracy {result.QuantizedAccuracy}");
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }

    [TestMethod]
    public void BadArgumentsAreRejectedWithAMessage()
    {
        var budget = Assert.ThrowsExactly<SampleException>(() => ProgramArguments.Parse(new[] { "--max-bytes", "-5" }));
        StringAssert.Contains(budget.Message, "--max-bytes needs a positive number of bytes");
        var unknown = Assert.ThrowsExactly<SampleException>(() => ProgramArguments.Parse(new[] { "--constraint", "quaternary" }));
        StringAssert.Contains(unknown.Message, "Unknown constraint 'quaternary'");
        var epochs = Assert.ThrowsExactly<SampleException>(() => ProgramArguments.Parse(new[] { "--epochs", "zero" }));
        StringAssert.Contains(epochs.Message, "--epochs needs a positive whole number");
        Assert.AreEqual("engine", ProgramArguments.Parse(new[] { "engine", "--quick" }).Sample);
    }
}
