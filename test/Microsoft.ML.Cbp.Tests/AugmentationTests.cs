using System;
using System.Linq;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Training-batch augmentation: flips and crops checked pixel by pixel, reproducibility, and misuse rejected.</summary>
[TestClass]
public sealed class AugmentationTests
{
    /// <summary>Four single-channel 3x3 images; image r holds 10r + (3y + x) at pixel (y, x).</summary>
    private static Tensor Images() => tensor(Enumerable.Range(0, 4 * 9).Select(i => (float)((i / 9 * 10) + (i % 9))).ToArray(), new long[] { 4, 1, 3, 3 });

    private static float[] Pixels(Tensor t, int row) => t[row].flatten().data<float>().ToArray();

    [TestMethod]
    public void AFlipMirrorsRowsLeftToRightAsOftenAsAsked()
    {
        using var images = Images();
        using (var always = BatchAugmentation.HorizontalFlip(images, 1.0, new Generator(1)))
        {
            // Image 0 mirrored by hand: rows (0 1 2) (3 4 5) (6 7 8) become (2 1 0) (5 4 3) (8 7 6).
            CollectionAssert.AreEqual(new float[] { 2, 1, 0, 5, 4, 3, 8, 7, 6 }, Pixels(always, 0));
        }
        using (var never = BatchAugmentation.HorizontalFlip(images, 0.0, new Generator(1)))
        {
            CollectionAssert.AreEqual(images.data<float>().ToArray(), never.data<float>().ToArray());
        }
        using var g1 = new Generator(42);
        using var g2 = new Generator(42);
        using var some = BatchAugmentation.HorizontalFlip(images, 0.5, g1);
        using var again = BatchAugmentation.HorizontalFlip(images, 0.5, g2);
        CollectionAssert.AreEqual(some.data<float>().ToArray(), again.data<float>().ToArray(), "the same generator seed, the same flips");
        for (int r = 0; r < 4; r++)
        {
            float b = 10 * r;
            var original = new[] { b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8 };
            var mirrored = new[] { b + 2, b + 1, b, b + 5, b + 4, b + 3, b + 8, b + 7, b + 6 };
            var row = Pixels(some, r);
            Assert.IsTrue(row.SequenceEqual(original) || row.SequenceEqual(mirrored), $"image {r} is itself or its mirror");
        }
    }

    [TestMethod]
    public void ACropIsAWindowOfTheZeroPaddedImage()
    {
        using var images = Images();
        using var cropped = BatchAugmentation.RandomCrop(images, 1, new Generator(3));
        CollectionAssert.AreEqual(new long[] { 4, 1, 3, 3 }, cropped.shape);
        bool moved = false;
        for (int r = 0; r < 4; r++)
        {
            // The 5x5 zero-padded image, by hand, and every 3x3 window of it.
            var padded = new float[5, 5];
            for (int y = 0; y < 3; y++)
            {
                for (int x = 0; x < 3; x++)
                {
                    padded[y + 1, x + 1] = (10 * r) + (3 * y) + x;
                }
            }
            var windows = Enumerable.Range(0, 3).SelectMany(dy => Enumerable.Range(0, 3).Select(dx =>
                (dy, dx, Values: Enumerable.Range(0, 9).Select(i => padded[dy + (i / 3), dx + (i % 3)]).ToArray()))).ToList();
            var row = Pixels(cropped, r);
            var match = windows.Where(w => w.Values.SequenceEqual(row)).ToList();
            Assert.AreEqual(1, match.Count, $"image {r} is exactly one window of its padded self");
            moved |= match[0].dy != 1 || match[0].dx != 1;
        }
        Assert.IsTrue(moved, "some image was shifted");
    }

    [TestMethod]
    public void AugmentedTrainingIsReproducibleAndMisuseIsRejected()
    {
        var ml = new MLContext(seed: 1);
        var (train, _) = CbpQuantizeFashionMnistTests.Data(ml);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(ml.Data.TakeRows(train, 256));
        CbpQuantizeOptions Options() => new()
        {
            InputShape = new[] { 1, 28, 28 },
            Architecture = CbpArchitecture.SmallCnn(hidden: 16),
            PretrainEpochs = 1,
            Epochs = 1,
            Seed = 3,
            TrainingDevice = CbpTrainingDevice.Cpu,
            Augmentation = CbpAugmentation.Compose(CbpAugmentation.RandomCrop(2), CbpAugmentation.RandomHorizontalFlip()),
        };
        using var first = ml.Transforms.CbpQuantize(Options()).Fit(keyed);
        using var second = ml.Transforms.CbpQuantize(Options()).Fit(keyed);
        CollectionAssert.AreEqual(first.GetOnnxBytes(), second.GetOnnxBytes(), "augmented runs are reproducible for a seed");
        var plain = Options();
        plain.Augmentation = null;
        using var unaugmented = ml.Transforms.CbpQuantize(plain).Fit(keyed);
        CollectionAssert.AreNotEqual(first.GetOnnxBytes(), unaugmented.GetOnnxBytes(), "the augmentation changed what was trained");

        var flat = Options();
        flat.InputShape = null;
        flat.Architecture = CbpArchitecture.Mlp(new[] { 16 });
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(flat).Fit(keyed));
        StringAssert.Contains(e.Message, "InputShape");
        var reshaping = Options();
        reshaping.Augmentation = CbpAugmentation.Custom("halve", (batch, _) => batch.narrow(2, 0, 14));
        var wrong = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.CbpQuantize(reshaping).Fit(keyed));
        StringAssert.Contains(wrong.Message, "must keep the shape");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CbpAugmentation.RandomHorizontalFlip(1.5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CbpAugmentation.RandomCrop(0));
    }
}
