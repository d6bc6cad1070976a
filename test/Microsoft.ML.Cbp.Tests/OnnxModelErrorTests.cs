using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static Microsoft.ML.Cbp.Onnx.OnnxAttributes;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Bad models fail when loaded, with errors that name the node, the op and what is supported.</summary>
[TestClass]
public sealed class OnnxModelErrorTests
{
    [TestMethod]
    public void TruncatedOrForeignBytesAreRejected()
    {
        var bytes = OnnxModelFile.ToBytes(CbpArchitecture.Mlp(new[] { 8 }).Build(new long[] { 4 }, 2));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxModelFile.Parse(bytes.Take(bytes.Length / 2).ToArray(), "half.onnx"));
        StringAssert.Contains(e.Message, "half.onnx");
        Assert.ThrowsExactly<InvalidDataException>(() => OnnxModelFile.Parse(System.Text.Encoding.UTF8.GetBytes("PK\u0003\u0004 this is a zip, not ONNX")));
        Assert.ThrowsExactly<FileNotFoundException>(() => OnnxModelFile.Load("no/such/model.onnx"));
    }

    [TestMethod]
    public void UnknownOpNamesTheNodeAndListsSupportedOps()
    {
        var model = OnnxTestHelpers.Model(new long[] { 4 }, (b, x) => b.Node("Einsum", new[] { x }));
        var e = Assert.ThrowsExactly<NotSupportedException>(() => new OnnxGraphModule(model));
        StringAssert.Contains(e.Message, "'einsum1'");
        StringAssert.Contains(e.Message, "op Einsum");
        StringAssert.Contains(e.Message, "BatchNormalization, Cast, Clip, Concat");
    }

    [TestMethod]
    public void ACastToAnUnsupportedTypeOrWithoutItsTargetNamesTheNode()
    {
        foreach (var attributes in new[] { new[] { Create("to", 8L) }, Array.Empty<global::Onnx.AttributeProto>() })
        {
            var model = OnnxTestHelpers.Model(new long[] { 4 }, (b, x) => b.Node("Cast", new[] { x }, attributes));
            var e = Assert.ThrowsExactly<NotSupportedException>(() => new OnnxGraphModule(model));
            StringAssert.Contains(e.Message, "node 'cast1' (op Cast)");
            StringAssert.Contains(e.Message, $"casting to ONNX type {(attributes.Length == 0 ? 0 : 8)} is not supported");
        }
    }

    [TestMethod]
    public void EveryUnsupportedOpIsNamedAtOnceWithItsNodeCount()
    {
        var model = OnnxTestHelpers.Model(new long[] { 4 }, (b, x) => b.Node("Relu", new[] { b.Node("Einsum", new[] { b.Node("Einsum", new[] { b.Node("Trilu", new[] { x }) }) }) }));
        var custom = model.Graph.Node.First(n => n.OpType == "Relu");
        custom.Domain = "com.microsoft";
        var e = Assert.ThrowsExactly<NotSupportedException>(() => new OnnxGraphModule(model));
        StringAssert.Contains(e.Message, "The model uses 3 ops this library cannot run");
        StringAssert.Contains(e.Message, "Trilu (1 node, first node 'trilu1' (op Trilu))");
        StringAssert.Contains(e.Message, "Einsum (2 nodes, first node 'einsum1' (op Einsum))");
        StringAssert.Contains(e.Message, "com.microsoft.Relu (1 node");
        StringAssert.Contains(e.Message, "domain 'com.microsoft'");
    }

    [TestMethod]
    public void MissingInputNamesTheNodeAndTheTensor()
    {
        var model = OnnxTestHelpers.Model(new long[] { 4 }, (b, x) => b.Node("Add", new[] { x, "nowhere" }));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxGraphModule(model));
        StringAssert.Contains(e.Message, "'add1'");
        StringAssert.Contains(e.Message, "'nowhere'");
    }

    [TestMethod]
    public void InconsistentShapeFailsAtLoadNamingTheNode()
    {
        // A dense layer for 5 features on a 7-feature input.
        var model = OnnxTestHelpers.Model(new long[] { 7 }, (b, x) => b.Dense(x, 5, 3));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxGraphModule(model));
        StringAssert.Contains(e.Message, "'gemm1'");
        StringAssert.Contains(e.Message, "inner dimensions differ");
    }

    [TestMethod]
    public void RoundTripKeepsEveryFieldIncludingUnknownOnes()
    {
        var bytes = OnnxModelFile.ToBytes(CbpArchitecture.SmallCnn().Build(new long[] { 1, 28, 28 }, 10));
        // Field 1000 (varint 42) is not in any ONNX version: tag (1000 << 3) = 8000 = 0xC0 0x3E, value 0x2A.
        var withUnknown = bytes.Concat(new byte[] { 0xC0, 0x3E, 0x2A }).ToArray();
        var model = OnnxModelFile.Parse(withUnknown);
        CollectionAssert.AreEqual(withUnknown, OnnxModelFile.ToBytes(model));
        string path = Path.Combine(Path.GetTempPath(), $"cbp-roundtrip-{Guid.NewGuid():N}.onnx");
        try
        {
            OnnxModelFile.Save(model, path);
            CollectionAssert.AreEqual(withUnknown, File.ReadAllBytes(path));
            Assert.IsFalse(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.cbp-tmp").Any(f => f.Contains(Path.GetFileName(path))), "no temporary file left");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
