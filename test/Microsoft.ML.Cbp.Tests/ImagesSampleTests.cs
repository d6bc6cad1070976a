using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Tests.Architecture;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// The image-folder sample, run as the program it is (it cannot share a process with the other samples: ML.NET's image
/// transforms need SkiaSharp 2.88, the charts SkiaSharp 3): real PNG files through LoadImages, ResizeImages, ExtractPixels
/// and CbpQuantize; unreadable files reported and left out; a folder with one class refused.
/// </summary>
[TestClass]
public sealed class ImagesSampleTests
{
    private static string Configuration => AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";

    private static string ProjectFolder => Path.Combine(ArchitectureTests.RepositoryRoot(), "src", "Cbp.Samples", "Images");

    /// <summary>
    /// Builds the images program (nothing references it, so a test run of the solution does not build it; the build is
    /// incremental, so the program tested is always the one the sources make).
    /// </summary>
    [ClassInitialize]
    public static void BuildTheProgram(TestContext context)
    {
        var (code, output) = Run("build", Path.Combine(ProjectFolder, "Cbp.Samples.Images.csproj"), "-c", Configuration, "--nologo", "-v", "q");
        Assert.AreEqual(0, code, output);
    }

    private static (int ExitCode, string Output) RunImages(params string[] args) =>
        Run(new[] { Path.Combine(ProjectFolder, "bin", Configuration, "net10.0", "Cbp.Samples.Images.dll") }.Concat(args).Append("--threads").Append("1").ToArray());

    private static (int ExitCode, string Output) Run(params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }

    private static string TempFolder() => Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"cbp-images-{Guid.NewGuid():N}")).FullName;

    [TestMethod]
    public void TheShippedImagesTrainEvaluateSaveReloadAndClassifyAFile()
    {
        string output = TempFolder();
        try
        {
            var (code, text) = RunImages("--quick", "--output", output);
            Assert.AreEqual(0, code, text);
            StringAssert.Contains(text, "400 images in 10 classes (Ankle-boot, Bag, Coat, Dress, Pullover, Sandal, Shirt, Sneaker, T-shirt-top, Trouser)");
            StringAssert.Contains(text, "Held-out accuracy");
            StringAssert.Contains(text, "Reloaded and classified");
            Assert.IsTrue(File.Exists(Path.Combine(output, "ImageFolderModel.zip")));
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [TestMethod]
    public void UnreadableFilesAreReportedAndLeftOutAndOneClassIsRefused()
    {
        string shipped = Path.Combine(ArchitectureTests.RepositoryRoot(), "src", "Cbp.Samples", "Data", "fashion-mnist-images");
        string folder = TempFolder();
        try
        {
            foreach (string label in new[] { "Bag", "Trouser" })
            {
                Directory.CreateDirectory(Path.Combine(folder, label));
                foreach (string file in Directory.GetFiles(Path.Combine(shipped, label)).Order().Take(20))
                {
                    File.Copy(file, Path.Combine(folder, label, Path.GetFileName(file)));
                }
            }
            File.WriteAllText(Path.Combine(folder, "Bag", "broken.png"), "not a picture");
            File.WriteAllBytes(Path.Combine(folder, "Trouser", "empty.jpg"), Array.Empty<byte>());
            var (code, text) = RunImages("--quick", "--folder", folder, "--output", Path.Combine(folder, "out"));
            Assert.AreEqual(0, code, text);
            StringAssert.Contains(text, $"Skipped {Path.Combine("Bag", "broken.png")}");
            StringAssert.Contains(text, $"Skipped {Path.Combine("Trouser", "empty.jpg")}");
            StringAssert.Contains(text, "40 images in 2 classes (Bag, Trouser)");
            StringAssert.Contains(text, "2 unreadable files skipped");

            Directory.Delete(Path.Combine(folder, "Trouser"), recursive: true);
            (code, text) = RunImages("--quick", "--folder", folder);
            Assert.AreEqual(2, code, text);
            StringAssert.Contains(text, "needs at least two");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
