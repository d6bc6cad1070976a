using System;
using System.Linq;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>IDataView rows to arrays: the three label kinds, missing labels, and clear errors for unsupported columns.</summary>
[TestClass]
public sealed class DataViewTensorReaderTests
{
    private sealed class Row
    {
        [VectorType(3)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = "";

        public bool Flag { get; set; }

        public float Target { get; set; }

        public double Wide { get; set; }
    }

    private static IDataView Data(MLContext ml) => ml.Data.LoadFromEnumerable(new[]
    {
        new Row { Features = new float[] { 1, 2, 3 }, Label = "cat", Flag = true, Target = 0.5f },
        new Row { Features = new float[] { 4, 5, 6 }, Label = "dog", Flag = false, Target = float.NaN },
        new Row { Features = new float[] { 7, 8, 9 }, Label = "cat", Flag = true, Target = -1f },
    });

    [TestMethod]
    public void KeyLabelsBecomeZeroBasedClassIndices()
    {
        var ml = new MLContext(seed: 1);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(Data(ml)).Transform(Data(ml));
        var read = DataViewTensorReader.Read(keyed, "Features", "Label");
        CollectionAssert.AreEqual(new float[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, read.Features);
        Assert.AreEqual(3, read.FeatureWidth);
        Assert.AreEqual(LabelKind.Key, read.LabelKind);
        Assert.AreEqual(2, read.ClassCount);
        // Keys are assigned in order of appearance: cat = 1, dog = 2.
        CollectionAssert.AreEqual(new long[] { 0, 1, 0 }, read.ClassLabels);
    }

    [TestMethod]
    public void BooleanLabelsAreBinaryAndSingleLabelsAreRegressionTargetsWithMissingOnesSkipped()
    {
        var ml = new MLContext(seed: 1);
        var binary = DataViewTensorReader.Read(Data(ml), "Features", "Flag");
        Assert.AreEqual(LabelKind.Boolean, binary.LabelKind);
        CollectionAssert.AreEqual(new long[] { 1, 0, 1 }, binary.ClassLabels);
        var regression = DataViewTensorReader.Read(Data(ml), "Features", "Target");
        Assert.AreEqual(LabelKind.Single, regression.LabelKind);
        Assert.AreEqual(1L, regression.SkippedRows);
        CollectionAssert.AreEqual(new float[] { 0.5f, -1f }, regression.TargetLabels);
        CollectionAssert.AreEqual(new float[] { 1, 2, 3, 7, 8, 9 }, regression.Features);
    }

    [TestMethod]
    public void UnsupportedColumnsNameTheColumnTheTypeAndWhatIsAccepted()
    {
        var ml = new MLContext(seed: 1);
        var data = Data(ml);
        var e = Assert.ThrowsExactly<ArgumentException>(() => DataViewTensorReader.Read(data, "Features", "Wide"));
        StringAssert.Contains(e.Message, "'Wide' is Double");
        StringAssert.Contains(e.Message, "key (multiclass");
        e = Assert.ThrowsExactly<ArgumentException>(() => DataViewTensorReader.Read(data, "Target", "Flag"));
        StringAssert.Contains(e.Message, "Feature column 'Target' is Single");
        e = Assert.ThrowsExactly<ArgumentException>(() => DataViewTensorReader.Read(data, "Pixels", "Flag"));
        StringAssert.Contains(e.Message, "Column 'Pixels' (FeatureColumnName) is not in the data");
        StringAssert.Contains(e.Message, "Features, Label, Flag, Target, Wide");
    }
}
