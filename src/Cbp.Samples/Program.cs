using System;
using System.Globalization;
using System.Linq;
using Microsoft.ML.Cbp;
using Microsoft.ML.Cbp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Cbp.Samples;

/// <summary>
/// The main job, for now: the CBP engine on a synthetic task. Pre-trains a float MLP, then compares naive
/// rounding (with and without batch-norm re-estimation), straight-through training and CBP from the same
/// checkpoint with the same budget, and prints one table.
/// </summary>
internal static class Program
{
    private const string Usage =
        "usage: dotnet run --project src/Cbp.Samples -c Release -- [--constraint binary|ternary|onebitshift|twobitshift] [--epochs N] [--quick]";

    private static int Main(string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        WeightConstraint constraint = WeightConstraint.Binary;
        int epochs = 300;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--constraint" when i + 1 < args.Length:
                    constraint = ParseConstraint(args[++i]) ?? throw new ArgumentException($"Unknown constraint '{args[i]}'. {Usage}");
                    break;
                case "--epochs" when i + 1 < args.Length && int.TryParse(args[i + 1], out int e) && e > 0:
                    epochs = e;
                    i++;
                    break;
                case "--quick":
                    epochs = 60;
                    break;
                case "--help" or "-h":
                    Console.WriteLine(Usage);
                    return 0;
                default:
                    Console.Error.WriteLine($"Unknown or incomplete argument '{args[i]}'.\n{Usage}");
                    return 2;
            }
        }
        torch.set_num_threads(1);
        var result = EngineDemo.Run(constraint, epochs, report =>
        {
            if (report.Epoch % Math.Max(1, epochs / 10) == 0)
            {
                Console.WriteLine(
                    $"  {report.Mode,-15} epoch {report.Epoch,4}  loss {report.TaskLoss:F4}  val.acc {report.ValidationAccuracy:P2}  " +
                    $"CFS/s {report.NormalizedCfs:F4}  on-level {report.FractionOnLevel:P2}  g {report.G,4}  lambda {report.MultiplierMean:F3}  lr {report.LearningRate:E1}");
            }
        });
        Console.WriteLine();
        Console.WriteLine($"Synthetic task, {constraint} weights in the hidden layer, {epochs} engine epochs of 5 batches:");
        Console.WriteLine($"  {"method",-28} {"test accuracy",14} {"CFS/s",10} {"on level",10} {"seconds",9}");
        foreach (var row in result)
        {
            Console.WriteLine($"  {row.Method,-28} {row.Accuracy,14:P2} {row.NormalizedCfs,10:F4} {row.FractionOnLevel,10:P2} {row.Seconds,9:F2}");
        }
        return 0;
    }

    private static WeightConstraint? ParseConstraint(string name) => name.ToLowerInvariant() switch
    {
        "binary" => WeightConstraint.Binary,
        "ternary" => WeightConstraint.Ternary,
        "onebitshift" => WeightConstraint.OneBitShift,
        "twobitshift" => WeightConstraint.TwoBitShift,
        _ => null,
    };
}
