using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Benchmarks;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Bad models never reach native code in a form it cannot take: a seeded mutation fuzz of the load stage (the suite's
/// time-boxed form; `bash build/bench.sh --suite fuzz` runs 12,600), and one regression test per kind of finding.
/// </summary>
[TestClass]
public sealed class LoadFuzzTests
{
    [TestMethod]
    public void TwoThousandMutantsLetOnlyTheDocumentedExceptionsOut()
    {
        // The child is the benchmark program as copied beside these tests (no extra libtorch copy); a crash is a failure
        // of its mutant, and the child is restarted after it.
        string program = Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.Cbp.Benchmarks.dll");
        var failures = OnnxLoadFuzz.Run(seed: 7, mutants: 2000, program, budget: TimeSpan.FromSeconds(90));
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures));
    }

    private static global::Onnx.ModelProto Mlp() => CbpArchitecture.Mlp(new[] { 8, 8 }).Build(new long[] { 6 }, 3, seed: 1);

    [TestMethod]
    public void DuplicateNamesNegativeOrHugeDimensionsAndIntegerWeightsAreRefusedAtLoad()
    {
        var duplicate = Mlp();
        duplicate.Graph.Initializer[1].Name = duplicate.Graph.Initializer[0].Name;
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxGraphModule(duplicate));
        StringAssert.Contains(e.Message, $"2 initializers named '{duplicate.Graph.Initializer[0].Name}'");

        var twice = Mlp();
        twice.Graph.Node[2].Output[0] = twice.Graph.Node[1].Output[0];
        e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxGraphModule(twice));
        StringAssert.Contains(e.Message, "every tensor must have one producer");

        var negative = Mlp();
        negative.Graph.Initializer[0].Dims[0] = -3;
        e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxGraphModule(negative));
        StringAssert.Contains(e.Message, "negative dimension");

        var huge = Mlp();
        huge.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue = 1L << 31;
        e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxGraphModule(huge));
        StringAssert.Contains(e.Message, $"more than the {1 << 24:N0} this library loads");

        // The cap is per row: a fixed batch of 32 rows of 2^20 values (2^25 in all) loads, its shape checked on one row.
        var batched = CbpArchitecture.Mlp(new[] { 2 }, batchNorm: false).Build(new long[] { 1L << 20 }, 3, seed: 1);
        batched.Graph.Input[0].Type.TensorType.Shape.Dim[0] = new global::Onnx.TensorShapeProto.Types.Dimension { DimValue = 32 };
        using (var module = new OnnxGraphModule(batched))
        {
            CollectionAssert.AreEqual(new[] { 1L << 20 }, module.InputRowShape);
        }

        var integer = Mlp();
        var weight = integer.Graph.Initializer.First(t => t.Dims.Count == 2);
        var codes = new sbyte[weight.Dims.Aggregate(1L, (a, b) => a * b)];
        integer.Graph.Initializer.Remove(weight);
        integer.Graph.Initializer.Add(OnnxTensorConversion.FromSignedCodes(weight.Name, weight.Dims.ToArray(), codes, 8));
        e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxGraphModule(integer));
        StringAssert.Contains(e.Message, $"reads '{weight.Name}' of type Int8");
    }

    [TestMethod]
    public void AnOpsetOnnxRuntimeCannotScoreIsRefusedAtLoad()
    {
        var future = Mlp();
        future.OpsetImport.Single(o => o.Domain is "" or "ai.onnx").Version = 99;
        var e = Assert.ThrowsExactly<NotSupportedException>(() => new OnnxGraphModule(future));
        StringAssert.Contains(e.Message, "opset 99; opsets 7 to 25");
    }

    [TestMethod]
    public void AMatMulWhoseShapesDoNotMatchIsAnErrorNotAnAbort()
    {
        // TorchSharp 0.107 lets matmul's shape error end the process; the interpreter checks numpy's rules first.
        var model = OnnxTestHelpers.Model(new long[] { 6 }, (b, x) => b.Node("MatMul", new[] { x, b.Initializer("w", TorchSharp.torch.ones(5, 4)) }));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxGraphModule(model));
        StringAssert.Contains(e.Message, "inner dimensions differ (6 and 5)");
    }
}
