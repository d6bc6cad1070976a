using System;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;
using static Microsoft.ML.Cbp.Onnx.OnnxAttributes;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Already-quantized models: weights stored as int8, uint8 or int4 codes behind DequantizeLinear are dequantized once
/// into float latent weights, which then train and are constrained like any other.
/// </summary>
[TestClass]
public sealed class DequantizedWeightTests
{
    private static readonly sbyte[] Int8Codes = Enumerable.Range(0, 16 * 6).Select(i => (sbyte)((i * 37 % 255) - 127)).ToArray();
    private static readonly sbyte[] Int8ZeroPoints = { 3, -2, 0, 1, 0, 0, -5, 2, 1, 0, 0, 4, -1, 0, 2, 0 };
    private static readonly float[] Int8Scales = Enumerable.Range(0, 16).Select(i => 0.002f + 0.0005f * i).ToArray();
    private static readonly byte[] UInt8Codes = Enumerable.Range(0, 16 * 16).Select(i => (byte)(i * 53 % 256)).ToArray();
    private static readonly sbyte[] Int4Codes = Enumerable.Range(0, 3 * 16).Select(i => (sbyte)(i * 5 % 16 - 8)).ToArray();

    /// <summary>
    /// x [N, 6] -> Gemm(DQ(int8 [16, 6], per-row scales and zero points), transB) -> Relu -> MatMul(DQ(uint8 [16, 16], zero point 128))
    /// -> Relu -> Gemm(DQ(int4 [3, 16]), transB): ONNX Runtime's weight-only QDQ layout, at opset 21 (INT4).
    /// </summary>
    private static ModelProto Quantized()
    {
        var model = OnnxTestHelpers.Model(new long[] { 6 }, (b, x) =>
        {
            string w1 = b.Node("DequantizeLinear", new[] { "w1_codes", "w1_scale", "w1_zero" }, Create("axis", 0L));
            string h = b.Node("Relu", new[] { b.Node("Gemm", new[] { x, w1 }, Create("transB", 1L)) });
            string w2 = b.Node("DequantizeLinear", new[] { "w2_codes", "w2_scale", "w2_zero" });
            h = b.Node("Relu", new[] { b.Node("MatMul", new[] { h, w2 }) });
            string w3 = b.Node("DequantizeLinear", new[] { "w3_codes", "w3_scale" });
            return b.Node("Gemm", new[] { h, w3 }, Create("transB", 1L));
        });
        var g = model.Graph;
        g.Initializer.Add(OnnxTensorConversion.Create("w1_codes", OnnxTensorConversion.DataTypes.Int8, new long[] { 16, 6 }, Int8Codes.Select(v => (byte)v).ToArray()));
        g.Initializer.Add(OnnxTensorConversion.FromFloat("w1_scale", new long[] { 16 }, Int8Scales));
        g.Initializer.Add(OnnxTensorConversion.Create("w1_zero", OnnxTensorConversion.DataTypes.Int8, new long[] { 16 }, Int8ZeroPoints.Select(v => (byte)v).ToArray()));
        g.Initializer.Add(OnnxTensorConversion.Create("w2_codes", OnnxTensorConversion.DataTypes.UInt8, new long[] { 16, 16 }, UInt8Codes));
        g.Initializer.Add(OnnxTensorConversion.FromFloat("w2_scale", Array.Empty<long>(), new[] { 0.004f }));
        g.Initializer.Add(OnnxTensorConversion.Create("w2_zero", OnnxTensorConversion.DataTypes.UInt8, Array.Empty<long>(), new byte[] { 128 }));
        g.Initializer.Add(OnnxTensorConversion.FromSignedCodes("w3_codes", new long[] { 3, 16 }, Int4Codes, 4));
        g.Initializer.Add(OnnxTensorConversion.FromFloat("w3_scale", Array.Empty<long>(), new[] { 0.05f }));
        return model;
    }

    private static float[] Values(ModelProto model, string name)
    {
        using var t = TorchTensorConversion.ToTorch(model.Graph.Initializer.Single(i => i.Name == name));
        return t.data<float>().ToArray();
    }

    [TestMethod]
    public void FoldingGivesTheDequantizedValuesOnceAndTheSameOutputs()
    {
        var model = Quantized();
        var folded = DequantizedWeights.Fold(model, out var made);
        Assert.AreEqual(3, made.Count);
        Assert.IsFalse(folded.Graph.Node.Any(n => n.OpType == "DequantizeLinear"), "no DequantizeLinear is left");
        Assert.IsFalse(folded.Graph.Initializer.Any(t => t.Name.EndsWith("_codes", StringComparison.Ordinal) || t.Name.EndsWith("_zero", StringComparison.Ordinal)),
            "codes and zero points no node reads are gone");
        // By hand: (code - zero point) * scale, per row for the per-axis int8 layer.
        var w1 = Values(folded, made[0]);
        for (int i = 0; i < Int8Codes.Length; i++)
        {
            Assert.AreEqual((Int8Codes[i] - Int8ZeroPoints[i / 6]) * Int8Scales[i / 6], w1[i], 1e-7, $"w1[{i}]");
        }
        var w2 = Values(folded, made[1]);
        Assert.AreEqual((UInt8Codes[17] - 128) * 0.004f, w2[17], 1e-7);
        var w3 = Values(folded, made[2]);
        CollectionAssert.AreEqual(Int4Codes.Select(c => c * 0.05f).ToArray(), w3);
        // Second path: ONNX Runtime runs the quantized original and the folded model alike.
        long[] shape = { 5, 6 };
        var input = OnnxTestHelpers.RandomInput(shape, 4);
        OnnxTestHelpers.AssertClose(OrtRunner.Run(folded, input, shape), OrtRunner.Run(model, input, shape), 1e-6, "folded versus DequantizeLinear");
        Assert.AreSame(folded, DequantizedWeights.Fold(folded, out var none), "a model without DequantizeLinear of initializers comes back as it is");
        Assert.AreEqual(0, none.Count);
    }

    [TestMethod]
    public void AQuantizedPretrainedModelTrainsItsDequantizedWeightsAndExportsTheirCodes()
    {
        var ml = new MLContext(seed: 1);
        var rows = ThreeClassRows.Make(300);
        using var transformer = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            PretrainedModelBytes = OnnxModelFile.ToBytes(Quantized()),
            Constraint = WeightConstraint.Ternary,
            PretrainEpochs = 2,
            // Random weights stand in for a pretrained model: on this one-hot data they may separate the classes in
            // another order, which the label-order guard would rightly refuse; this test is about the weights.
            CheckLabelOrder = false,
            Epochs = 2,
            BatchSize = 32,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }).Fit(ml.Data.LoadFromEnumerable(rows));
        var layers = transformer.TrainingReport!.WeightLayers;
        CollectionAssert.AreEqual(new long[] { 96, 256, 48 }, layers.Select(l => l.Weights).ToArray(), "the three dequantized weights are the weight layers");
        CollectionAssert.AreEqual(new[] { CbpWeightLayerState.FloatFirstOrLast, CbpWeightLayerState.Constrained, CbpWeightLayerState.FloatFirstOrLast },
            layers.Select(l => l.State).ToArray());
        Assert.AreEqual(2, transformer.TrainingReport.Pretraining.Count, "float pre-training moved the latent weights");

        // The constrained (former uint8) layer is stored as ternary codes decoded under its own name; no uint8 copy is left.
        var compact = OnnxModelFile.Parse(transformer.GetOnnxBytes());
        var codes = CompactCodes.Int4(compact, layers[1].Name);
        Assert.AreEqual(256, codes.Length);
        Assert.IsTrue(codes.All(v => v is -1 or 0 or 1));
        Assert.IsFalse(compact.Graph.Initializer.Any(t => t.Name == "w2_codes"));
    }
}
