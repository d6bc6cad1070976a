using System;
using System.Globalization;
using System.IO;
using Microsoft.ML.Cbp;
using TorchSharp;

namespace Cbp.Samples.Images;

/// <summary>The image-folder sample's settings.</summary>
public sealed class ImageSampleOptions
{
    /// <summary>The image folder (one subfolder of PNG/JPEG files per class); null for the images that ship with the repository.</summary>
    public string? Folder { get; set; }

    /// <summary>The level set.</summary>
    public WeightConstraint Constraint { get; set; } = WeightConstraint.Binary;

    /// <summary>CBP epochs.</summary>
    public int Epochs { get; set; } = 12;

    /// <summary>A few seconds' run.</summary>
    public bool Quick { get; set; }

    /// <summary>Images are resized to ImageSize x ImageSize.</summary>
    public int ImageSize { get; set; } = 28;

    /// <summary>Three colour channels instead of one grey channel.</summary>
    public bool Color { get; set; }

    /// <summary>Random crops and horizontal flips of the training batches.</summary>
    public bool Augment { get; set; }

    /// <summary>Where the model is written.</summary>
    public string OutputDirectory { get; set; } = Path.GetFullPath("cbp-output");
}

/// <summary>A problem the user can fix: printed without a stack trace, exit code 2.</summary>
public sealed class SampleException(string message) : Exception(message);

/// <summary>
/// The image-folder sample: <c>dotnet run --project src/Cbp.Samples -c Release -- images [options]</c> (which runs this
/// program), or <c>dotnet run --project src/Cbp.Samples/Images -c Release -- [options]</c>.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: dotnet run --project src/Cbp.Samples -c Release -- images [options]

        Image classification from a folder with one subfolder of PNG/JPEG files per class (Model Builder's layout): the
        files are checked, split 80/20, loaded, resized and turned into pixels by ML.NET's image transforms, CbpQuantize
        trains a small CNN with constrained weights, and the model is evaluated, saved, reloaded and asked about one file.

        options:
          --folder DIR           the image folder (default: 400 Fashion-MNIST test images that ship with the repository)
          --constraint binary|ternary|onebitshift|twobitshift   the weight level set (default binary)
          --epochs N             CBP epochs (default 12)
          --size N               resize to N x N (default 28)
          --color                three colour channels instead of one grey channel
          --augment              random crops and horizontal flips of the training batches
          --threads N            TorchSharp threads (default: one per core)
          --quick                a few seconds' run
          --output DIR           where the model is written (default ./cbp-output)
        """;

    private static int Main(string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        var options = new ImageSampleOptions();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string arg = args[i];
                string Next() => i + 1 < args.Length ? args[++i] : throw new SampleException($"{arg} needs a value.");
                int Positive() => int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n > 0
                    ? n
                    : throw new SampleException($"{arg} needs a positive whole number; got '{args[i]}'.");
                switch (arg)
                {
                    case "images" when i == 0:
                        break;
                    case "--help" or "-h" or "help":
                        Console.WriteLine(Usage);
                        return 0;
                    case "--folder":
                        options.Folder = Path.GetFullPath(Next());
                        break;
                    case "--constraint":
                        string name = Next();
                        options.Constraint = name.ToLowerInvariant() switch
                        {
                            "binary" => WeightConstraint.Binary,
                            "ternary" => WeightConstraint.Ternary,
                            "onebitshift" => WeightConstraint.OneBitShift,
                            "twobitshift" => WeightConstraint.TwoBitShift,
                            _ => throw new SampleException($"Unknown constraint '{name}'; use binary, ternary, onebitshift or twobitshift."),
                        };
                        break;
                    case "--epochs":
                        options.Epochs = Positive();
                        break;
                    case "--size":
                        options.ImageSize = Positive();
                        break;
                    case "--color":
                        options.Color = true;
                        break;
                    case "--augment":
                        options.Augment = true;
                        break;
                    case "--threads":
                        torch.set_num_threads(Positive());
                        break;
                    case "--quick":
                        options.Quick = true;
                        break;
                    case "--output":
                        options.OutputDirectory = Path.GetFullPath(Next());
                        break;
                    default:
                        throw new SampleException($"Unknown argument '{arg}'.");
                }
            }
            var result = ImageFolderSample.Run(options, Console.WriteLine, report =>
            {
                if (report.Epoch is not null)
                {
                    Console.WriteLine("  " + report);
                }
            });
            Console.WriteLine();
            Console.WriteLine($"{result.Images} images, {result.Classes.Count} classes{(result.BadFiles.Count > 0 ? $", {result.BadFiles.Count} unreadable files skipped" : "")}: " +
                $"held-out accuracy {result.Accuracy:P1}; model {result.ModelPath}.");
            Console.WriteLine($"Reloaded model: {result.PredictedFile} is '{result.Prediction}'.");
            return 0;
        }
        catch (SampleException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
    }
}
