using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>A level set and a storage per layer: the engine trains each tensor to its own levels and the export stores each its own way.</summary>
[TestClass]
public sealed class MixedPrecisionTests
{
    [TestMethod]
    public void EachLayerTrainsToItsOwnLevelsAndIsStoredItsOwnWay()
    {
        random.manual_seed(3);
        var model = CbpArchitecture.Mlp(new[] { 24, 24, 16 }).Build(new long[] { 8 }, 3, seed: 5);
        using var module = new OnnxGraphModule(model);
        var names = ConstrainedInitializerSelection.Select(model, keepFirstAndLastFloat: false);
        Assert.AreEqual(4, names.Count);
        var plan = new (WeightConstraint Constraint, WeightStorage Storage)[]
        {
            (WeightConstraint.Binary, WeightStorage.OneBit), (WeightConstraint.Ternary, WeightStorage.Int2),
            (WeightConstraint.TwoBitShift, WeightStorage.Int4), (WeightConstraint.OneBitShift, WeightStorage.Int8),
        };
        var constraints = names.Select((n, i) => (n, i)).ToDictionary(p => module.MemberName(p.n), p => plan[p.i].Constraint);
        using var g = new Generator(6);
        using var x = randn(new long[] { 96, 8 }, generator: g);
        using var y = x.sum(1).gt(0).to(int64).add(x[.., 0].gt(1).to(int64));
        using var data = new InMemoryBatchSource(x, y, 32, shuffle: true, seed: 2);
        using var trainer = new CbpTrainer(module, (o, l) => nn.functional.cross_entropy(o, l), constraints, new CbpTrainerOptions { Epochs = 2, LearningRate = 1e-3 });
        CollectionAssert.AreEquivalent(constraints.ToList(), trainer.Constraints.ToList());
        trainer.Fit(data);
        trainer.ProjectToLevels();
        // After the projection each tensor holds scale x its own levels: at most as many distinct values per scale as levels.
        for (int i = 0; i < names.Count; i++)
        {
            var values = module.InitializerValue(names[i]).data<float>().ToArray();
            float scale = trainer.Scales[module.MemberName(names[i])][0];
            var levels = plan[i].Constraint.Levels.Select(l => (float)(l * scale)).ToArray();
            Assert.IsTrue(values.All(v => levels.Any(l => Math.Abs(l - v) <= 1e-6 * Math.Max(1, Math.Abs(l)))), $"{names[i]} is on {plan[i].Constraint} levels");
        }

        var constrained = names.Select((n, i) => new QuantizedInitializer(n, plan[i].Constraint, trainer.Scales[module.MemberName(n)]) { Storage = plan[i].Storage }).ToList();
        var exported = QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Float32);
        Assert.AreEqual(25, OnnxModelFile.DefaultOpset(exported), "INT2 needs opset 25, the highest any layer needs");
        long[] shape = { 10, 8 };
        var input = OnnxTestHelpers.RandomInput(shape, 5);
        OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(module, input, shape), OrtRunner.Run(exported, input, shape), 1e-5, "mixed-precision export in ONNX Runtime");

        // Each layer's stored bytes follow its own width: (weights x bits / 8) of codes (one-bit: a Constant of packed bits).
        var expectedBits = new[] { 1, 2, 4, 8 };
        for (int i = 0; i < names.Count; i++)
        {
            long weights = model.Graph.Initializer.Single(t => t.Name == names[i]).Dims.Aggregate(1L, (a, b) => a * b);
            long codeBytes = plan[i].Storage == WeightStorage.OneBit
                ? exported.Graph.Node.Single(n => n.Output[0] == names[i] + "_cbp_bits").Attribute[0].T.RawData.Length
                : exported.Graph.Initializer.Single(t => t.Name == names[i] + "_cbp_codes").RawData.Length;
            Assert.AreEqual((weights * expectedBits[i] + 7) / 8, codeBytes, $"{names[i]} at {plan[i].Storage}");
        }
        var metadata = exported.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.AreEqual("Mixed", metadata["cbp.constraint"]);
        Assert.AreEqual("Mixed", metadata["cbp.weight_storage"]);
        StringAssert.Contains(metadata["cbp.layers"], $"{names[0]}=Binary:OneBit:-1,1;");
        StringAssert.Contains(metadata["cbp.layers"], $"{names[1]}=Ternary:Int2:-1,0,1;");
    }

    [TestMethod]
    public void APerTensorTrainerNeedsALevelSetForSomeTensor()
    {
        using var module = new OnnxGraphModule(CbpArchitecture.Mlp(new[] { 4 }).Build(new long[] { 3 }, 2, seed: 1));
        Assert.ThrowsExactly<ArgumentException>(() => new CbpTrainer(module, (o, l) => o.sum(), new Dictionary<string, WeightConstraint>(), null));
    }
}
