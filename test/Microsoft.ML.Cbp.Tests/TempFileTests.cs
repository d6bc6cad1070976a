using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>A fitted, saved, reloaded and disposed model leaves no file in the temporary folder.</summary>
[TestClass]
public sealed class TempFileTests
{
    private sealed class Row
    {
        [VectorType(4)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public bool Label { get; set; }
    }

    [TestMethod]
    public void DisposeRemovesEveryFileTheTransformerCreated()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 200).Select(i => new Row { Features = new[] { i % 7 / 7f, i % 3 / 3f, i % 5 / 5f, 0.5f }, Label = i % 7 > 3 }).ToList());
        var options = new CbpQuantizeOptions { Architecture = CbpArchitecture.Mlp(new[] { 8, 8 }), PretrainEpochs = 1, Epochs = 1 };
        string zip = Path.Combine(Path.GetTempPath(), $"cbp-tempfiles-{Guid.NewGuid():N}.zip");
        var before = Files();
        using (var model = ml.Transforms.CbpQuantize(options).Fit(data))
        {
            ml.Model.Save(model, data.Schema, zip);
        }
        using (var reloaded = (IDisposable)ml.Model.LoadWithBatchedScoring(zip, out _))
        {
        }
        File.Delete(zip);
        var left = Files().Except(before).ToList();
        CollectionAssert.AreEqual(new List<string>(), left, "files left in " + Path.GetTempPath());
    }

    private static HashSet<string> Files() => Directory.GetFiles(Path.GetTempPath()).ToHashSet();
}
