using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// A seeded mutation fuzz of the load stage: bytes of small valid models (an MLP with batch normalisation and a small CNN)
/// are mutated (bytes overwritten, bits flipped, truncated, spliced) and loaded through <see cref="OnnxModelFile.Parse"/>
/// and <see cref="OnnxGraphModule"/> (whose shape check runs the graph once). Only the documented exception types may come
/// out: <see cref="InvalidDataException"/>, <see cref="NotSupportedException"/> and <see cref="ArgumentException"/>. Mutants
/// run in a child process (the test output folder's copy of this program: no extra libtorch copy), restarted after a
/// crash, so a native abort is reported as a failure of that mutant rather than ending the run.
/// </summary>
public static class OnnxLoadFuzz
{
    private static readonly Lazy<byte[][]> Seeds = new(() => new[]
    {
        OnnxModelFile.ToBytes(CbpArchitecture.Mlp(new[] { 8, 8 }).Build(new long[] { 6 }, 3, seed: 1)),
        OnnxModelFile.ToBytes(CbpArchitecture.SmallCnn(hidden: 8).Build(new long[] { 1, 28, 28 }, 4, seed: 1)),
    });

    /// <summary>
    /// Mutant <paramref name="index"/> of the run with <paramref name="seed"/>, the same bytes every time: odd mutants edit
    /// the model's structure (dimensions, element types, names, inputs, attributes, data lengths), even ones its bytes.
    /// </summary>
    public static byte[] Mutant(int seed, int index)
    {
        var random = new Random(unchecked((seed * 1_000_003) + index));
        return index % 2 == 1 ? StructureMutant(random, index) : ByteMutant(random, index);
    }

    private static readonly long[] Extremes = { -1, 0, 1, 2, 3, -7, 1L << 31, (1L << 32) - 1, 1L << 40, long.MaxValue, long.MinValue, 100_000 };

    private static byte[] StructureMutant(Random random, int index)
    {
        var model = OnnxModelFile.Parse(Seeds.Value[(index / 2) % Seeds.Value.Length]);
        var graph = model.Graph;
        int edits = 1 + random.Next(2);
        for (int e = 0; e < edits; e++)
        {
            var initializer = graph.Initializer[random.Next(graph.Initializer.Count)];
            var node = graph.Node[random.Next(graph.Node.Count)];
            switch (random.Next(9))
            {
                case 0:
                    if (initializer.Dims.Count > 0)
                    {
                        initializer.Dims[random.Next(initializer.Dims.Count)] = Extremes[random.Next(Extremes.Length)];
                    }
                    break;
                case 1:
                    initializer.DataType = random.Next(28);
                    break;
                case 2:
                    initializer.Name = graph.Initializer[random.Next(graph.Initializer.Count)].Name;
                    break;
                case 3:
                    var dims = graph.Input[0].Type?.TensorType?.Shape?.Dim;
                    if (dims is { Count: > 0 })
                    {
                        dims[random.Next(dims.Count)].DimValue = Extremes[random.Next(Extremes.Length)];
                    }
                    break;
                case 4:
                    if (node.Input.Count > 0)
                    {
                        var names = graph.Initializer.Select(t => t.Name).Concat(graph.Node.SelectMany(n => n.Output)).Append(graph.Input[0].Name).ToList();
                        node.Input[random.Next(node.Input.Count)] = names[random.Next(names.Count)];
                    }
                    break;
                case 5:
                    foreach (var attribute in node.Attribute)
                    {
                        attribute.I = Extremes[random.Next(Extremes.Length)];
                        for (int k = 0; k < attribute.Ints.Count; k++)
                        {
                            attribute.Ints[k] = Extremes[random.Next(Extremes.Length)];
                        }
                    }
                    break;
                case 6:
                    if (!initializer.RawData.IsEmpty)
                    {
                        initializer.RawData = Google.Protobuf.ByteString.CopyFrom(initializer.RawData.ToByteArray().Take(random.Next(initializer.RawData.Length)).ToArray());
                    }
                    break;
                case 7:
                    node.Output[0] = graph.Node[random.Next(graph.Node.Count)].Output[0];
                    break;
                default:
                    var ops = new[] { "Gemm", "MatMul", "Conv", "Relu", "Reshape", "Flatten", "BatchNormalization", "Add", "MaxPool", "Softmax", "Transpose", "Gather" };
                    node.OpType = ops[random.Next(ops.Length)];
                    break;
            }
        }
        return OnnxModelFile.ToBytes(model);
    }

    private static byte[] ByteMutant(Random random, int index)
    {
        var bytes = new List<byte>(Seeds.Value[(index / 2) % Seeds.Value.Length]);
        int edits = 1 + random.Next(3);
        for (int e = 0; e < edits && bytes.Count > 1; e++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 1:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 2:
                    bytes[at] = random.Next(2) == 0 ? (byte)0xFF : (byte)0x00;
                    break;
                case 3:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 4:
                    int length = Math.Min(bytes.Count - at, 1 + random.Next(16));
                    bytes.InsertRange(random.Next(bytes.Count), bytes.GetRange(at, length));
                    break;
                default:
                    // Varint-heavy protobuf: large numbers in a length or dimension field.
                    bytes[at] = (byte)(0x80 | random.Next(128));
                    break;
            }
        }
        return bytes.ToArray();
    }

    /// <summary>Loads one mutant; null when it loaded or failed with a documented exception, else what escaped.</summary>
    public static string? Try(byte[] bytes)
    {
        try
        {
            var model = OnnxModelFile.Parse(bytes, "the mutant");
            using var module = new OnnxGraphModule(model);
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or ArgumentException)
        {
            if (Environment.GetEnvironmentVariable("CBP_FUZZ_VERBOSE") == "1")
            {
                Console.Error.WriteLine($"allowed {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            }
            return null;
        }
        catch (Exception e)
        {
            return $"{e.GetType().FullName}: {e.Message.Split('\n')[0]}";
        }
    }

    /// <summary>The child: loads mutants start..start+count-1, announcing each before it loads so a crash is attributable.</summary>
    public static int ChildMain(string[] args)
    {
        int Arg(string name) => int.Parse(args[Array.IndexOf(args, name) + 1], CultureInfo.InvariantCulture);
        int seed = Arg("--seed"), start = Arg("--start"), count = Arg("--count");
        TorchSharp.torch.set_num_threads(1);
        for (int i = start; i < start + count; i++)
        {
            Console.Out.WriteLine(FormattableString.Invariant($"start {i}"));
            Console.Out.Flush();
            if (Try(Mutant(seed, i)) is { } escaped)
            {
                Console.Out.WriteLine(FormattableString.Invariant($"bad {i} {escaped}"));
            }
        }
        Console.Out.WriteLine("done");
        return 0;
    }

    /// <summary>How long one mutant (or the child's start, for the first) may take before the child is killed as hung.</summary>
    private static readonly TimeSpan MutantTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs <paramref name="mutants"/> mutants in children started as <c>dotnet <paramref name="program"/> --suite fuzz-child</c>,
    /// restarting after a crash; returns each failure ("mutant i: what escaped" or "mutant i: the process ended (exit code)").
    /// </summary>
    public static List<string> Run(int seed, int mutants, string program, TimeSpan? budget = null)
    {
        ArgumentNullException.ThrowIfNull(program);
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        int next = 0;
        while (next < mutants)
        {
            var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = Path.GetDirectoryName(program)!,
            };
            foreach (string a in new[] { program, "--suite", "fuzz-child", "--seed", seed.ToString(CultureInfo.InvariantCulture),
                "--start", next.ToString(CultureInfo.InvariantCulture), "--count", (mutants - next).ToString(CultureInfo.InvariantCulture) })
            {
                start.ArgumentList.Add(a);
            }
            using var process = Process.Start(start)!;
            var errors = process.StandardError.ReadToEndAsync();
            int current = -1;
            bool done = false;
            bool hung = false;
            while (true)
            {
                // A child that stops answering (a mutant that hangs) is killed and its mutant reported, like a crash.
                var pending = process.StandardOutput.ReadLineAsync();
                if (!pending.Wait(MutantTimeout))
                {
                    process.Kill(entireProcessTree: true);
                    hung = true;
                    break;
                }
                if (pending.Result is not { } line)
                {
                    break;
                }
                if (line.StartsWith("start ", StringComparison.Ordinal))
                {
                    current = int.Parse(line["start ".Length..], CultureInfo.InvariantCulture);
                }
                else if (line.StartsWith("bad ", StringComparison.Ordinal))
                {
                    int space = line.IndexOf(' ', 4);
                    failures.Add($"mutant {line[4..space]}: {line[(space + 1)..]}");
                }
                else if (line == "done")
                {
                    done = true;
                }
            }
            process.WaitForExit();
            if (done)
            {
                break;
            }
            string reason = errors.Result.Split('\n').FirstOrDefault(l => l.Trim().Length > 0)?.Trim() ?? "";
            failures.Add(hung
                ? $"mutant {current}: no answer within {MutantTimeout.TotalSeconds:N0} s (the child was killed)"
                : $"mutant {current}: the process ended (exit code {process.ExitCode}) {reason}");
            // A child that died before its first mutant still moves the fuzz on by one.
            next = current >= next ? current + 1 : next + 1;
            if (budget is { } limit && clock.Elapsed > limit)
            {
                failures.Add($"the fuzz stopped at mutant {next} of {mutants}: over its time budget of {limit.TotalSeconds:N0} s");
                break;
            }
        }
        return failures;
    }
}
