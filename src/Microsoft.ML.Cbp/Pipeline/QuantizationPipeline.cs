using System;
using System.Linq;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Cbp.Training;
using Onnx;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>What a Fit produced: the compact network, the names its scoring head needs, the report, and the head's task and key values.</summary>
/// <param name="Compact">The compact ONNX network (codes in Constant nodes decoded by Cast and Mul), as SaveOnnx writes it.</param>
/// <param name="InputName">Its data input.</param>
/// <param name="OutputName">Its output (logits or value).</param>
/// <param name="Outputs">Values per row of the output.</param>
/// <param name="Report">What training did.</param>
/// <param name="Task">The scoring head the label asks for.</param>
/// <param name="LabelValues">Multiclass: the label value of each class, in key order; else null.</param>
internal sealed record QuantizationResult(ModelProto Compact, string InputName, string OutputName, int Outputs, CbpTrainingReport Report, ScoringTask Task, Array? LabelValues);

/// <summary>
/// The body of <c>CbpQuantizeEstimator.Fit</c>: check the columns, read the training and validation data, run the
/// training phases (<see cref="QuantizationTraining"/>), and collect what the transformer is built from.
/// </summary>
internal static class QuantizationPipeline
{
    /// <summary>
    /// Called once the transformer exists (its scoring session created): the Fit is complete, so its checkpoint
    /// (<see cref="CbpQuantizeOptions.CheckpointPath"/>) goes; a failure before this point leaves it to resume from.
    /// </summary>
    /// <param name="options">The Fit's options.</param>
    public static void Complete(CbpQuantizeOptions options)
    {
        // Under data-parallel training only rank 0 owns the checkpoint file.
        if (DataParallelWorld(options) is not { Rank: > 0 })
        {
            CheckpointSession.Complete(options.CheckpointPath);
        }
    }

    /// <summary>The MPI job a Fit trains data-parallel across, or null (no launcher, one rank, or DataParallel off).</summary>
    /// <param name="options">The Fit's options.</param>
    public static MpiWorld? DataParallelWorld(CbpQuantizeOptions options) => options.DataParallel ? MpiWorld.Current : null;

    /// <summary>Trains and quantizes the network the options describe on <paramref name="input"/>.</summary>
    /// <param name="options">Validated options.</param>
    /// <param name="input">Training data.</param>
    /// <param name="seed">Seed of initialisation and shuffling.</param>
    /// <param name="progress">Receives progress (and forwards it to the user's callback and the log).</param>
    public static QuantizationResult Fit(CbpQuantizeOptions options, IDataView input, long seed, Action<CbpProgressReport> progress)
    {
        var world = DataParallelWorld(options);
        try
        {
            return FitOnThisRank(options, input, seed, progress);
        }
        catch (Exception e) when (world is not null && e is not CbpTrainingDivergedException)
        {
            // A rank that cannot go on must not leave the others waiting in a collective: it ends the whole job, whether it
            // failed alone (a file missing on one node) or with every rank. (Divergence is decided on the averaged loss, on
            // every rank at the same step, so it ends every rank's Fit alike and reaches the caller.)
            // One write, then a moment for the launcher to forward it: MPI_Abort ends the processes at once.
            Console.Error.Write($"Microsoft.ML.Cbp, rank {world.Rank} of {world.Size}: {e.GetType().Name}: {e.Message}{Environment.NewLine}" +
                $"Ending every rank of the MPI job (MPI_Abort).{Environment.NewLine}");
            Console.Error.Flush();
            System.Threading.Thread.Sleep(500);
            world.Abort(1);
            throw;
        }
    }

    private static QuantizationResult FitOnThisRank(CbpQuantizeOptions options, IDataView input, long seed, Action<CbpProgressReport> progress)
    {
        ArgumentNullException.ThrowIfNull(input);
        InputColumns.Inspect(input.Schema, options.FeatureColumnName, options.LabelColumnName);
        // Knowable before training: whether the storage holds the level set's codes.
        if (options.MaxModelBytes is null)
        {
            Onnx.QuantizedOnnxExporter.CheckStorage(options.Constraint, options.WeightStorage, "the constrained weights");
        }
        else
        {
            // Every mixed level set must have an integer storage.
            SizeBudget.Choices(options);
        }
        progress(new CbpProgressReport(CbpPhase.LoadingData, 0, 0, 0, 0, null));
        // Under data-parallel training each rank reads its own shard of the rows (RowShard); ValidationData is read whole.
        var world = DataParallelWorld(options);
        using var train = TrainingData.Open(input, options, "training data", world is null ? null : new RowShard(world.Rank, world.Size));
        using var validation = options.ValidationData is { } v ? TrainingData.Open(v, options, "ValidationData") : null;
        if (validation is not null && (validation.LabelKind != train.LabelKind || validation.ClassCount != train.ClassCount || validation.FeatureWidth != train.FeatureWidth))
        {
            throw new ArgumentException(
                $"ValidationData's columns differ from the training data's ({validation.FeatureWidth} features, {validation.LabelKind} label with {validation.ClassCount} classes " +
                $"versus {train.FeatureWidth}, {train.LabelKind}, {train.ClassCount}).", nameof(input));
        }
        // Ranks on one machine share its cores: by default each takes its part (MPI_LOCALNRANKS, set by MPICH's launcher).
        int? perRank = DataParallelWorld(options) is not null && int.TryParse(Environment.GetEnvironmentVariable("MPI_LOCALNRANKS"), out int local) && local > 1
            ? Math.Max(1, Environment.ProcessorCount / local) : null;
        using var threads = TorchThreads.Use(options.TrainingThreads ?? perRank ?? TorchThreads.Current);
        var label = input.Schema[options.LabelColumnName];
        var task = ScoringOutput.TaskFor(label.Type);
        var labelValues = task == ScoringTask.Multiclass ? ScoringOutput.KeyValues(label) : null;
        var classNames = labelValues?.Cast<object?>().Select(v => v?.ToString() ?? "").ToArray();
        var trained = QuantizationTraining.Run(options, train, validation, task, labelValues is null ? null : ScoringOutput.KeyValuesTensor(labelValues), classNames, seed,
            world is { Rank: > 0 } ? _ => { } : progress, world);
        return new QuantizationResult(trained.Compact, trained.InputName, trained.OutputName, trained.Outputs, trained.Report, task, labelValues);
    }
}
