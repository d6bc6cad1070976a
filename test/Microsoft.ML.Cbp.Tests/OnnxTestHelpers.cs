using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Onnx.Architectures;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>The second path for parity tests: ONNX Runtime on the CPU, exact math (no MatMulNBits rewrite), one thread.</summary>
internal static class OrtRunner
{
    // foldWeights: let ONNX Runtime decode DequantizeLinear of initializers once at load (session.disable_quant_qdq).
    public static (float[] Values, long[] Shape) Run(ModelProto model, float[] input, long[] shape, bool foldWeights = false)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        options.AddSessionConfigEntry("session.qdq_matmulnbits_accuracy_level", "1");
        if (foldWeights)
        {
            options.AddSessionConfigEntry("session.disable_quant_qdq", "1");
        }
        using var session = new InferenceSession(OnnxModelFile.ToBytes(model), options);
        string name = session.InputMetadata.Keys.First();
        var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(input, shape.Select(d => (int)d).ToArray())) };
        using var results = session.Run(inputs);
        var output = results.First().AsTensor<float>();
        return (output.ToArray(), output.Dimensions.ToArray().Select(d => (long)d).ToArray());
    }
}

internal static class OnnxTestHelpers
{
    public static string ResNet18Path => Path.Combine(AppContext.BaseDirectory, "models", "ResNet18.onnx");

    /// <summary>A seeded uniform input in [-2, 2).</summary>
    public static float[] RandomInput(long[] shape, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
    }

    /// <summary>The module's forward pass in evaluation mode.</summary>
    public static (float[] Values, long[] Shape) Forward(OnnxGraphModule module, float[] input, long[] shape)
    {
        module.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var y = module.forward(tensor(input, shape)).contiguous();
        return (y.data<float>().ToArray(), y.shape);
    }

    /// <summary>Asserts both paths agree: same shape, max |a - b| / max(1, max |b|) within the tolerance.</summary>
    public static void AssertClose((float[] Values, long[] Shape) torch, (float[] Values, long[] Shape) ort, double tolerance, string what)
    {
        CollectionAssert.AreEqual(ort.Shape, torch.Shape, $"{what}: shapes differ");
        double scale = Math.Max(1, ort.Values.Max(v => Math.Abs(v)));
        double worst = torch.Values.Zip(ort.Values, (a, b) => Math.Abs(a - b)).DefaultIfEmpty(0).Max() / scale;
        Assert.IsTrue(worst <= tolerance, $"{what}: relative max difference {worst:E2} > {tolerance:E0}");
        Assert.IsTrue(torch.Values.All(float.IsFinite), $"{what}: non-finite output");
    }

    /// <summary>Naive rounding of the named initializers onto the levels, described for the exporter.</summary>
    public static List<QuantizedInitializer> RoundToLevels(OnnxGraphModule module, IEnumerable<string> initializers, WeightConstraint constraint, ScaleMode scaleMode = ScaleMode.PerLayer)
    {
        var names = initializers.ToList();
        var scales = Microsoft.ML.Cbp.Training.Baselines.RoundToLevels(module, names.Select(module.MemberName), constraint, scaleMode);
        return names.Select(n => new QuantizedInitializer(n, constraint, scales[module.MemberName(n)])).ToList();
    }

    /// <summary>A one-op (or few-op) model on input "x" of shape [N, rowShape...], built by <paramref name="body"/>.</summary>
    public static ModelProto Model(long[] rowShape, Func<OnnxGraphBuilder, string, string> body, int opset = 21, int seed = 3)
    {
        using var b = new OnnxGraphBuilder("test", seed);
        string x = b.Input("x", rowShape);
        b.Output(body(b, x), null);
        return b.Build("test model", opset);
    }
}
