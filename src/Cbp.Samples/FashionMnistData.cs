using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML.Data;

namespace Cbp.Samples;

/// <summary>One Fashion-MNIST image: its class name and its 28x28 pixels scaled to [0, 1], row by row.</summary>
public sealed class FashionMnistImage
{
    /// <summary>Pixels per image.</summary>
    public const int PixelCount = 28 * 28;

    /// <summary>The class name, e.g. "Sneaker".</summary>
    public string Label { get; set; } = "";

    /// <summary>784 pixels in [0, 1].</summary>
    [VectorType(PixelCount)]
    public float[] Features { get; set; } = Array.Empty<float>();
}

/// <summary>Reads Fashion-MNIST from its IDX files (gzip-compressed, as the dataset and the Debian package ship them).</summary>
public static class FashionMnistData
{
    /// <summary>Class names by label 0-9.</summary>
    public static readonly string[] ClassNames =
        { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

    /// <summary>Where the Debian package dataset-fashion-mnist puts the full data set.</summary>
    public const string FullDataDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The subset that ships with the repository (copied beside the program by the build).</summary>
    public static string SubsetDirectory => Path.Combine(AppContext.BaseDirectory, "Data", "fashion-mnist-subset");

    /// <summary>Reads "train" or "t10k" images from <paramref name="directory"/>, at most <paramref name="limit"/> of them.</summary>
    /// <param name="directory">Folder with the four IDX .gz files.</param>
    /// <param name="split">"train" or "t10k".</param>
    /// <param name="limit">Read at most this many images (the first ones).</param>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">A file is not an IDX file of the expected kind.</exception>
    public static List<FashionMnistImage> Read(string directory, string split, int limit = int.MaxValue)
    {
        byte[] images = ReadGzip(Path.Combine(directory, $"{split}-images-idx3-ubyte.gz"));
        byte[] labels = ReadGzip(Path.Combine(directory, $"{split}-labels-idx1-ubyte.gz"));
        if (BigEndian(images, 0) != 2051 || BigEndian(labels, 0) != 2049 || BigEndian(images, 8) != 28 || BigEndian(images, 12) != 28)
        {
            throw new InvalidDataException($"{directory}/{split}-*-ubyte.gz are not Fashion-MNIST IDX files (wrong magic numbers or image size).");
        }
        int count = Math.Min(limit, Math.Min(BigEndian(images, 4), BigEndian(labels, 4)));
        var result = new List<FashionMnistImage>(count);
        for (int i = 0; i < count; i++)
        {
            var pixels = new float[FashionMnistImage.PixelCount];
            for (int p = 0; p < pixels.Length; p++)
            {
                pixels[p] = images[16 + (i * FashionMnistImage.PixelCount) + p] / 255f;
            }
            result.Add(new FashionMnistImage { Label = ClassNames[labels[8 + i]], Features = pixels });
        }
        return result;
    }

    private static byte[] ReadGzip(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} not found.", path);
        }
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var memory = new MemoryStream();
        gzip.CopyTo(memory);
        return memory.ToArray();
    }

    private static int BigEndian(byte[] data, int offset) =>
        (data[offset] << 24) | (data[offset + 1] << 16) | (data[offset + 2] << 8) | data[offset + 3];
}
