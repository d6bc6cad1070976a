using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp;

/// <summary>
/// Options of <see cref="CbpCatalog.CbpQuantize(TransformsCatalog, CbpQuantizeOptions)"/>: what to train, on which
/// columns, under which weight constraint, and how the result is scored.
/// </summary>
/// <remarks>
/// Give either <see cref="Architecture"/> (a built-in network trained from scratch: float pre-training, then CBP) or a
/// pretrained float ONNX model through <see cref="PretrainedModelPath"/> or <see cref="PretrainedModelBytes"/> (the
/// paper's post-training case: CBP starts from its weights). When neither is set, a small CNN is used for inputs of
/// shape [channels, height, width] and an MLP otherwise.
/// </remarks>
public sealed class CbpQuantizeOptions
{
    /// <summary>The feature column: a known-size vector of Single. Default "Features".</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>The label column: a key (multiclass), Boolean (binary) or Single (regression). Default "Label".</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>
    /// How the network sees one feature vector, for example { 1, 28, 28 } for a grey 28x28 image (channels, height,
    /// width, the order ImageAnalytics' ExtractPixels writes). Default null: the vector as it is ({ length }), or the
    /// pretrained model's declared input shape.
    /// </summary>
    public int[]? InputShape { get; set; }

    /// <summary>A built-in network trained from scratch. Default null (see the remarks of this class).</summary>
    public CbpArchitecture? Architecture { get; set; }

    /// <summary>
    /// Path of a pretrained float ONNX model to quantize. Default null. Its outputs have a fixed class order: map the
    /// label to keys in that order (<c>MapValueToKey(..., keyData: classesInModelOrder)</c>), not in order of appearance.
    /// </summary>
    public string? PretrainedModelPath { get; set; }

    /// <summary>The bytes of a pretrained float ONNX model to quantize. Default null.</summary>
    public byte[]? PretrainedModelBytes { get; set; }

    /// <summary>The pretrained model's data input; default null: its only input that is not an initializer.</summary>
    public string? InputNodeName { get; set; }

    /// <summary>The pretrained model's output to train and score (logits for classification); default null: its first output.</summary>
    public string? OutputNodeName { get; set; }

    /// <summary>The level set of the constrained weights. Default <see cref="WeightConstraint.Binary"/>.</summary>
    public WeightConstraint Constraint { get; set; } = WeightConstraint.Binary;

    /// <summary>Keep the first and the last weight layer in float, as the paper does. Default true.</summary>
    public bool KeepFirstAndLastLayersFloat { get; set; } = true;

    /// <summary>Weight initializers (ONNX names) to keep in float besides the first and last. Default none.</summary>
    public IList<string> FloatLayers { get; set; } = new List<string>();

    /// <summary>
    /// Float training epochs before CBP. Default null: 10 for a built-in <see cref="Architecture"/>, 0 for a pretrained
    /// model. With validation data, training stops early after 3 epochs without a better validation loss and keeps the
    /// best weights.
    /// </summary>
    public int? PretrainEpochs { get; set; }

    /// <summary>Learning rate of the float pre-training (SGD with momentum 0.9). Default 0.05.</summary>
    public double PretrainLearningRate { get; set; } = 0.05;

    /// <summary>CBP epochs (passes over the training data). Default 20.</summary>
    public int Epochs { get; set; } = 20;

    /// <summary>
    /// CBP's schedule (plateau detection, multiplier updates, window narrowing) works per schedule epoch; each pass over
    /// the data is split into this many. Default 4, so that the window narrows far enough within a budget of tens of
    /// passes (the paper's ImageNet runs had hundreds of epochs). Progress is reported per schedule epoch.
    /// </summary>
    public int ScheduleEpochsPerPass { get; set; } = 4;

    /// <summary>Weight learning rate of CBP (SGD with momentum 0.9). Default 0.01.</summary>
    public double LearningRate { get; set; } = TrainingDefaults.LearningRate;

    /// <summary>
    /// Adam learning rate of the Lagrange-multiplier ascent. Default 0.01: the paper's 1e-4 suits hundreds of ImageNet
    /// epochs; 0.1 pins a CNN's weights to levels before the task
    /// can choose them (on the Fashion-MNIST small CNN, ternary: 67.0% with 0.1, 89.4% with 0.01; see
    /// docs/benchmarks/accuracy-study.md).
    /// </summary>
    public double MultiplierLearningRate { get; set; } = TrainingDefaults.MultiplierLearningRate;

    /// <summary>A multiplier update happens at the latest after this many schedule epochs without one. Default 2 (paper: 20).</summary>
    public int MultiplierUpdatePeriod { get; set; } = TrainingDefaults.MultiplierUpdatePeriod;

    /// <summary>
    /// How each constrained layer's scale is chosen. Default <see cref="ScaleMode.MinimumError"/>: the per-layer scale that
    /// minimises the layer's rounding error, which for binary levels is mean |w|, the paper's choice, and for the shift level
    /// sets keeps the weights beyond mean |w| from being capped at the outer level (small CNN on the Fashion-MNIST subset,
    /// CBP: 1-bit shift 88.5% with mean |w|, 89.6% with this; 2-bit shift 88.1% and 88.8%; float 89.2%; see
    /// docs/benchmarks/accuracy-study-subset-minimum-error.md). <see cref="ScaleMode.PerLayer"/> is mean |w| for every level set
    /// (the paper's); <see cref="ScaleMode.PerOutputChannel"/> gives each output channel its own mean |w|.
    /// </summary>
    public ScaleMode ScaleMode { get; set; } = TrainingDefaults.Scale;

    /// <summary>Fraction of the CBP epochs at the end over which the learning rate anneals to 0. Default 0.25.</summary>
    public double FinalAnnealFraction { get; set; } = TrainingDefaults.FinalAnnealFraction;

    /// <summary>Mini-batch size of training. Default 64.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Rows per ONNX Runtime run when scoring. Default 256.</summary>
    public int ScoringBatchSize { get; set; } = 256;

    /// <summary>Data to report validation loss and accuracy on after every epoch (and to stop pre-training early). Default null.</summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>Seed of initialisation and shuffling. Default null: the MLContext's seed, or 1 when it has none.</summary>
    public int? Seed { get; set; }

    /// <summary>Where the network trains. Default <see cref="CbpTrainingDevice.Auto"/>.</summary>
    public CbpTrainingDevice TrainingDevice { get; set; } = CbpTrainingDevice.Auto;

    /// <summary>GPU on which ONNX Runtime scores (CUDA execution provider). Default null: the MLContext's GpuDeviceId, or the CPU.</summary>
    public int? GpuDeviceId { get; set; }

    /// <summary>Score on the CPU when the GPU cannot be used. Default null: the MLContext's FallbackToCpu.</summary>
    public bool? FallbackToCpu { get; set; }

    /// <summary>
    /// How <see cref="CbpQuantizeTransformer.SaveOnnx(string)"/> stores constrained weights. Default <see cref="WeightStorage.Int4"/>.
    /// Every storage gives a file that ONNX Runtime and ML.NET's ApplyOnnxModel both load (codes in Constant nodes decoded
    /// by Cast and Mul). <see cref="WeightStorage.OneBit"/> stores binary levels at one bit per weight; other level sets
    /// need Int2 (binary, ternary), Int4 or Int8, and a storage that cannot hold the level set fails Fit before training.
    /// </summary>
    public WeightStorage WeightStorage { get; set; } = WeightStorage.Int4;

    /// <summary>
    /// How the fitted transformer's ONNX Runtime sessions (and a model saved from it with <c>mlContext.Model.Save</c>) run the
    /// constrained weights. Default <see cref="WeightExecution.DecodedFloat"/>: decoded to float when a session starts, float
    /// memory and speed. <see cref="WeightExecution.MatMulNBits"/> keeps fully connected layers as 4-bit codes in com.microsoft
    /// <c>MatMulNBits</c> nodes with the same results up to float rounding; see docs/benchmarks/low-bit-execution.md for when
    /// it is smaller and faster on this library's networks. Conv layers stay decoded.
    /// </summary>
    public WeightExecution WeightExecution { get; set; } = WeightExecution.DecodedFloat;

    /// <summary>
    /// Training (and validation) data whose float features fit in this many bytes is read once into a tensor and drawn
    /// in random-permutation batches; larger data streams from the IDataView a batch at a time, with memory bounded by
    /// the batch size, <see cref="PrefetchBatches"/> and <see cref="ShufflePoolRows"/>, whatever the number of rows. Default
    /// 2 GiB (the whole Fashion-MNIST is 188 MB). 0 always streams. A view that does not know its row count is counted
    /// first in a cheap pass over the label column (features are not computed).
    /// </summary>
    public long DataCacheBudgetBytes { get; set; } = 2L << 30;

    /// <summary>
    /// Streamed data whose view cannot shuffle itself (<c>IDataView.CanShuffle</c> is false, as for most transformed or
    /// file-backed views) is shuffled through a pool of this many rows (as ML.NET's ShuffleRows and tf.data do): each row
    /// leaves the pool at a random position, so rows move about a pool's length from their place in the source, which is
    /// weaker than a full permutation; a view that can shuffle itself (an in-memory or cached view) is shuffled fully by
    /// its own cursor. The first batch of each pass waits until the pool is full, so a larger pool shuffles better and
    /// starts later. Default null: 1,000 rows (ML.NET's ShuffleRows default), fewer when 1,000 rows would exceed 256 MiB.
    /// Data sorted by class needs a view that shuffles itself (<c>mlContext.Data.Cache</c>) or rows listed in random order.
    /// At least 2.
    /// </summary>
    public int? ShufflePoolRows { get; set; }

    /// <summary>Batches a background reader prepares ahead of training when data streams (image decoding and IDataView transforms overlap with training). Default 4.</summary>
    public int PrefetchBatches { get; set; } = 4;

    /// <summary>
    /// TorchSharp intra-op threads during Fit; the process-wide setting is restored afterwards. Default null: the current
    /// setting (TorchSharp's default is one per core), also while streamed data's reader runs beside training (on 2 cores,
    /// streaming the whole Fashion-MNIST trained 1.5x faster with 2 threads than with 1; docs/benchmarks/streaming-speed.md).
    /// Results are deterministic for a given seed, machine and thread count.
    /// </summary>
    public int? TrainingThreads { get; set; }

    /// <summary>
    /// Augmentation of every training batch, for image inputs ([channels, height, width] <see cref="InputShape"/>): for
    /// example <c>CbpAugmentation.Compose(CbpAugmentation.RandomCrop(2), CbpAugmentation.RandomHorizontalFlip())</c>.
    /// Default null: off.
    /// </summary>
    public CbpAugmentation? Augmentation { get; set; }

    /// <summary>
    /// Rows whose features hold NaN or infinite values are left out of training (and counted in
    /// <see cref="CbpTrainingReport.SkippedNonFiniteRows"/>) instead of failing Fit. Default false: cached data fails before
    /// training with the number of such rows and the first (row and slot); streamed data fails at the first.
    /// </summary>
    public bool SkipRowsWithNonFiniteFeatures { get; set; }

    /// <summary>
    /// The most bytes the compact ONNX file (SaveOnnx's, metadata included) may take. When set, Fit chooses for each weight
    /// layer a level set from <see cref="MixedConstraints"/> (each stored in the narrowest storage that holds it: one bit
    /// for binary, two for ternary, four for the shift sets) or float, so that the file fits with the least loss increase
    /// measured on the training data after float pre-training, then trains every layer with CBP to its own level set.
    /// <see cref="Constraint"/> and <see cref="WeightStorage"/> are then not used; <see cref="KeepFirstAndLastLayersFloat"/>
    /// and <see cref="FloatLayers"/> still hold. A budget below the smallest reachable size fails before training, naming it,
    /// and so does one that holds the whole float network (nothing to quantize). With CheckpointPath, the per-layer choice is saved in the checkpoint, so a resumed Fit keeps it.
    /// Default null: off (one level set for every constrained layer).
    /// </summary>
    public long? MaxModelBytes { get; set; }

    /// <summary>
    /// The level sets a <see cref="MaxModelBytes"/> budget chooses from, per layer (float is always a choice). Default:
    /// TwoBitShift, Ternary, Binary.
    /// </summary>
    public IList<WeightConstraint> MixedConstraints { get; set; } = new List<WeightConstraint> { WeightConstraint.TwoBitShift, WeightConstraint.Ternary, WeightConstraint.Binary };

    /// <summary>
    /// Before training a pretrained multiclass model, check that its output order is the label column's key order: the
    /// untouched model scores at least 1,000 rows sampled across the training data (20 per class when that is more, up to
    /// 10,000), and when relabelling its outputs would match the labels 10 points more often than the key order and than
    /// always guessing the most frequent class (on rows the relabelling was not fitted on), Fit fails with a message on how to map the label (MapValueToKey with keyOrdinality ByValue, or
    /// keyData). Default true. Set false when the new order is intended and the network is to relearn its classes.
    /// </summary>
    public bool CheckLabelOrder { get; set; } = true;

    /// <summary>
    /// A file in which Fit keeps a checkpoint of its complete state (network, latent weights, multipliers, schedule, optimiser
    /// state, data position, random state), written atomically after every pre-training epoch and every CBP schedule epoch.
    /// A Fit that finds a checkpoint of the same Fit (same options, data size and initial network) at this path resumes from
    /// it and ends with the model the uninterrupted Fit gives (byte for byte on the CPU; on CUDA the GPU's own random
    /// generator, which dropout on the GPU draws from, is not saved); a checkpoint of another Fit is refused with a
    /// message. The file is deleted once Fit has produced its transformer. Default null: no checkpoints.
    /// </summary>
    public string? CheckpointPath { get; set; }

    /// <summary>
    /// When the process was started by MPICH's <c>mpiexec -n N</c> (N &gt; 1), Fit trains data-parallel: each rank reads its own
    /// shard of the training data (labelled row k to rank k mod N, reshuffled every epoch), trains on batches of
    /// <see cref="BatchSize"/> of its rows (a combined batch of N x BatchSize), and the ranks average their gradients every
    /// step, so all end with the same model (see <see cref="CbpDataParallel"/> and the README). Default true; false: every
    /// rank trains alone, as without MPI. Without a launcher this option changes nothing.
    /// </summary>
    public bool DataParallel { get; set; } = true;

    /// <summary>Receives progress: one report per epoch, and within long epochs every few seconds. Default null.</summary>
    public Action<CbpProgressReport>? Progress { get; set; }

    /// <summary>Cancels training between mini-batches (Fit then throws <see cref="OperationCanceledException"/>). Default none.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        RequireName(FeatureColumnName, nameof(FeatureColumnName));
        RequireName(LabelColumnName, nameof(LabelColumnName));
        int sources = (Architecture is null ? 0 : 1) + (PretrainedModelPath is null ? 0 : 1) + (PretrainedModelBytes is null ? 0 : 1);
        if (sources > 1)
        {
            throw new ArgumentException("Set only one of Architecture, PretrainedModelPath and PretrainedModelBytes.", nameof(Architecture));
        }
        if (InputShape is { } shape && (shape.Length == 0 || shape.Any(d => d < 1)))
        {
            throw new ArgumentException($"InputShape must list positive dimensions, for example {{ 1, 28, 28 }}; got [{string.Join(", ", shape)}].", nameof(InputShape));
        }
        if (Constraint is null)
        {
            throw new ArgumentException("Constraint must be set, for example WeightConstraint.Binary.", nameof(Constraint));
        }
        if (FloatLayers is null)
        {
            throw new ArgumentException("FloatLayers must be a list (empty for none).", nameof(FloatLayers));
        }
        if (PretrainEpochs is int p && p < 0)
        {
            throw new ArgumentException($"PretrainEpochs must be 0 or more; got {p}.", nameof(PretrainEpochs));
        }
        OptionChecks.Positive(Epochs, nameof(Epochs));
        OptionChecks.Positive(ScheduleEpochsPerPass, nameof(ScheduleEpochsPerPass));
        OptionChecks.Positive(PretrainLearningRate, nameof(PretrainLearningRate));
        OptionChecks.Positive(LearningRate, nameof(LearningRate));
        OptionChecks.InRange(MultiplierLearningRate, 0, double.MaxValue, nameof(MultiplierLearningRate));
        OptionChecks.Positive(MultiplierUpdatePeriod, nameof(MultiplierUpdatePeriod));
        OptionChecks.InRange(FinalAnnealFraction, 0, 1, nameof(FinalAnnealFraction));
        OptionChecks.Positive(BatchSize, nameof(BatchSize));
        OptionChecks.Positive(ScoringBatchSize, nameof(ScoringBatchSize));
        OptionChecks.Defined(ScaleMode, nameof(ScaleMode));
        OptionChecks.Defined(TrainingDevice, nameof(TrainingDevice));
        if (GpuDeviceId is int g && g < 0)
        {
            throw new ArgumentException($"GpuDeviceId must be 0 or more (or null for the CPU); got {g}.", nameof(GpuDeviceId));
        }
        OptionChecks.Defined(WeightStorage, nameof(WeightStorage));
        OptionChecks.Defined(WeightExecution, nameof(WeightExecution));
        OptionChecks.InRange(DataCacheBudgetBytes, 0, double.MaxValue, nameof(DataCacheBudgetBytes));
        if (ShufflePoolRows is int pool && pool < 2)
        {
            throw new ArgumentException($"ShufflePoolRows must be at least 2 (or null for the default); got {pool}.", nameof(ShufflePoolRows));
        }
        OptionChecks.Positive(PrefetchBatches, nameof(PrefetchBatches));
        if (CheckpointPath is not null && (string.IsNullOrWhiteSpace(CheckpointPath) || Directory.Exists(CheckpointPath)))
        {
            throw new ArgumentException($"CheckpointPath must name a file (or be null for no checkpoints); got '{CheckpointPath}'.", nameof(CheckpointPath));
        }
        if (MaxModelBytes is long budget)
        {
            if (budget < 1)
            {
                throw new ArgumentException($"MaxModelBytes must be positive (or null for no budget); got {budget}.", nameof(MaxModelBytes));
            }
            if (MixedConstraints is null || MixedConstraints.Count == 0 || MixedConstraints.Any(c => c is null))
            {
                throw new ArgumentException("MixedConstraints must list at least one level set for MaxModelBytes to choose from.", nameof(MixedConstraints));
            }
        }
        if (TrainingThreads is int threads && threads < 1)
        {
            throw new ArgumentException($"TrainingThreads must be at least 1 (or null for the default); got {threads}.", nameof(TrainingThreads));
        }
    }

    private static void RequireName(string name, string option)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ArgumentException($"{option} must name a column.", option);
        }
    }
}
