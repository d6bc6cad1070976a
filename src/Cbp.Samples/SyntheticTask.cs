using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Cbp.Samples;

/// <summary>
/// A small synthetic classification task for the engine: Gaussian clusters around random class centres,
/// labelled by cluster, with enough noise that classes overlap a little. Deterministic for a seed.
/// </summary>
public sealed class SyntheticTask : IDisposable
{
    /// <summary>Generates the task.</summary>
    /// <param name="rows">Training rows (the test set has half as many).</param>
    /// <param name="features">Input width.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="seed">Seed of every random draw.</param>
    /// <param name="noise">Standard deviation of the noise around a class centre (centres have unit variance per feature).</param>
    public SyntheticTask(int rows = 4000, int features = 32, int classes = 8, long seed = 7, double noise = 2.0)
    {
        Features = features;
        Classes = classes;
        using var generator = new Generator((ulong)seed);
        using var centres = randn(classes, features, generator: generator);
        (TrainFeatures, TrainLabels) = Draw(rows, centres, noise, generator);
        (TestFeatures, TestLabels) = Draw(rows / 2, centres, noise, generator);
    }

    /// <summary>Input width.</summary>
    public int Features { get; }

    /// <summary>Number of classes.</summary>
    public int Classes { get; }

    /// <summary>Training inputs [rows, features].</summary>
    public Tensor TrainFeatures { get; }

    /// <summary>Training labels [rows] (int64 class indices).</summary>
    public Tensor TrainLabels { get; }

    /// <summary>Test inputs.</summary>
    public Tensor TestFeatures { get; }

    /// <summary>Test labels.</summary>
    public Tensor TestLabels { get; }

    /// <summary>An MLP for the task: Linear-BN-ReLU, Linear-BN-ReLU, Linear. The middle weight is the one CBP constrains by default.</summary>
    /// <param name="hidden">Hidden width.</param>
    /// <param name="seed">Initialisation seed.</param>
    public nn.Module<Tensor, Tensor> CreateNetwork(int hidden = 128, long seed = 1)
    {
        random.manual_seed(seed);
        return nn.Sequential(
            nn.Linear(Features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, Classes));
    }

    /// <summary>Releases the data.</summary>
    public void Dispose()
    {
        TrainFeatures.Dispose();
        TrainLabels.Dispose();
        TestFeatures.Dispose();
        TestLabels.Dispose();
    }

    private static (Tensor, Tensor) Draw(int rows, Tensor centres, double noise, Generator generator)
    {
        using var scope = NewDisposeScope();
        var labels = randint(centres.shape[0], new long[] { rows }, generator: generator);
        var x = centres.index_select(0, labels) + noise * randn(rows, centres.shape[1], generator: generator);
        return (x.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }
}
