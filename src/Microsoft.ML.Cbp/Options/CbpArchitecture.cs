using System;
using System.Linq;
using Microsoft.ML.Cbp.Onnx.Architectures;
using Onnx;

namespace Microsoft.ML.Cbp;

/// <summary>
/// A built-in network, trained from scratch in float before CBP. Each is an ONNX graph builder: the network is an
/// ONNX model from the start, so training, export and scoring all see the same graph.
/// </summary>
public abstract class CbpArchitecture
{
    private protected CbpArchitecture(string name) => Name = name;

    /// <summary>A readable name, such as <c>SmallCnn</c> or <c>ResNet20</c>.</summary>
    public string Name { get; }

    /// <summary>
    /// A multilayer perceptron: Flatten, then per hidden size Gemm, optional BatchNormalization, ReLU and optional
    /// Dropout, then a Gemm to the outputs.
    /// </summary>
    /// <param name="hiddenSizes">Hidden layer widths; default 512, 512.</param>
    /// <param name="batchNorm">Batch normalisation after each hidden layer (default true).</param>
    /// <param name="dropout">Dropout ratio after each hidden layer (default 0: none).</param>
    public static CbpArchitecture Mlp(int[]? hiddenSizes = null, bool batchNorm = true, float dropout = 0) =>
        new MlpArchitecture(hiddenSizes ?? new[] { 512, 512 }, batchNorm, dropout);

    /// <summary>
    /// The small CNN for 28x28 or 32x32 images (any channel count): three blocks of 3x3 Conv (32, 64, 128 channels),
    /// BatchNormalization, ReLU and 2x2 MaxPool, then a fully-connected hidden layer with batch norm and ReLU, then the output layer.
    /// </summary>
    /// <param name="hidden">Width of the hidden fully-connected layer (default 256).</param>
    public static CbpArchitecture SmallCnn(int hidden = 256) => new SmallCnnArchitecture(hidden);

    /// <summary>
    /// A CIFAR-style ResNet (He et al. 2016, section 4.2): a 3x3 stem of 16 channels, three stages of
    /// <c>(depth - 2) / 6</c> basic blocks with 16, 32 and 64 channels (1x1 convolution shortcuts where the shape
    /// changes), global average pooling and a fully-connected output.
    /// </summary>
    /// <param name="depth">6n + 2: 20 (default), 32, 44, 56, 110.</param>
    public static CbpArchitecture ResNet(int depth = 20) => new ResNetArchitecture(depth);

    /// <summary>Builds the network as an ONNX model with a symbolic batch dimension.</summary>
    /// <param name="inputShape">Shape of one input row, e.g. [1, 28, 28] or [784].</param>
    /// <param name="outputs">Number of outputs (classes, or 1 for regression).</param>
    /// <param name="seed">Initialisation seed.</param>
    /// <exception cref="ArgumentException">The input shape does not suit the network.</exception>
    public ModelProto Build(long[] inputShape, int outputs, long seed = 1)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        if (inputShape.Length == 0 || inputShape.Any(d => d <= 0))
        {
            throw new ArgumentException($"InputShape [{string.Join(", ", inputShape)}] must list positive dimensions.", nameof(inputShape));
        }
        if (outputs < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(outputs), outputs, "A network needs at least one output.");
        }
        using var builder = new OnnxGraphBuilder(Name, seed);
        string x = builder.Input("input", inputShape);
        string y = BuildLayers(builder, x, inputShape, outputs);
        builder.Output(y, new long[] { outputs });
        return builder.Build($"{Name} built by Microsoft.ML.Cbp for input [{string.Join(", ", inputShape)}] and {outputs} outputs.");
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    private protected abstract string BuildLayers(OnnxGraphBuilder b, string x, long[] inputShape, int outputs);

    private protected static (long Channels, long Height, long Width) Image(long[] shape, string network, long minSize)
    {
        if (shape.Length != 3 || shape[1] < minSize || shape[2] < minSize)
        {
            throw new ArgumentException(
                $"{network} needs an image input shape [channels, height, width] of at least {minSize}x{minSize}; got [{string.Join(", ", shape)}].", "inputShape");
        }
        return (shape[0], shape[1], shape[2]);
    }

    private sealed class MlpArchitecture : CbpArchitecture
    {
        private readonly int[] _hidden;
        private readonly bool _batchNorm;
        private readonly float _dropout;

        public MlpArchitecture(int[] hidden, bool batchNorm, float dropout)
            : base("Mlp(" + string.Join("-", hidden) + ")")
        {
            if (hidden.Any(h => h < 1))
            {
                throw new ArgumentException($"Hidden sizes must be positive; got {string.Join(", ", hidden)}.", "hiddenSizes");
            }
            if (!(dropout >= 0 && dropout < 1))
            {
                throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "Dropout must be in [0, 1).");
            }
            _hidden = hidden;
            _batchNorm = batchNorm;
            _dropout = dropout;
        }

        private protected override string BuildLayers(OnnxGraphBuilder b, string x, long[] inputShape, int outputs)
        {
            long width = inputShape.Aggregate(1L, (a, d) => a * d);
            x = b.Flatten(x);
            foreach (int h in _hidden)
            {
                x = b.Dense(x, width, h);
                if (_batchNorm)
                {
                    x = b.BatchNorm(x, h);
                }
                x = b.Relu(x);
                if (_dropout > 0)
                {
                    x = b.Dropout(x, _dropout);
                }
                width = h;
            }
            return b.Dense(x, width, outputs);
        }
    }

    private sealed class SmallCnnArchitecture : CbpArchitecture
    {
        private readonly int _hidden;

        public SmallCnnArchitecture(int hidden) : base("SmallCnn")
        {
            if (hidden < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(hidden), hidden, "The hidden layer needs at least one unit.");
            }
            _hidden = hidden;
        }

        private protected override string BuildLayers(OnnxGraphBuilder b, string x, long[] inputShape, int outputs)
        {
            var (channels, height, width) = Image(inputShape, Name, 8);
            foreach (long next in new long[] { 32, 64, 128 })
            {
                x = b.MaxPool(b.Relu(b.BatchNorm(b.Conv(x, channels, next, 3, pad: 1), next)), 2);
                channels = next;
                height /= 2;
                width /= 2;
            }
            x = b.Flatten(x);
            x = b.Relu(b.BatchNorm(b.Dense(x, channels * height * width, _hidden), _hidden));
            return b.Dense(x, _hidden, outputs);
        }
    }

    private sealed class ResNetArchitecture : CbpArchitecture
    {
        private readonly int _blocks;

        public ResNetArchitecture(int depth) : base($"ResNet{depth}")
        {
            if (depth < 8 || (depth - 2) % 6 != 0)
            {
                throw new ArgumentOutOfRangeException(nameof(depth), depth, "A CIFAR-style ResNet has depth 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110).");
            }
            _blocks = (depth - 2) / 6;
        }

        private protected override string BuildLayers(OnnxGraphBuilder b, string x, long[] inputShape, int outputs)
        {
            var (channels, _, _) = Image(inputShape, Name, 8);
            x = b.Relu(b.BatchNorm(b.Conv(x, channels, 16, 3, pad: 1), 16));
            channels = 16;
            foreach (long width in new long[] { 16, 32, 64 })
            {
                for (int block = 0; block < _blocks; block++)
                {
                    long stride = block == 0 && width != 16 ? 2 : 1;
                    string y = b.Relu(b.BatchNorm(b.Conv(x, channels, width, 3, stride, pad: 1), width));
                    y = b.BatchNorm(b.Conv(y, width, width, 3, 1, pad: 1), width);
                    string shortcut = stride == 1 && channels == width ? x : b.BatchNorm(b.Conv(x, channels, width, 1, stride), width);
                    x = b.Relu(b.Add(y, shortcut));
                    channels = width;
                }
            }
            x = b.Flatten(b.GlobalAveragePool(x));
            return b.Dense(x, channels, outputs);
        }
    }
}
