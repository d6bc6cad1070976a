using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// Data-parallel CBP against one process: the same small MLP (no batch normalisation) on the same synthetic data, trained
/// by N ranks with batches of b rows each (<c>mpiexec -n N dotnet Microsoft.ML.Cbp.Benchmarks.dll --suite mpi-train</c>)
/// each on its own rows, or by one process with batches of N x b that hold the ranks' batches side by side (<see cref="Train"/> with no world). Rank 0 writes what the
/// tests compare: the weights after the first step, the multiplier updates per epoch and the final projected weights.
/// </summary>
internal static class MpiTrainCheck
{
    /// <summary>What a run ended with.</summary>
    /// <param name="FirstStep">Every parameter after the first step, flattened in module order.</param>
    /// <param name="Final">Every parameter after the last epoch and the final projection.</param>
    /// <param name="Constrained">The constrained weights after the projection, flattened in module order.</param>
    /// <param name="Updates">Whether each epoch updated the multipliers.</param>
    /// <param name="RanksAgree">Under MPI: every rank ended with bit-identical parameters (an all-reduced checksum); true alone.</param>
    public sealed record Outcome(float[] FirstStep, float[] Final, float[] Constrained, bool[] Updates, bool RanksAgree);

    /// <summary>Trains and returns the outcome; <paramref name="world"/> null trains alone with the combined batch.</summary>
    /// <param name="world">The MPI job, or null.</param>
    /// <param name="ranks">The number of ranks whose combined batch one process takes (world.Size when there is a world).</param>
    /// <param name="rowsPerRank">Rows per rank per batch (b).</param>
    /// <param name="epochs">Engine epochs after the first step.</param>
    public static Outcome Train(MpiWorld? world, int ranks, int rowsPerRank, int epochs)
    {
        // One TorchSharp thread, as each rank has; the caller's setting is restored.
        int threads = get_num_threads();
        set_num_threads(1);
        try
        {
            return TrainWithOneThread(world, ranks, rowsPerRank, epochs);
        }
        finally
        {
            set_num_threads(threads);
        }
    }

    private static Outcome TrainWithOneThread(MpiWorld? world, int ranks, int rowsPerRank, int epochs)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(17);
        var features = randn(new long[] { 384, 12 }, generator: generator);
        var labels = features.narrow(1, 0, 3).argmax(1);
        var model = CbpArchitecture.Mlp(new[] { 24 }, batchNorm: false).Build(new long[] { 12 }, 3, seed: 3);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false).Select(module.MemberName).ToList();
        // Each rank its own rows (labelled row i to rank i mod N, in order), the process alone their batches side by side.
        var (source, owner) = world is null ? (ShardedTensors.Combined(features, labels, rowsPerRank, ranks), null) : ShardedTensors.ForRank(features, labels, rowsPerRank, world, shuffle: false, seed: 9);
        using var owned = owner ?? (IDisposable)source;
        // A long update period: most multiplier updates come from the all-reduced Lagrangian sum no longer decreasing (a plateau).
        var options = new CbpTrainerOptions { Epochs = epochs + 1, LearningRate = 0.05, MultiplierUpdatePeriod = 4 };
        using var trainer = new CbpTrainer(module, (o, y) => nn.functional.cross_entropy(o, y), names, WeightConstraint.Ternary, options) { World = world };
        trainer.TrainEpoch(new FirstBatch(source));
        var firstStep = Flatten(module.parameters());
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            trainer.TrainEpoch(source);
        }
        trainer.ProjectToLevels();
        var final = Flatten(module.parameters());
        var constrained = Flatten(module.named_parameters().Where(p => names.Contains(p.name)).Select(p => p.parameter));
        bool agree = true;
        if (world is not null)
        {
            // Identical parameters give identical checksums: the maximum over ranks equals the sum divided by the ranks.
            double checksum = final.Select((v, i) => (double)v * (1 + i % 7)).Sum();
            var max = new[] { checksum };
            var sum = new[] { checksum };
            world.MaxInPlace(max);
            world.SumInPlace(sum);
            agree = max[0] * world.Size == sum[0];
        }
        return new Outcome(firstStep, final, constrained, trainer.History.Skip(1).Select(r => r.MultiplierUpdated).ToArray(), agree);
    }

    /// <summary>The child under mpiexec: trains, and rank 0 writes the outcome as JSON to --output.</summary>
    public static int ChildMain(string[] args)
    {
        var world = MpiWorld.Current ?? throw new InvalidOperationException("mpi-train runs under mpiexec with more than one rank.");
        int epochs = int.Parse(Arg(args, "--epochs"), System.Globalization.CultureInfo.InvariantCulture);
        int rows = int.Parse(Arg(args, "--rows"), System.Globalization.CultureInfo.InvariantCulture);
        var outcome = Train(world, world.Size, rows, epochs);
        if (world.Rank == 0)
        {
            File.WriteAllText(Arg(args, "--output"), JsonSerializer.Serialize(outcome));
        }
        Console.WriteLine($"RESULT rank={world.Rank} agree={outcome.RanksAgree}");
        return outcome.RanksAgree ? 0 : 1;
    }

    /// <summary>Reads an outcome written by <see cref="ChildMain"/>.</summary>
    /// <param name="path">The JSON file.</param>
    public static Outcome Read(string path) => JsonSerializer.Deserialize<Outcome>(File.ReadAllText(path))!;

    private static float[] Flatten(IEnumerable<Tensor> tensors) =>
        tensors.SelectMany(t => { using var c = t.detach().cpu().contiguous(); return c.data<float>().ToArray(); }).ToArray();

    private static string Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{name} is required.");
    }

    /// <summary>The first batch of pass 0 only.</summary>
    private sealed class FirstBatch : IBatchSource
    {
        private readonly IBatchSource _source;

        public FirstBatch(IBatchSource source) => _source = source;

        public IEnumerable<(Tensor Features, Tensor Labels)> Pass(int pass) => _source.Pass(0).Take(1);
    }
}
