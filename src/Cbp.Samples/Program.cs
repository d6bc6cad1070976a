using System;
using System.Globalization;
using System.IO;
using System.Linq;
using Cbp.Samples.FashionMnist;
using Microsoft.ML.Cbp;
using TorchSharp;

namespace Cbp.Samples;

/// <summary>
/// The samples' command line: <c>dotnet run --project src/Cbp.Samples -c Release -- [sample] [options]</c>. The default
/// sample is the main job, fashion-mnist.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: dotnet run --project src/Cbp.Samples -c Release -- [sample] [options]

        samples:
          fashion-mnist   (default) a small CNN with binary weights on Fashion-MNIST: train, evaluate, save, reload,
                          predict one image, batch-score the test set
          tabular         wine cultivars from a CSV that ships with the repository (ternary weights); writes WineModel.zip
          quantize-onnx   post-training CBP of a pretrained float ONNX model (--input model.onnx; default: a shipped
                          Fashion-MNIST MLP), ternary weights; writes the compact ONNX model
          batch-score     a saved model and a CSV in (--input model.zip --data file.csv; default: the tabular sample's
                          model and wine.csv), a CSV of predictions out, with rows/s
          images          image classification from a folder of PNG/JPEG files, one subfolder per class (--folder DIR;
                          default: Fashion-MNIST test images that ship with the repository): train, evaluate, save,
                          reload, classify one file; `images --help` lists its options
          engine          the CBP engine alone on a synthetic task: float, naive rounding, straight-through and CBP
          make-pretrained writes the float MLP that quantize-onnx uses (to --output)

        options:
          --constraint binary|ternary|onebitshift|twobitshift   the weight level set (default binary)
          --epochs N             CBP epochs (default 12; engine: 300 engine epochs)
          --pretrain-epochs N    float epochs before CBP (default 5)
          --full                 the whole Fashion-MNIST from /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)
          --quick                a few seconds on little data
          --output DIR           where models, plots and predictions are written (default ./cbp-output)
          --input FILE           the model to read (quantize-onnx: .onnx; batch-score: .zip)
          --data FILE            batch-score's CSV (a header line; the columns the model reads, by name)
          --max-bytes N          fashion-mnist: the compact ONNX file must fit N bytes; each layer's level set
                                 (2-bit shift, ternary, binary) or float is chosen for the least accuracy loss
          --low-bit              fashion-mnist: constrained fully connected layers run as ONNX Runtime's MatMulNBits
                                 (WeightExecution.MatMulNBits: codes kept in memory, same results)
          --threads N            TorchSharp threads (default: TorchSharp's, one per core; results are deterministic
                                 for a given seed, machine and thread count)
          --help                 this text
        """;

    private static int Main(string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        if (args.Length > 0 && args[0] == "images")
        {
            return ImagesProgram.Run(args[1..]);
        }
        SampleOptions options;
        try
        {
            options = ProgramArguments.Parse(args);
        }
        catch (SampleException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        if (options.Sample == "help")
        {
            Console.WriteLine(Usage);
            return 0;
        }
        if (options.Threads is int threads)
        {
            torch.set_num_threads(threads);
        }
        try
        {
            switch (options.Sample)
            {
                case "engine":
                    EngineSample(options);
                    break;
                case "tabular":
                    Tabular(options);
                    break;
                case "quantize-onnx":
                    QuantizeOnnx(options);
                    break;
                case "batch-score":
                    BatchScore(options);
                    break;
                case "make-pretrained":
                    Console.WriteLine($"Wrote {Samples.QuantizeOnnx.PretrainedModelMaker.Make(options.OutputDirectory, Console.WriteLine)}.");
                    break;
                default:
                    FashionMnist(options);
                    break;
            }
            return 0;
        }
        catch (SampleException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    private static void FashionMnist(SampleOptions options)
    {
        if (CbpDataParallel.Rank > 0)
        {
            // Started by mpiexec: the ranks train together and rank 0 reports; the others print nothing (errors still go to stderr).
            Console.SetOut(TextWriter.Null);
        }
        var result = ConsoleProgress.Training((log, progress) => FashionMnistSample.Run(options, log, progress));
        if (result is null)
        {
            return;
        }
        Console.WriteLine();
        string weights = options.MaxBytes is long budget ? $"mixed-precision weights within {budget:N0} bytes" : $"{options.Constraint} weights";
        Console.WriteLine($"Fashion-MNIST, small CNN, {weights} (first and last layers float):");
        Console.WriteLine($"  {"",-34} {"float",14} {(options.MaxBytes is null ? options.Constraint.Name : "mixed") + " (CBP)",18}");
        Console.WriteLine($"  {"test accuracy",-34} {result.FloatAccuracy,14:P2} {result.QuantizedAccuracy,18:P2}");
        Console.WriteLine($"  {"CFS/s before projection",-34} {"",14} {result.NormalizedCfs,18:F4}");
        Console.WriteLine($"  {"latent weights on their level",-34} {"",14} {result.FractionOnLevel,18:P2}");
        Console.WriteLine($"  {"ONNX model bytes",-34} {result.FloatBytes,14:N0} {result.CompactBytes,18:N0}");
        Console.WriteLine($"  {"scoring rows/s, plain ML.NET reload",-34} {"",14} {result.PlainRowsPerSecond,18:N0}");
        Console.WriteLine($"  {"scoring rows/s, batched reload",-34} {"",14} {result.BatchedRowsPerSecond,18:N0}");
        Console.WriteLine($"  training took {result.TrainingSeconds:F0} s; float accuracy is the network after its float pre-training epochs.");
    }

    private static void Tabular(SampleOptions options)
    {
        var result = Samples.Tabular.TabularSample.Run(options, Console.WriteLine);
        Console.WriteLine($"Wine cultivars, test accuracy {result.Accuracy:P1}; model {result.ModelPath}. Score a CSV with it: batch-score --input {result.ModelPath}");
    }

    private static void QuantizeOnnx(SampleOptions options)
    {
        var result = Samples.QuantizeOnnx.QuantizeOnnxSample.Run(options, Console.WriteLine);
        Console.WriteLine();
        Console.WriteLine($"  {"",-22} {"float (given)",16} {"quantized",14}");
        Console.WriteLine($"  {"test accuracy",-22} {result.FloatAccuracy,16:P2} {result.QuantizedAccuracy,14:P2}");
        Console.WriteLine($"  {"ONNX file bytes",-22} {result.FloatBytes,16:N0} {result.CompactBytes,14:N0}");
        Console.WriteLine($"  compact model: {result.OutputPath}");
    }

    private static void BatchScore(SampleOptions options)
    {
        var result = ConsoleProgress.Rows("scoring rows", progress => Samples.BatchScore.BatchScoreSample.Run(options, progress));
        Console.WriteLine($"Scored {result.Rows:N0} rows at {result.RowsPerSecond:N0} rows/s (reading, scoring and writing); predictions in {result.OutputPath}.");
    }

    private static void EngineSample(SampleOptions options)
    {
        int epochs = options.Epochs;
        var result = EngineDemo.Run(options.Constraint, epochs, report =>
        {
            if (report.Epoch % Math.Max(1, epochs / 10) == 0)
            {
                Console.WriteLine(
                    $"  {report.Mode,-15} epoch {report.Epoch,4}  loss {report.TaskLoss:F4}  val.acc {report.ValidationAccuracy:P2}  " +
                    $"CFS/s {report.NormalizedCfs:F4}  on-level {report.FractionOnLevel:P2}  g {report.G,4}  lambda {report.MultiplierMean:F3}  lr {report.LearningRate:E1}");
            }
        });
        Console.WriteLine();
        Console.WriteLine($"Synthetic task, {options.Constraint} weights in the hidden layer, {epochs} engine epochs of {EngineDemo.BatchesPerEpoch} batches:");
        Console.WriteLine($"  {"method",-28} {"test accuracy",14} {"CFS/s",10} {"on level",10} {"seconds",9}");
        foreach (var row in result)
        {
            Console.WriteLine($"  {row.Method,-28} {row.Accuracy,14:P2} {row.NormalizedCfs,10:F4} {row.FractionOnLevel,10:P2} {row.Seconds,9:F2}");
        }
    }
}
