using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Cbp.Training;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>
/// The training phases of a Fit once the data is in memory: build or load the network, float pre-training with early
/// stopping, CBP, the final projection, and the compact export.
/// </summary>
internal static class QuantizationTraining
{
    private const int EarlyStoppingPatience = 3;

    /// <summary>Rows a training batch needs when the network has batch normalisation.</summary>
    private const int MinimumBatchNormRows = 2;
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);

    /// <summary>The trained network as a compact ONNX model, with the names the scoring head needs.</summary>
    internal sealed record Result(ModelProto Compact, string InputName, string OutputName, int Outputs, long[] RowShape, CbpTrainingReport Report);

    public static Result Run(CbpQuantizeOptions options, TrainingData train, TrainingData? validation, ScoringTask task, TensorProto? labelValues,
        IReadOnlyList<string>? classNames, long seed, Action<CbpProgressReport> progress, MpiWorld? world = null)
    {
        int ranks = world?.Size ?? 1;
        var clock = Stopwatch.StartNew();
        var device = ChooseDevice(options.TrainingDevice);
        random.manual_seed(seed);
        int outputs = train.ClassCount;
        var (model, network) = LoadOrBuild(options, train.FeatureWidth, outputs, seed, out long[] rowShape);
        // The fingerprint holds the view's labelled rows and, under data-parallel training, its rows as this rank counted
        // them, so ranks given views of other lengths differ.
        long dataRows = train.DataRows;
        string fingerprint = TrainingCheckpoint.Fingerprint(options, seed, rowShape, dataRows, train, validation, OnnxModelFile.ToBytes(model), ranks,
            world is null ? null : device.type.ToString(), train.ViewRows);
        if (world is not null)
        {
            DataParallelCheck.SameFitOnEveryRank(world, fingerprint);
        }
        // Under data-parallel training only rank 0 writes the checkpoint; every rank resumes from it.
        using var checkpoints = CheckpointSession.Open(options.CheckpointPath, fingerprint, write: world is not { Rank: > 0 });
        var resume = checkpoints.Resume;
        if (world is not null)
        {
            DataParallelCheck.SameResumePointOnEveryRank(world, resume is null ? 0 : resume.Meta.Phase == TrainingCheckpoint.CbpPhase ? 2 : 1, resume?.Meta.Epoch ?? 0);
        }
        using var module = new OnnxGraphModule(model, options.OutputNodeName, rowShape);
        CheckOutputs(module, rowShape, outputs, options);
        CheckOnnxRuntimeScores(module, rowShape, task, outputs, labelValues);
        module.to(device);
        if (task == ScoringTask.Multiclass && options.CheckLabelOrder && (options.PretrainedModelPath is not null || options.PretrainedModelBytes is not null))
        {
            LabelOrderGuard.Check(module, rowShape, train, dataRows, classNames, options);
        }

        Func<Tensor, Tensor, Tensor> loss = train.LabelKind == LabelKind.Single
            ? (o, l) => nn.functional.mse_loss(o.reshape(-1), l)
            : (o, l) => nn.functional.cross_entropy(o, l);
        if (options.Augmentation is { } augmentation && rowShape.Length != 3)
        {
            throw new ArgumentException(
                $"Augmentation {augmentation} works on images, but rows are seen as [{string.Join(", ", rowShape)}]; set InputShape to {{ channels, height, width }}.", nameof(options));
        }
        // Batch normalisation in training mode needs two rows per batch: a batch of one row makes its running variance
        // NaN and with it every score. BatchSize 1 is refused; a final batch of one row is left out of the pass.
        bool batchNorm = model.Graph.Node.Any(n => n.OpType == "BatchNormalization");
        if (batchNorm && options.BatchSize < 2)
        {
            throw new ArgumentException(
                $"BatchSize 1 cannot train the network '{network}': its batch normalisation needs at least 2 rows per batch (a batch of one gives NaN statistics). Use BatchSize 2 or more.",
                nameof(options));
        }
        // Data-parallel: each rank reads its own shard of the rows (RowShard), shuffled every pass from the common seed and
        // its rank, in batches of BatchSize; every rank takes as many rows per pass as the smallest shard holds.
        IBatchSource rankSource = train.Batches(rowShape, options.BatchSize, shuffle: true, seed, device);
        if (options.Augmentation is { } augment)
        {
            // Every rank draws its own augmentations.
            rankSource = augment.Wrap(rankSource, train.Shard.ShuffleSeed(seed));
        }
        int minimumRows = batchNorm ? MinimumBatchNormRows : 1;
        long rows = world is null ? train.Rows : (long)DataParallelCheck.Minimum(world, train.Rows);
        IBatchSource trainSource = world is not null ? DataParallelBatchSource.Over(rankSource, rows, minimumRows, world)
            : batchNorm ? new MinimumBatchSource(rankSource, MinimumBatchNormRows) : rankSource;
        // Cached validation data is evaluated in batches of at least 256 rows; streamed batches keep the training batch size,
        // which bounds their memory.
        var validationSource = validation?.Batches(rowShape, validation.Streams ? options.BatchSize : Math.Max(options.BatchSize, 256), shuffle: false, seed, device);
        int batches = checked((int)(rows / options.BatchSize + (rows % options.BatchSize >= minimumRows ? 1 : 0)));
        if (batches == 0)
        {
            throw new ArgumentException(world is null
                ? $"The training data has {rows} labelled row(s); the network '{network}' needs at least {MinimumBatchNormRows} (batch normalisation)."
                : $"The smallest rank's shard of the training data has {rows} labelled row(s); the network '{network}' needs at least {MinimumBatchNormRows} per rank (batch normalisation).",
                nameof(options));
        }

        var selected = ConstrainedInitializerSelection.Select(model, options.KeepFirstAndLastLayersFloat, exclude: options.FloatLayers);
        if (selected.Count == 0)
        {
            throw new ArgumentException(
                $"The network has no weight layer left to constrain (candidates: {string.Join(", ", ConstrainedInitializerSelection.Candidates(model))}); " +
                "set KeepFirstAndLastLayersFloat = false or remove names from FloatLayers.", nameof(options));
        }
        // A size budget is checked before training: only the shapes decide what the smallest file is.
        var choices = options.MaxModelBytes is null ? null : SizeBudget.Choices(options);
        if (options.MaxModelBytes is long budget)
        {
            long floatFile = OnnxModelFile.ToBytes(CompactUnder(module, rowShape, selected.ToDictionary(n => n, _ => LayerPrecision.Float), options.ScaleMode)).LongLength;
            if (floatFile <= budget)
            {
                throw new ArgumentException(
                    $"MaxModelBytes {budget:N0} holds the whole float network ({floatFile:N0} bytes): nothing needs quantizing. Lower the budget, or leave it unset and choose a Constraint.",
                    nameof(CbpQuantizeOptions.MaxModelBytes));
            }
            SizeBudget.Plan(selected, choices!, null, budget, plan => CompactUnder(module, rowShape, plan, options.ScaleMode));
        }

        List<EpochReport> pretraining;
        double? floatAccuracy;
        if (resume?.Meta.Phase == TrainingCheckpoint.CbpPhase)
        {
            // Pre-training ended before the checkpoint: its network and reports come from the checkpoint.
            module.load_state_dict(resume.Group("module.")!);
            pretraining = resume.Meta.Pretraining;
            floatAccuracy = resume.Meta.FloatAccuracy;
        }
        else
        {
            pretraining = Pretrain(module, loss, trainSource, validationSource, EngineOptions.PretrainEpochs(options), options, batches, progress, checkpoints, world);
            floatAccuracy = validationSource is null ? null : ModelEvaluation.Evaluate(module, loss, validationSource).Accuracy;
        }

        // Mixed precision: each layer's level set (or float) from the loss increase of rounding it alone, under the budget.
        var precision = selected.ToDictionary(n => n, _ => new LayerPrecision(options.Constraint, options.WeightStorage), StringComparer.Ordinal);
        Dictionary<string, int>? sizePlan = null;
        if (options.MaxModelBytes is long && resume?.Meta.Phase == TrainingCheckpoint.CbpPhase)
        {
            // CBP has moved the weights since the plan was made: the checkpoint's plan is the one this Fit trains to.
            sizePlan = resume.Meta.SizePlan ?? throw new InvalidDataException("The checkpoint of a Fit with MaxModelBytes holds no size plan; delete it to start over.");
            precision = selected.ToDictionary(n => n, n => sizePlan.TryGetValue(n, out int i) && i >= 0 && i < choices!.Count ? choices![i]
                : throw new InvalidDataException($"The checkpoint's size plan has no valid choice for '{n}'; delete it to start over."), StringComparer.Ordinal);
        }
        else if (options.MaxModelBytes is long maxBytes)
        {
            using var scope = NewDisposeScope();
            // Under data-parallel training every rank measures on its own batches and the ranks' increases are averaged, so
            // the plan rests on the combined batches' rows; rank 0's plan is kept (below).
            var batchesForSensitivity = trainSource.Pass(0).Take(SensitivityBatches).ToList();
            var increase = SizeBudget.LossIncrease(module, loss, batchesForSensitivity, selected, choices!, options.ScaleMode);
            if (world is not null)
            {
                increase = DataParallelCheck.Mean(world, increase);
            }
            precision = SizeBudget.Plan(selected, choices!, increase, maxBytes, plan => CompactUnder(module, rowShape, plan, options.ScaleMode));
            sizePlan = precision.ToDictionary(p => p.Key, p => choices!.ToList().IndexOf(p.Value), StringComparer.Ordinal);
            if (world is not null)
            {
                // Every rank trains to rank 0's plan (the same plan wherever the ranks compute alike).
                var indices = DataParallelCheck.FromRankZero(world, selected.Select(n => (double)sizePlan[n]).ToArray());
                sizePlan = selected.Select((n, i) => (n, (int)indices[i])).ToDictionary(x => x.n, x => x.Item2, StringComparer.Ordinal);
                precision = sizePlan.ToDictionary(p => p.Key, p => choices![p.Value], StringComparer.Ordinal);
            }
        }
        var trainerOptions = EngineOptions.Cbp(options, batches);
        int scheduleEpochs = trainerOptions.Epochs;
        int batchesPerStep = trainerOptions.BatchesPerEpoch!.Value;
        var levelSets = precision.Where(p => p.Value.Constraint is not null).ToDictionary(p => module.MemberName(p.Key), p => p.Value.Constraint!, StringComparer.Ordinal);
        if (levelSets.Count == 0)
        {
            throw new ArgumentException($"MaxModelBytes {options.MaxModelBytes:N0} leaves every layer float; lower it so that some layer is quantized.", nameof(CbpQuantizeOptions.MaxModelBytes));
        }
        using var trainer = new CbpTrainer(module, loss, levelSets, trainerOptions) { World = world };
        var largest = trainer.ConstrainedParameters.OrderByDescending(p => p.Count).First();
        long[] before;
        var cbp = new List<EpochReport>();
        if (resume?.Meta.Phase == TrainingCheckpoint.CbpPhase)
        {
            using var state = resume.TrainerState();
            trainer.RestoreState(state, trainSource);
            resume.RestoreRandomState();
            before = resume.Meta.HistogramBefore!;
            cbp.AddRange(resume.Meta.Cbp);
        }
        else
        {
            before = LatentHistogram.Count(largest);
        }
        for (int epoch = cbp.Count + 1; epoch <= scheduleEpochs; epoch++)
        {
            trainer.BatchCompleted = Throttled(progress, CbpPhase.Cbp, epoch, scheduleEpochs, batchesPerStep, options.BatchSize * ranks);
            var report = trainer.TrainEpoch(trainSource, options.CancellationToken);
            report = WithValidation(report, module, loss, validationSource);
            cbp.Add(report);
            SameWeightsOnEveryRank(module, world);
            checkpoints.SaveCbp(epoch, module, trainer, pretraining, cbp, floatAccuracy, before, sizePlan);
            progress(EpochEnd(CbpPhase.Cbp, epoch, scheduleEpochs, report, options.BatchSize * ranks));
        }

        progress(new CbpProgressReport(CbpPhase.Exporting, scheduleEpochs, scheduleEpochs, batches, batches, null));
        var statistics = trainer.MeasureConstraint();
        var layerStatistics = trainer.MeasureConstraintPerLayer().ToDictionary(kv => module.InitializerName(kv.Key), kv => kv.Value, StringComparer.Ordinal);
        var histogram = LatentHistogram.Report(module.InitializerName(largest.Name), before, LatentHistogram.Count(largest));
        trainer.ProjectToLevels();
        SameWeightsOnEveryRank(module, world);
        CheckFinite(module, trainSource, world);
        double? accuracy = validationSource is null ? null : ModelEvaluation.Evaluate(module, loss, validationSource).Accuracy;
        var constrained = trainer.ConstrainedParameters
            .Select(p => new QuantizedInitializer(module.InitializerName(p.Name), p.Constraint, p.Scale.cpu().data<float>().ToArray())
            {
                Storage = precision[module.InitializerName(p.Name)].Storage,
            })
            .ToList();
        module.to(CPU);
        // The form SaveOnnx writes: codes in Constant nodes decoded by Cast and Mul, which ML.NET's ApplyOnnxModel reads
        // as well as ONNX Runtime (ML.NET refuses the INT4 and INT2 initializers a DequantizeLinear form needs).
        var compact = Compact(module, rowShape, constrained);
        var floatModel = QuantizedOnnxExporter.Export(module, Array.Empty<QuantizedInitializer>(), WeightStorage.Float32);
        if (options.MaxModelBytes is long limit && OnnxModelFile.ToBytes(compact).LongLength > limit)
        {
            throw new InvalidOperationException($"The compact file is {OnnxModelFile.ToBytes(compact).LongLength:N0} bytes, over MaxModelBytes {limit:N0}; the size plan was wrong. Please report this.");
        }

        var summary = new CbpTrainingReport
        {
            Network = network,
            Constraint = options.Constraint,
            TrainingDevice = device.type == DeviceType.CUDA ? "CUDA" : "CPU",
            // Under data-parallel training: every rank's rows per pass together, as counted (the rows each rank takes per pass, up to the smallest shard's).
            TrainingRows = world is null ? train.Rows : DataParallelCheck.Total(world, Math.Min(rows, train.Rows)),
            SkippedRows = world is null ? train.SkippedRows : DataParallelCheck.Total(world, train.SkippedRows),
            SkippedNonFiniteRows = world is null ? train.NonFiniteRows : DataParallelCheck.Total(world, train.NonFiniteRows),
            DataPath = train.Description,
            DataWaitSeconds = train.WaitSeconds + (validation?.WaitSeconds ?? 0),
            TrainingThreads = get_num_threads(),
            ConstrainedLayers = selected.Where(n => precision[n].Constraint is not null).ToList(),
            WeightLayers = WeightLayerSummary.Rows(model, precision, options.FloatLayers, compact, layerStatistics,
                constrained.ToDictionary(c => c.Initializer, c => c.Scale, StringComparer.Ordinal)),
            MaxModelBytes = options.MaxModelBytes,
            Pretraining = pretraining,
            Cbp = cbp,
            FloatValidationAccuracy = floatAccuracy,
            ValidationAccuracy = accuracy,
            FinalCfs = statistics.Cfs,
            FinalNormalizedCfs = statistics.NormalizedCfs,
            FractionOnLevel = statistics.FractionOnLevel,
            LatentHistogram = histogram,
            FloatModelBytes = OnnxModelFile.ToBytes(floatModel).Length,
            CompactModelBytes = OnnxModelFile.ToBytes(compact).Length,
            Seconds = clock.Elapsed.TotalSeconds,
        };
        return new Result(compact, module.Input.Name, module.OutputName, outputs, rowShape, summary);
    }

    private static Device ChooseDevice(CbpTrainingDevice choice)
    {
        bool cuda = choice != CbpTrainingDevice.Cpu && CudaIsAvailable();
        if (choice == CbpTrainingDevice.Cuda && !cuda)
        {
            throw new InvalidOperationException(
                "TrainingDevice is Cuda but TorchSharp sees no usable GPU; reference a CUDA libtorch backend (TorchSharp-cuda-linux or TorchSharp-cuda-windows) on a machine with an NVIDIA GPU, or use TrainingDevice.Auto.");
        }
        return cuda ? CUDA : CPU;
    }

    private static bool CudaIsAvailable()
    {
        try
        {
            return torch.cuda.is_available();
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or DllNotFoundException)
        {
            return false;
        }
    }

    private static (ModelProto Model, string Network) LoadOrBuild(CbpQuantizeOptions options, int width, int outputs, long seed, out long[] rowShape)
    {
        long[]? requested = options.InputShape?.Select(d => (long)d).ToArray();
        if (options.PretrainedModelPath is not null || options.PretrainedModelBytes is not null)
        {
            var model = options.PretrainedModelBytes is { } bytes
                ? OnnxModelFile.Parse(bytes, "PretrainedModelBytes")
                : OnnxModelFile.Load(options.PretrainedModelPath!);
            // An already-quantized model: its integer weights behind DequantizeLinear become float latent weights, once.
            model = DequantizedWeights.Fold(model, out _);
            var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet();
            var input = model.Graph.Input.FirstOrDefault(i => !initializers.Contains(i.Name))
                ?? throw new ArgumentException("The pretrained model has no data input.", nameof(options));
            if (options.InputNodeName is { } name && name != input.Name)
            {
                throw new ArgumentException($"InputNodeName '{name}' is not the pretrained model's data input; its data input is '{input.Name}'.", nameof(options));
            }
            var declared = input.Type?.TensorType?.Shape?.Dim.Skip(1).Select(d => d.DimValue).ToArray();
            rowShape = requested ?? (declared is { Length: > 0 } && declared.All(d => d > 0) ? declared : new long[] { width });
            CheckWidth(rowShape, width, options);
            return (model, "pretrained");
        }
        rowShape = requested ?? new long[] { width };
        CheckWidth(rowShape, width, options);
        var architecture = options.Architecture ?? (rowShape.Length == 3 ? CbpArchitecture.SmallCnn() : CbpArchitecture.Mlp());
        return (architecture.Build(rowShape, outputs, seed), architecture.Name);
    }

    private static void CheckWidth(long[] rowShape, int width, CbpQuantizeOptions options)
    {
        long product = rowShape.Aggregate(1L, (a, b) => a * b);
        if (product != width)
        {
            throw new ArgumentException(
                $"InputShape [{string.Join(", ", rowShape)}] holds {product} values but feature column '{options.FeatureColumnName}' has {width}.", nameof(options));
        }
    }

    /// <summary>
    /// Under data-parallel training, checks that every rank holds bit-identical weights and buffers (after every epoch and
    /// before export), so that ranks that drifted apart stop the job at once instead of training on to different models.
    /// </summary>
    /// <param name="module">The network.</param>
    /// <param name="world">The MPI job, or null (nothing to check).</param>
    private static void SameWeightsOnEveryRank(OnnxGraphModule module, MpiWorld? world)
    {
        if (world is not null)
        {
            DataParallelCheck.SameWeightsOnEveryRank(world, module.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
                .Concat(module.named_buffers().Select(b => (b.name, b.buffer))));
        }
    }

    /// <summary>
    /// The exported network must be finite: its outputs on the first training batch (in evaluation mode, as it will score)
    /// are checked, so a NaN model is an error here instead of a silent export.
    /// </summary>
    /// <param name="module">The trained network.</param>
    /// <param name="train">The training batches (this rank's, under data-parallel training).</param>
    /// <param name="world">The MPI job, whose ranks count their non-finite outputs together and so reach one verdict; or null.</param>
    private static void CheckFinite(OnnxGraphModule module, IBatchSource train, MpiWorld? world)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        module.eval();
        var (features, _) = train.Pass(0).First();
        var output = module.forward(features);
        module.train();
        var parameters = module.named_parameters().Select(p => (Name: p.name, Value: (Tensor)p.parameter))
            .Concat(module.named_buffers().Select(b => (Name: b.name, Value: b.buffer)))
            .Where(p => p.Value.is_floating_point() && !p.Value.isfinite().all().ToBoolean()).Select(p => module.InitializerName(p.Name)).ToList();
        var counts = new[] { output.isfinite().logical_not().sum().ToInt64(), output.numel(), parameters.Count };
        if (world is not null)
        {
            var total = counts.Select(c => (double)c).ToArray();
            world.SumInPlace(total);
            counts = total.Select(c => (long)c).ToArray();
        }
        var (bad, outputs, badParameters) = (counts[0], counts[1], counts[2]);
        if (bad > 0 || badParameters > 0)
        {
            throw new InvalidOperationException(
                $"The trained network is not finite: {bad} of {outputs} outputs on a training batch{(world is null ? "" : " of every rank")} are NaN or infinite" +
                (parameters.Count > 0 ? $"; non-finite values in {string.Join(", ", parameters.Take(5))}" : "") +
                ". Nothing was exported. Check the features for NaN or infinite values and lower the learning rates.");
        }
    }

    /// <summary>Every candidate weight layer with its size and state: constrained, float by option, or float by the first/last rule.</summary>
    /// <summary>
    /// Before training: ONNX Runtime must accept the network as it will score it (the untrained graph with its scoring
    /// head and the label's own values, per row as ML.NET runs it and batched), so a graph it rejects fails in seconds
    /// instead of after the whole Fit.
    /// </summary>
    private static void CheckOnnxRuntimeScores(OnnxGraphModule module, long[] rowShape, ScoringTask task, int outputs, TensorProto? labelValues)
    {
        try
        {
            var network = QuantizedOnnxExporter.Export(module, Array.Empty<QuantizedInitializer>(), WeightStorage.Float32);
            DeclareRowShape(network, module.Input.Name, rowShape);
            var perRow = ScoringGraph.PerRow(network, module.Input.Name, module.OutputName, task, outputs, "cbp_probe_features", labelValues);
            using var perRowSession = OnnxScoringSession.Create(OnnxModelFile.ToBytes(perRow));
            using var batchedSession = OnnxScoringSession.Create(OnnxModelFile.ToBytes(ScoringGraph.ToBatched(perRow)));
        }
        catch (Exception e) when (e is Microsoft.ML.OnnxRuntime.OnnxRuntimeException or InvalidDataException or NotSupportedException)
        {
            throw new InvalidOperationException($"ONNX Runtime cannot score this network, so it was not trained: {e.Message.Split('\n')[0]}", e);
        }
    }

    private static void CheckOutputs(OnnxGraphModule module, long[] rowShape, int outputs, CbpQuantizeOptions options)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        module.eval();
        var output = module.forward(zeros(new long[] { 2 }.Concat(rowShape).ToArray()));
        module.train();
        long perRow = output.numel() / 2;
        if (output.dim() != 2 || perRow != outputs)
        {
            throw new ArgumentException(
                $"Network output '{module.OutputName}' has shape [{string.Join(", ", output.shape)}] for 2 rows; the label column '{options.LabelColumnName}' needs [rows, {outputs}]" +
                (options.Architecture is null ? " (choose the logits with OutputNodeName)." : "."), nameof(options));
        }
    }

    private static List<EpochReport> Pretrain(
        OnnxGraphModule module, Func<Tensor, Tensor, Tensor> loss, IBatchSource train, IBatchSource? validation,
        int epochs, CbpQuantizeOptions options, int batches, Action<CbpProgressReport> progress, CheckpointSession checkpoints, MpiWorld? world)
    {
        var reports = new List<EpochReport>();
        if (epochs == 0)
        {
            return reports;
        }
        using var trainer = new CbpTrainer(module, loss, Array.Empty<string>(), options.Constraint, EngineOptions.Pretraining(options, epochs)) { World = world };
        Dictionary<string, Tensor>? best = null;
        double bestLoss = double.PositiveInfinity;
        int sinceBest = 0;
        if (checkpoints.Resume is { } resume)
        {
            module.load_state_dict(resume.Group("module.")!);
            using var state = resume.TrainerState();
            trainer.RestoreState(state, train);
            resume.RestoreRandomState();
            reports.AddRange(resume.Meta.Pretraining);
            best = resume.Group("best.")?.ToDictionary(kv => kv.Key, kv => kv.Value.clone().to(module.parameters().First().device).DetachFromDisposeScope());
            bestLoss = resume.Meta.BestLoss ?? double.PositiveInfinity;
            sinceBest = resume.Meta.SinceBest;
        }
        try
        {
            // Early stopping: 3 epochs without a better validation loss end pre-training (checked before each epoch, so a
            // resumed Fit stops where the uninterrupted one did).
            for (int epoch = reports.Count + 1; epoch <= epochs && sinceBest < EarlyStoppingPatience; epoch++)
            {
                trainer.BatchCompleted = Throttled(progress, CbpPhase.Pretraining, epoch, epochs, batches, options.BatchSize * (world?.Size ?? 1));
                var report = WithValidation(trainer.TrainEpoch(train, options.CancellationToken), module, loss, validation);
                if (world is not null && report.ValidationLoss is double local)
                {
                    // Early stopping decides on rank 0's validation loss on every rank (the same value wherever the ranks compute alike).
                    report = report with { ValidationLoss = DataParallelCheck.FromRankZero(world, local) };
                }
                reports.Add(report);
                if (report.ValidationLoss is double validationLoss)
                {
                    if (validationLoss < bestLoss)
                    {
                        bestLoss = validationLoss;
                        sinceBest = 0;
                        Release(best);
                        best = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
                    }
                    else
                    {
                        sinceBest++;
                    }
                }
                SameWeightsOnEveryRank(module, world);
                checkpoints.SavePretraining(epoch, module, trainer, reports, best, bestLoss, sinceBest);
                progress(EpochEnd(CbpPhase.Pretraining, epoch, epochs, report, options.BatchSize * (world?.Size ?? 1)));
            }
            if (best is not null)
            {
                module.load_state_dict(best);
            }
        }
        finally
        {
            Release(best);
        }
        return reports;
    }

    private static void Release(Dictionary<string, Tensor>? state)
    {
        foreach (var t in state?.Values ?? Enumerable.Empty<Tensor>())
        {
            t.Dispose();
        }
    }

    private static EpochReport WithValidation(EpochReport report, OnnxGraphModule module, Func<Tensor, Tensor, Tensor> loss, IBatchSource? validation)
    {
        if (validation is null)
        {
            return report;
        }
        var (validationLoss, accuracy) = ModelEvaluation.Evaluate(module, loss, validation);
        return report with { ValidationLoss = validationLoss, ValidationAccuracy = accuracy };
    }

    private static Action<int> Throttled(Action<CbpProgressReport> progress, CbpPhase phase, int epoch, int epochs, int batches, int batchSize)
    {
        var clock = Stopwatch.StartNew();
        var epochClock = Stopwatch.StartNew();
        return batch =>
        {
            if (clock.Elapsed >= ProgressInterval && batch < batches)
            {
                clock.Restart();
                progress(new CbpProgressReport(phase, epoch, epochs, batch, batches, null) { RowsPerSecond = (double)batch * batchSize / epochClock.Elapsed.TotalSeconds });
            }
        };
    }

    private static CbpProgressReport EpochEnd(CbpPhase phase, int epoch, int epochs, EpochReport report, int batchSize) =>
        new(phase, epoch, epochs, report.Batches, report.Batches, report) { RowsPerSecond = report.Seconds > 0 ? (double)report.Batches * batchSize / report.Seconds : null };

    /// <summary>Batches of training data the size budget measures each layer's loss increase on.</summary>
    private const int SensitivityBatches = 4;

    /// <summary>
    /// The file SaveOnnx writes: codes in Constant nodes decoded by Cast and Mul (ML.NET's ApplyOnnxModel reads it as well as
    /// ONNX Runtime; ML.NET refuses the INT4 and INT2 initializers a DequantizeLinear form needs), the row shape declared.
    /// </summary>
    private static ModelProto Compact(OnnxGraphModule module, long[] rowShape, IReadOnlyList<QuantizedInitializer> constrained)
    {
        var compact = ScoringGraph.DecodeWithCastAndMul(QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Float32));
        DeclareRowShape(compact, module.Input.Name, rowShape);
        return compact;
    }

    /// <summary>The compact file a size plan would give: its layers rounded to their levels on a copy of the weights, which are restored.</summary>
    private static ModelProto CompactUnder(OnnxGraphModule module, long[] rowShape, IReadOnlyDictionary<string, LayerPrecision> plan, ScaleMode scaleMode)
    {
        var saved = plan.Keys.ToDictionary(n => n, n => module.InitializerValue(n).detach().clone(), StringComparer.Ordinal);
        try
        {
            var constrained = new List<QuantizedInitializer>();
            foreach (var (name, choice) in plan)
            {
                if (choice.Constraint is { } constraint)
                {
                    var scales = Baselines.RoundToLevels(module, new[] { module.MemberName(name) }, constraint, scaleMode);
                    constrained.Add(new QuantizedInitializer(name, constraint, scales[module.MemberName(name)]) { Storage = choice.Storage });
                }
            }
            return Compact(module, rowShape, constrained);
        }
        finally
        {
            using var noGrad = no_grad();
            foreach (var (name, value) in saved)
            {
                module.InitializerValue(name).copy_(value);
                value.Dispose();
            }
        }
    }

    private static void DeclareRowShape(ModelProto model, string inputName, long[] rowShape)
    {
        var input = model.Graph.Input.First(i => i.Name == inputName);
        input.Type ??= new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = OnnxTensorConversion.DataTypes.Float } };
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        foreach (long d in rowShape)
        {
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        }
        input.Type.TensorType.Shape = shape;
    }
}
