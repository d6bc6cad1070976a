using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// The constrained-backpropagation engine (docs/CBP.md sections 2-6) for any TorchSharp module: trains the module
/// so that the chosen weight tensors take only the values <c>s * f</c> of a <see cref="WeightConstraint"/>.
/// </summary>
/// <remarks>
/// <para>Per mini-batch: the module (whose constrained parameters hold <c>Q(w)</c>) computes the task loss; its
/// gradient is passed straight through to the latent weights <c>w</c>, plus <c>lambda * dc/dw</c>; every
/// gradient element is clipped; SGD with momentum and weight decay steps; latent weights are clamped and
/// re-quantized into the module. Per epoch: the summed Lagrangian feeds the <see cref="PseudoLagrangeSchedule"/>,
/// which decides when the multipliers take an Adam ascent step and the window narrows.</para>
/// <para>The same class runs the straight-through baseline (<see cref="TrainingMode.StraightThrough"/>) and plain
/// float training (<see cref="TrainingMode.Float"/>) through the same code, so their comparison is fair.</para>
/// <para>Not thread-safe. Dispose the trainer to release the latent weights and multipliers; the module keeps
/// its (quantized) parameters.</para>
/// </remarks>
public sealed class CbpTrainer : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly Func<Tensor, Tensor, Tensor> _loss;
    private readonly CbpTrainerOptions _options;
    private readonly List<ConstrainedParameter> _constrained = new();
    private readonly List<(Parameter Parameter, Tensor Momentum, bool Decay)> _free = new();
    private readonly List<EpochReport> _history = new();
    private IEnumerator<(Tensor Features, Tensor Labels)>? _stream;
    private int _streamBatches;
    private int _pass;
    private double? _firstLoss;
    private int _batchesOverLimit;
    private bool _disposed;

    /// <summary>Prepares training of <paramref name="model"/>.</summary>
    /// <param name="model">The network; its parameters are trained in place.</param>
    /// <param name="loss">Task loss of (network output, labels), a scalar tensor.</param>
    /// <param name="constrainedParameterNames">Names (as in <c>named_parameters()</c>) of the weight tensors to constrain;
    /// see <see cref="ConstrainedLayerSelection"/>. Ignored in <see cref="TrainingMode.Float"/>.</param>
    /// <param name="constraint">The level set of every constrained tensor.</param>
    /// <param name="options">Engine settings; defaults when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">An option is invalid, or a name is not a parameter of the module.</exception>
    public CbpTrainer(
        nn.Module<Tensor, Tensor> model,
        Func<Tensor, Tensor, Tensor> loss,
        IEnumerable<string> constrainedParameterNames,
        WeightConstraint constraint,
        CbpTrainerOptions? options = null)
        : this(model, loss, PerTensor(constrainedParameterNames, constraint), options, constraint)
    {
    }

    /// <summary>Prepares training of <paramref name="model"/> with a level set per constrained tensor (mixed precision).</summary>
    /// <param name="model">The network; its parameters are trained in place.</param>
    /// <param name="loss">Task loss of (network output, labels), a scalar tensor.</param>
    /// <param name="constraints">The level set of each constrained tensor, by name as in <c>named_parameters()</c>. Ignored in <see cref="TrainingMode.Float"/>.</param>
    /// <param name="options">Engine settings; defaults when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">An option is invalid, a name is not a parameter of the module, or no tensor is given.</exception>
    public CbpTrainer(
        nn.Module<Tensor, Tensor> model,
        Func<Tensor, Tensor, Tensor> loss,
        IReadOnlyDictionary<string, WeightConstraint> constraints,
        CbpTrainerOptions? options)
        : this(model, loss, constraints, options, (constraints ?? throw new ArgumentNullException(nameof(constraints))).Values.FirstOrDefault()
            ?? throw new ArgumentException("Give at least one constrained tensor with its level set.", nameof(constraints)))
    {
    }

    private CbpTrainer(nn.Module<Tensor, Tensor> model, Func<Tensor, Tensor, Tensor> loss, IReadOnlyDictionary<string, WeightConstraint> constraints,
        CbpTrainerOptions? options, WeightConstraint first)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _loss = loss ?? throw new ArgumentNullException(nameof(loss));
        Constraint = first;
        _options = options ?? new CbpTrainerOptions();
        _options.Validate();
        Schedule = new PseudoLagrangeSchedule(_options.MultiplierUpdatePeriod, _options.LearningRateDropAtG, _options.LearningRateDropFactor);

        var parameters = model.named_parameters().ToList();
        var names = new HashSet<string>(_options.Mode == TrainingMode.Float ? Enumerable.Empty<string>() : constraints.Keys);
        foreach (string name in names)
        {
            if (!parameters.Any(p => p.name == name))
            {
                throw new ArgumentException(
                    $"'{name}' is not a parameter of the module; its parameters are: {string.Join(", ", parameters.Select(p => p.name))}.",
                    "constrainedParameterNames");
            }
        }
        foreach (var (name, parameter) in parameters)
        {
            if (names.Contains(name))
            {
                _constrained.Add(new ConstrainedParameter(name, parameter, constraints[name] ?? throw new ArgumentNullException(nameof(constraints), $"'{name}' has no level set."),
                    _options.ScaleMode, _options.MultiplierLearningRate));
            }
            else
            {
                _free.Add((parameter, zeros_like(parameter).DetachFromDisposeScope(), parameter.dim() >= 2));
            }
        }
        if (_options.Mode != TrainingMode.Float)
        {
            // The initial multiplier update, before training starts, with g = 1.
            Schedule.Start();
            if (_options.Mode == TrainingMode.Cbp)
            {
                AscendMultipliers();
            }
        }
    }

    private static IReadOnlyDictionary<string, WeightConstraint> PerTensor(IEnumerable<string> names, WeightConstraint constraint)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(constraint);
        var result = new Dictionary<string, WeightConstraint>(StringComparer.Ordinal);
        foreach (string name in names)
        {
            result[name] = constraint;
        }
        return result;
    }

    /// <summary>The level set (with a level set per tensor, the first tensor's; see <see cref="Constraints"/>).</summary>
    public WeightConstraint Constraint { get; }

    /// <summary>The level set of each constrained tensor, by module member name.</summary>
    public IReadOnlyDictionary<string, WeightConstraint> Constraints => _constrained.ToDictionary(p => p.Name, p => p.Constraint, StringComparer.Ordinal);

    /// <summary>The engine settings (validated).</summary>
    public CbpTrainerOptions Options => _options;

    /// <summary>The multiplier-update schedule and window state (its g and u reach users through <see cref="EpochReport"/>).</summary>
    internal PseudoLagrangeSchedule Schedule { get; }

    /// <summary>The constrained weight tensors, in module order.</summary>
    internal IReadOnlyList<ConstrainedParameter> ConstrainedParameters => _constrained;

    /// <summary>
    /// The scale <c>s</c> of each constrained parameter (by its name in the module), fixed when training started: one value
    /// per layer, or one per output channel with <see cref="ScaleMode.PerOutputChannel"/>. Every constrained weight is
    /// <c>s * level</c> after <see cref="ProjectToLevels"/>; pass the scales to the ONNX exporter
    /// (<c>new QuantizedInitializer(module.InitializerName(name), constraint, scales)</c>).
    /// </summary>
    public IReadOnlyDictionary<string, float[]> Scales
    {
        get
        {
            using var scope = NewDisposeScope();
            return _constrained.ToDictionary(p => p.Name, p => p.Scale.cpu().data<float>().ToArray(), StringComparer.Ordinal);
        }
    }

    /// <summary>One report per finished epoch.</summary>
    public IReadOnlyList<EpochReport> History => _history;

    /// <summary>
    /// Data-parallel training across the ranks of an MPI job (null: this process alone). Every rank must hold the same
    /// module and options and read its own batches of the same size, as many on every rank (<see cref="DataParallelBatchSource"/>). After each backward pass the
    /// batch's task loss and every gradient are averaged across ranks in one all-reduce over a flat buffer, so every rank
    /// takes the same step and keeps the same weights; the divergence guard and the epoch's Lagrangian sum (which triggers
    /// the multiplier update) use the averaged loss, so their decisions are the same on every rank. Batch normalisation
    /// uses each rank's own batch statistics (as PyTorch's DistributedDataParallel does); its running statistics are
    /// broadcast from rank 0 after every epoch.
    /// </summary>
    internal MpiWorld? World { get; set; }

    /// <summary>Seconds spent in the gradient all-reduce itself (waiting for the slowest rank included), for the data-parallel benchmark.</summary>
    internal double AllReduceSeconds { get; private set; }

    /// <summary>Seconds spent averaging across ranks in all: copying gradients to the flat buffer and back, and the all-reduce.</summary>
    internal double AveragingSeconds { get; private set; }

    /// <summary>Called after every training step with the number of steps done in the current epoch (for progress within long epochs).</summary>
    public Action<int>? BatchCompleted { get; set; }

    /// <summary>
    /// The weight learning rate of the next epoch: the base rate, times the schedule's drop factor, times the
    /// final annealing factor when the next epoch lies in the annealing phase of the budget.
    /// </summary>
    public double CurrentLearningRate =>
        _options.LearningRate
        * (_options.Mode == TrainingMode.Float ? 1.0 : Schedule.LearningRateFactor)
        * AnnealFactor(_history.Count + 1, _options.Epochs, _options.FinalAnnealFraction);

    /// <summary>
    /// The annealing factor of 1-based <paramref name="epoch"/> in a budget of <paramref name="epochs"/>: 1 before the
    /// final <paramref name="fraction"/> of the budget, then a half cosine falling toward 0 (never reaching it).
    /// </summary>
    /// <param name="epoch">1-based epoch.</param>
    /// <param name="epochs">The epoch budget.</param>
    /// <param name="fraction">Fraction of the budget that anneals.</param>
    public static double AnnealFactor(int epoch, int epochs, double fraction)
    {
        int length = (int)Math.Round(epochs * fraction);
        int into = epoch - (epochs - length);
        if (length <= 0 || into <= 0)
        {
            return 1.0;
        }
        return 0.5 * (1 + Math.Cos(Math.PI * Math.Min(into, length) / (length + 1)));
    }

    /// <summary>
    /// Trains for <see cref="CbpTrainerOptions.Epochs"/> epochs, or until the scale-normalised CFS falls below
    /// <see cref="CbpTrainerOptions.StopAtNormalizedCfs"/>.
    /// </summary>
    /// <param name="train">Training batches.</param>
    /// <param name="validation">Optional validation batches, evaluated after each epoch.</param>
    /// <param name="progress">Receives each epoch's report.</param>
    /// <param name="cancellationToken">Checked between mini-batches.</param>
    /// <returns>The reports of the epochs run by this call.</returns>
    /// <exception cref="OperationCanceledException">Cancellation was requested.</exception>
    public IReadOnlyList<EpochReport> Fit(
        IBatchSource train,
        IBatchSource? validation = null,
        IProgress<EpochReport>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        var reports = new List<EpochReport>();
        for (int epoch = 0; epoch < _options.Epochs; epoch++)
        {
            var report = TrainEpoch(train, cancellationToken);
            if (validation != null)
            {
                var (loss, accuracy) = Evaluate(validation);
                report = report with { ValidationLoss = loss, ValidationAccuracy = accuracy };
                _history[^1] = report;
            }
            reports.Add(report);
            progress?.Report(report);
            if (_options.Mode != TrainingMode.Float && _options.StopAtNormalizedCfs > 0 && report.NormalizedCfs < _options.StopAtNormalizedCfs)
            {
                break;
            }
        }
        return reports;
    }

    /// <summary>Runs one engine epoch (a full pass, or <see cref="CbpTrainerOptions.BatchesPerEpoch"/> batches).</summary>
    /// <param name="train">Training batches.</param>
    /// <param name="cancellationToken">Checked between mini-batches.</param>
    /// <exception cref="OperationCanceledException">Cancellation was requested.</exception>
    public EpochReport TrainEpoch(IBatchSource train, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ObjectDisposedException.ThrowIf(_disposed, this);
        double learningRate = CurrentLearningRate;
        double u = Schedule.U;
        bool constrained = _options.Mode != TrainingMode.Float;
        var device = _model.parameters().FirstOrDefault()?.device ?? CPU;
        using var lossSum = zeros(1, device: device);
        using var penaltySum = zeros(1, device: device);
        int batches = 0;
        var clock = Stopwatch.StartNew();
        _model.train();
        using (var epochBatches = EpochBatches(train, cancellationToken).GetEnumerator())
        {
            while (true)
            {
                // The scope is open while the source creates the batch, so the batch is released with it.
                using var scope = NewDisposeScope();
                if (!epochBatches.MoveNext())
                {
                    break;
                }
                var (features, labels) = epochBatches.Current;
                double loss = Step(features, labels, learningRate, u, lossSum, penaltySum);
                batches++;
                // Divergence: a non-finite loss stops training at once; so do losses past a million times the run's first for
                // a few batches in a row (one batch of outliers, against the converged loss a CBP phase starts from, does not).
                _firstLoss ??= Math.Abs(loss);
                bool overLimit = Math.Abs(loss) > CbpTrainingDivergedException.DivergenceFactor * Math.Max(_firstLoss.Value, 1e-3);
                _batchesOverLimit = overLimit ? _batchesOverLimit + 1 : 0;
                if (!double.IsFinite(loss) || _batchesOverLimit >= CbpTrainingDivergedException.DivergenceBatches)
                {
                    throw new CbpTrainingDivergedException(_options.Mode, _history.Count + 1, batches, loss, _firstLoss.Value, learningRate);
                }
                BatchCompleted?.Invoke(batches);
            }
        }
        if (batches == 0)
        {
            throw new ArgumentException("The training data produced no mini-batches.", nameof(train));
        }
        if (World is { } world)
        {
            BroadcastBuffers(world);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        double taskLossSum = lossSum.ToDouble();
        double lagrangian = taskLossSum + penaltySum.ToDouble();
        if (World is { } ranks)
        {
            // The all-reduced Lagrangian sum triggers the multiplier update, as the reference implementation does: the task
            // loss is already averaged per step; the penalty terms are averaged here (equal wherever the weights are).
            var sum = new[] { lagrangian };
            ranks.SumInPlace(sum);
            lagrangian = sum[0] / ranks.Size;
        }
        bool updated = false;
        if (constrained)
        {
            updated = Schedule.EndEpoch(lagrangian);
            if (updated && _options.Mode == TrainingMode.Cbp)
            {
                AscendMultipliers();
            }
        }
        var stats = constrained ? ConstraintStatistics.Measure(_constrained, _options.OnLevelTolerance) : null;
        var report = new EpochReport
        {
            Epoch = _history.Count + 1,
            Mode = _options.Mode,
            Batches = batches,
            TaskLoss = taskLossSum / batches,
            LagrangianSum = lagrangian,
            Cfs = stats?.Cfs ?? double.NaN,
            NormalizedCfs = stats?.NormalizedCfs ?? double.NaN,
            FractionOnLevel = stats?.FractionOnLevel ?? double.NaN,
            MultiplierMean = stats?.MultiplierMean ?? 0,
            MultiplierMax = stats?.MultiplierMax ?? 0,
            G = Schedule.G,
            U = Schedule.U,
            MultiplierUpdated = updated,
            LearningRate = learningRate,
            Seconds = seconds,
        };
        _history.Add(report);
        return report;
    }

    /// <summary>Mean loss and (for class-index labels) accuracy of the module, in evaluation mode, on <paramref name="data"/>.</summary>
    /// <param name="data">Batches to evaluate (one pass).</param>
    /// <returns>The mean loss per row and the accuracy, or <see langword="null"/> accuracy when labels are not class indices.</returns>
    public (double Loss, double? Accuracy) Evaluate(IBatchSource data) => ModelEvaluation.Evaluate(_model, _loss, data);

    /// <summary>Statistics of the latent weights now.</summary>
    public ConstraintStatistics MeasureConstraint() => ConstraintStatistics.Measure(_constrained, _options.OnLevelTolerance);

    /// <summary>The statistics of each constrained tensor on its own, by module member name.</summary>
    internal IReadOnlyDictionary<string, ConstraintStatistics> MeasureConstraintPerLayer() =>
        _constrained.ToDictionary(p => p.Name, p => ConstraintStatistics.Measure(new[] { p }, _options.OnLevelTolerance), StringComparer.Ordinal);

    /// <summary>
    /// The final exact projection: sets every latent weight to <c>Q(w)</c>. The module already holds <c>Q(w)</c>;
    /// after this call the latent weights agree with it and CFS is exactly 0.
    /// </summary>
    public void ProjectToLevels()
    {
        using var noGrad = no_grad();
        foreach (var p in _constrained)
        {
            p.Latent.copy_(p.Parameter);
            p.Requantize();
        }
    }

    /// <summary>
    /// The engine's complete state between epochs (copies on the CPU): latent weights, scales, multipliers with their Adam
    /// moments, every momentum buffer, the schedule, the history and the position in the data, so that
    /// <see cref="RestoreState"/> on a fresh trainer of the same module continues exactly where this one stands.
    /// </summary>
    internal TrainerState CaptureState()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor Copy(Tensor t) => t.detach().cpu().clone().DetachFromDisposeScope();
        for (int i = 0; i < _free.Count; i++)
        {
            tensors[$"free.{i}.momentum"] = Copy(_free[i].Momentum);
        }
        var adamSteps = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in _constrained)
        {
            tensors[$"constrained.{p.Name}.latent"] = Copy(p.Latent);
            tensors[$"constrained.{p.Name}.scale"] = Copy(p.Scale);
            tensors[$"constrained.{p.Name}.momentum"] = Copy(p.MomentumBuffer);
            tensors[$"constrained.{p.Name}.multipliers"] = Copy(p.Multipliers.Multipliers);
            tensors[$"constrained.{p.Name}.adam_m"] = Copy(p.Multipliers.FirstMoment);
            tensors[$"constrained.{p.Name}.adam_v"] = Copy(p.Multipliers.SecondMoment);
            adamSteps[p.Name] = p.Multipliers.Steps;
        }
        return new TrainerState(tensors, adamSteps, Schedule.CaptureState(), _history.ToList(), _pass, _stream is null ? -1 : _streamBatches);
    }

    /// <summary>
    /// Continues from a state captured by <see cref="CaptureState"/> on a trainer of the same module, options and data;
    /// the data position is restored by re-opening the pass and skipping the batches already used.
    /// </summary>
    /// <param name="state">The captured state.</param>
    /// <param name="train">The training batches the captured trainer used.</param>
    /// <exception cref="ArgumentException">The state belongs to another network or constraint.</exception>
    internal void RestoreState(TrainerState state, IBatchSource train)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        using var noGrad = no_grad();
        Tensor Get(string key, Tensor like) => state.Tensors.TryGetValue(key, out var t) && t.shape.SequenceEqual(like.shape)
            ? t
            : throw new ArgumentException($"The saved trainer state has no tensor '{key}' of shape [{string.Join(", ", like.shape)}]; it was saved for another network.", nameof(state));
        for (int i = 0; i < _free.Count; i++)
        {
            _free[i].Momentum.copy_(Get($"free.{i}.momentum", _free[i].Momentum));
        }
        foreach (var p in _constrained)
        {
            p.Latent.copy_(Get($"constrained.{p.Name}.latent", p.Latent));
            p.Scale.copy_(Get($"constrained.{p.Name}.scale", p.Scale));
            p.MomentumBuffer.copy_(Get($"constrained.{p.Name}.momentum", p.MomentumBuffer));
            p.Multipliers.Restore(
                Get($"constrained.{p.Name}.multipliers", p.Multipliers.Multipliers),
                Get($"constrained.{p.Name}.adam_m", p.Multipliers.FirstMoment),
                Get($"constrained.{p.Name}.adam_v", p.Multipliers.SecondMoment),
                state.AdamSteps[p.Name]);
            p.Requantize();
        }
        Schedule.RestoreState(state.Schedule);
        _history.Clear();
        _history.AddRange(state.History);
        _stream?.Dispose();
        _stream = null;
        _pass = state.Pass;
        if (state.StreamBatches >= 0)
        {
            // Re-open the pass the captured trainer was in and move past the batches it had used.
            _stream = train.Pass(_pass - 1).GetEnumerator();
            for (_streamBatches = 0; _streamBatches < state.StreamBatches; _streamBatches++)
            {
                using var scope = NewDisposeScope();
                if (!_stream.MoveNext())
                {
                    throw new ArgumentException($"The saved position (batch {state.StreamBatches} of pass {_pass}) is beyond the data's end; the data changed.", nameof(train));
                }
            }
        }
    }

    /// <summary>Releases latent weights, multipliers and optimiser state. The module keeps its parameters.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _stream?.Dispose();
        foreach (var p in _constrained)
        {
            p.Dispose();
        }
        foreach (var f in _free)
        {
            f.Momentum.Dispose();
        }
    }

    /// <summary>One training step; returns the batch's task loss.</summary>
    private double Step(Tensor features, Tensor labels, double learningRate, double u, Tensor lossSum, Tensor penaltySum)
    {
        _model.zero_grad();
        var output = _model.forward(features);
        var loss = _loss(output, labels);
        loss.backward();
        using var noGrad = no_grad();
        var lossValue = loss.detach();
        if (World is { } world)
        {
            lossValue = AverageAcrossRanks(world, lossValue);
        }
        lossSum.Add_(lossValue);
        double clip = _options.GradientClip;
        double decay = _options.WeightDecay;
        double momentum = _options.Momentum;
        foreach (var (parameter, buffer, decays) in _free)
        {
            var grad = parameter.grad;
            if (grad is null)
            {
                continue;
            }
            grad.ClampScalar_(-clip, clip);
            if (decays && decay > 0)
            {
                grad.AddScaled_(parameter, decay);
            }
            buffer.MulScalar_(momentum).Add_(grad);
            parameter.AddScaled_(buffer, -learningRate);
        }
        foreach (var p in _constrained)
        {
            var grad = p.Parameter.grad;
            if (grad is null)
            {
                continue;
            }
            if (_options.Mode == TrainingMode.Cbp)
            {
                // The Lagrangian's constraint term: lambda * dc/dw joins the task gradient; lambda * c(w) joins the epoch's sum.
                var active = ConstraintFunction.ActiveMask(p.Quantizer, p.NormalizedLatent, u);
                grad.AddProductScaled_(p.Multipliers.Multipliers, ConstraintFunction.GradientFromTerms(p.NormalizedDiff, active), 1);
                penaltySum.Add_(p.Multipliers.Multipliers.flatten().dot(ConstraintFunction.ValueFromTerms(p.NormalizedDiff, active, p.Scale).flatten()));
            }
            grad.ClampScalar_(-clip, clip);
            if (decay > 0)
            {
                grad.AddScaled_(p.Latent, decay);
            }
            p.MomentumBuffer.MulScalar_(momentum).Add_(grad);
            p.Latent.AddScaled_(p.MomentumBuffer, -learningRate).ClampScalar_(-_options.LatentClamp, _options.LatentClamp);
            p.Requantize();
        }
        return lossValue.ToDouble();
    }

    /// <summary>Averages the batch loss and every parameter's gradient across the ranks (one all-reduce); returns the averaged loss.</summary>
    private Tensor AverageAcrossRanks(MpiWorld world, Tensor loss)
    {
        long started = Stopwatch.GetTimestamp();
        var gradients = _model.parameters().Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        // One contiguous float32 CPU tensor [loss, gradients...]: MPI sums it in the tensor's own memory.
        using var flat = cat(new[] { loss.reshape(1).to(float32).cpu() }.Concat(gradients.Select(g => g.detach().reshape(-1).to(float32).cpu())).ToList(), 0);
        long reducing = Stopwatch.GetTimestamp();
        // In pieces of at most 2^28 floats: a span's length is an int.
        const long Piece = 1L << 28;
        for (long start = 0; start < flat.numel(); start += Piece)
        {
            using var piece = flat.narrow(0, start, Math.Min(Piece, flat.numel() - start));
            world.SumInPlace(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(piece.bytes));
        }
        AllReduceSeconds += Stopwatch.GetElapsedTime(reducing).TotalSeconds;
        flat.div_(world.Size);
        long offset = 1;
        foreach (var gradient in gradients)
        {
            long length = gradient.numel();
            using var average = flat.narrow(0, offset, length).view(gradient.shape);
            gradient.copy_(average);
            offset += length;
        }
        var averagedLoss = flat[0].to(loss.device);
        AveragingSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
        return averagedLoss;
    }

    /// <summary>Copies rank 0's buffers (batch-norm running statistics) to every rank, so all ranks hold the same module.</summary>
    private void BroadcastBuffers(MpiWorld world)
    {
        using var noGrad = no_grad();
        foreach (var (_, buffer) in _model.named_buffers())
        {
            // Into a contiguous CPU tensor's own memory (the buffer itself when it is one), then back into the buffer.
            using var values = buffer.detach().cpu().contiguous();
            world.Broadcast(values.bytes, root: 0);
            buffer.copy_(values);
        }
    }

    private void AscendMultipliers()
    {
        double u = Schedule.U;
        foreach (var p in _constrained)
        {
            using var value = p.ConstraintValue(u);
            p.Multipliers.Ascend(value);
        }
    }

    /// <summary>The batches of one engine epoch: a full pass, or a fixed count drawn from a stream that wraps around passes.</summary>
    private IEnumerable<(Tensor Features, Tensor Labels)> EpochBatches(IBatchSource train, CancellationToken cancellationToken)
    {
        int? limit = _options.BatchesPerEpoch;
        if (limit is null)
        {
            // A full pass; a stream left over from fixed-length epochs is dropped.
            _stream?.Dispose();
            _stream = null;
            using var pass = train.Pass(_pass++).GetEnumerator();
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!pass.MoveNext())
                {
                    yield break;
                }
                yield return pass.Current;
            }
        }
        for (int i = 0; i < limit; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_stream is null)
            {
                _stream = train.Pass(_pass++).GetEnumerator();
                _streamBatches = 0;
            }
            if (!_stream.MoveNext())
            {
                _stream.Dispose();
                _stream = train.Pass(_pass++).GetEnumerator();
                _streamBatches = 0;
                if (!_stream.MoveNext())
                {
                    yield break;
                }
            }
            _streamBatches++;
            yield return _stream.Current;
        }
    }
}
