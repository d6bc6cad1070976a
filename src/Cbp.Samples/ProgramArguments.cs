using System.Globalization;
using System.IO;
using Microsoft.ML.Cbp;

namespace Cbp.Samples;

/// <summary>The samples' command-line parser.</summary>
public static class ProgramArguments
{
    /// <summary>Reads the command line.</summary>
    /// <param name="args">The arguments after <c>--</c>.</param>
    /// <exception cref="SampleException">An argument is unknown, incomplete or invalid.</exception>
    public static SampleOptions Parse(string[] args)
    {
        var options = new SampleOptions();
        bool epochsGiven = false;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new SampleException($"{arg} needs a value.");
            int Positive() => int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n > 0
                ? n
                : throw new SampleException($"{arg} needs a positive whole number; got '{args[i]}'.");
            switch (arg)
            {
                case "fashion-mnist" or "engine" or "tabular" or "quantize-onnx" or "batch-score" or "make-pretrained" when i == 0:
                    options.Sample = arg;
                    break;
                case "--help" or "-h" or "help":
                    options.Sample = "help";
                    return options;
                case "--constraint":
                    string name = Next();
                    options.Constraint = ParseConstraint(name) ?? throw new SampleException($"Unknown constraint '{name}'; use binary, ternary, onebitshift or twobitshift.");
                    options.ConstraintGiven = true;
                    break;
                case "--epochs":
                    options.Epochs = Positive();
                    epochsGiven = true;
                    options.EpochsGiven = true;
                    break;
                case "--pretrain-epochs":
                    options.PretrainEpochs = Positive();
                    break;
                case "--quick":
                    options.Quick = true;
                    break;
                case "--full":
                    options.Full = true;
                    break;
                case "--output":
                    options.OutputDirectory = Path.GetFullPath(Next());
                    break;
                case "--input":
                    options.Input = Path.GetFullPath(Next());
                    break;
                case "--data":
                    options.Data = Path.GetFullPath(Next());
                    break;
                case "--threads":
                    options.Threads = Positive();
                    break;
                case "--low-bit":
                    options.LowBit = true;
                    break;
                case "--max-bytes":
                    string bytes = Next();
                    options.MaxBytes = long.TryParse(bytes, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long b) && b > 0
                        ? b
                        : throw new SampleException($"--max-bytes needs a positive number of bytes; got '{bytes}'.");
                    break;
                default:
                    throw new SampleException($"Unknown argument '{arg}'.");
            }
        }
        if (options.Sample == "engine" && !epochsGiven)
        {
            options.Epochs = options.Quick ? 60 : 300;
        }
        return options;
    }

    internal static WeightConstraint? ParseConstraint(string name) => name.ToLowerInvariant() switch
    {
        "binary" => WeightConstraint.Binary,
        "ternary" => WeightConstraint.Ternary,
        "onebitshift" => WeightConstraint.OneBitShift,
        "twobitshift" => WeightConstraint.TwoBitShift,
        _ => null,
    };
}
