using System;
using System.Linq;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>IDataView rows to cached tensors: the three label kinds, missing labels, and clear errors for unsupported columns.</summary>
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
        using var read = DataViewTensorReader.Read(keyed, "Features", "Label", new long[] { 3 }, expectedRows: 3);
        CollectionAssert.AreEqual(new float[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, read.Features.data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { 3, 3 }, read.Features.shape);
        var (width, kind, classes) = InputColumns.Inspect(keyed.Schema, "Features", "Label");
        Assert.AreEqual(3, width);
        Assert.AreEqual(LabelKind.Key, kind);
        Assert.AreEqual(2, classes);
        // Keys are assigned in order of appearance: cat = 1, dog = 2.
        CollectionAssert.AreEqual(new long[] { 0, 1, 0 }, read.Labels.data<long>().ToArray());
    }

    [TestMethod]
    public void BooleanLabelsAreBinaryAndSingleLabelsAreRegressionTargetsWithMissingOnesSkipped()
    {
        var ml = new MLContext(seed: 1);
        using var binary = DataViewTensorReader.Read(Data(ml), "Features", "Flag", new long[] { 3 }, expectedRows: 3);
        Assert.AreEqual(LabelKind.Boolean, InputColumns.Inspect(Data(ml).Schema, "Features", "Flag").LabelKind);
        CollectionAssert.AreEqual(new long[] { 1, 0, 1 }, binary.Labels.data<long>().ToArray());
        // The view reports 3 rows; the one with a missing (NaN) target is skipped and the cache keeps the other two.
        using var regression = DataViewTensorReader.Read(Data(ml), "Features", "Target", new long[] { 1, 3 }, expectedRows: 3);
        Assert.AreEqual(LabelKind.Single, InputColumns.Inspect(Data(ml).Schema, "Features", "Target").LabelKind);
        Assert.AreEqual(1L, regression.SkippedRows);
        Assert.AreEqual(2L, regression.Rows);
        CollectionAssert.AreEqual(new float[] { 0.5f, -1f }, regression.Labels.data<float>().ToArray());
        CollectionAssert.AreEqual(new float[] { 1, 2, 3, 7, 8, 9 }, regression.Features.data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { 2, 1, 3 }, regression.Features.shape, "rows in the network's row shape");
        var count = DataViewTensorReader.CountRows(Data(ml), "Features", "Target");
        Assert.AreEqual((2L, 1L, 3L, 2L), (count.Labelled, count.Skipped, count.ViewRows, count.ViewLabelled), "the cheap count agrees");
        // FNV-1a over the targets' bits in order, -1 for the missing one.
        ulong hash = 14695981039346656037UL;
        foreach (long value in new long[] { BitConverter.SingleToInt32Bits(0.5f), -1, BitConverter.SingleToInt32Bits(-1f) })
        {
            hash = (hash ^ unchecked((ulong)value)) * 1099511628211UL;
        }
        Assert.AreEqual(hash, count.LabelHash);
    }

    [TestMethod]
    public void UnsupportedColumnsNameTheColumnTheTypeAndWhatIsAccepted()
    {
        var ml = new MLContext(seed: 1);
        var data = Data(ml);
        var e = Assert.ThrowsExactly<ArgumentException>(() => DataViewTensorReader.Read(data, "Features", "Wide", new long[] { 3 }, 3));
        StringAssert.Contains(e.Message, "'Wide' is Double");
        StringAssert.Contains(e.Message, "key (multiclass");
        e = Assert.ThrowsExactly<ArgumentException>(() => DataViewTensorReader.Read(data, "Target", "Flag", new long[] { 3 }, 3));
        StringAssert.Contains(e.Message, "Feature column 'Target' is Single");
        e = Assert.ThrowsExactly<ArgumentException>(() => DataViewTensorReader.Read(data, "Pixels", "Flag", new long[] { 3 }, 3));
        StringAssert.Contains(e.Message, "Column 'Pixels' (FeatureColumnName) is not in the data");
        StringAssert.Contains(e.Message, "Features, Label, Flag, Target, Wide");
    }
}
