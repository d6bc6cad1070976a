using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>Measurements that need a fresh process (peak or resident memory): this benchmark program run again with other arguments.</summary>
internal static class ChildProcess
{
    /// <summary>Runs this program with <paramref name="args"/> and returns its last line starting "RESULT ", without the prefix.</summary>
    /// <param name="what">What the child measures, for the error message.</param>
    /// <param name="args">The child's arguments (a child --suite and its options).</param>
    /// <param name="launcher">A program that starts this one (mpiexec), or null to start it directly.</param>
    /// <param name="launcherArgs">The launcher's own arguments, before this program's.</param>
    /// <exception cref="InvalidOperationException">The child printed no RESULT line.</exception>
    public static string Result(string what, IEnumerable<string> args, string? launcher = null, IEnumerable<string>? launcherArgs = null)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, FileName = launcher ?? Environment.ProcessPath! };
        foreach (string a in launcherArgs ?? Array.Empty<string>())
        {
            start.ArgumentList.Add(a);
        }
        if (launcher is not null)
        {
            start.ArgumentList.Add(Environment.ProcessPath!);
        }
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(Assembly.GetExecutingAssembly().Location);
        }
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        string? line = output.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        return line?["RESULT ".Length..].Trim()
            ?? throw new InvalidOperationException($"The {what} child failed with exit code {process.ExitCode}:\n{output}\n{errors}");
    }

    /// <summary>A kB figure of this process's /proc/self/status (VmRSS: resident now; VmHWM: peak resident).</summary>
    /// <param name="key">The field, such as "VmRSS".</param>
    public static long StatusKib(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
            {
                return long.Parse(line[(key.Length + 1)..].Replace("kB", "", StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture);
            }
        }
        throw new InvalidOperationException($"/proc/self/status has no {key} line.");
    }
}
