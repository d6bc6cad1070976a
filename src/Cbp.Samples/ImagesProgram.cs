using System;
using System.Diagnostics;
using System.Linq;
using System.Reflection;

namespace Cbp.Samples;

/// <summary>
/// Runs the image-folder sample, a program of its own (src/Cbp.Samples/Images): ML.NET's image transforms need
/// SkiaSharp 2.88 and this program's charts SkiaSharp 3, which one process cannot hold together.
/// </summary>
internal static class ImagesProgram
{
    /// <summary>Runs <c>dotnet run --project src/Cbp.Samples/Images</c> with the same configuration and arguments; returns its exit code.</summary>
    /// <param name="args">The arguments after <c>images</c>.</param>
    public static int Run(string[] args)
    {
        var assembly = typeof(ImagesProgram).Assembly;
        string project = assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ImagesSampleProject").Value!;
        string configuration = assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet") { UseShellExecute = false };
        foreach (string arg in new[] { "run", "--project", project, "-c", configuration, "--" }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new SampleException($"Could not start the images sample ({project}).");
        process.WaitForExit();
        return process.ExitCode;
    }
}
