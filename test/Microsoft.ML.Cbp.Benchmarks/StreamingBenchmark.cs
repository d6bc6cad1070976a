using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Cbp.Samples;
using Microsoft.ML.Data;
using TorchSharp;

namespace Microsoft.ML.Cbp.Benchmarks;

/// <summary>
/// Training on data of any size: the peak working set of a Fit as the row count grows (each Fit in its own process, so
/// one measurement's memory cannot hide another's), a run past the old 2^31-float cap, and streamed versus cached
/// training speed on the whole Fashion-MNIST with one and two torch threads.
/// </summary>
internal static class StreamingBenchmark
{
    /// <summary>One Fit measured in a child process.</summary>
    private sealed record Measurement(string Case, long Rows, string Shape, string Cache, double PeakMiB, double Seconds, string Path, double WaitSeconds, long TrainingRows);

    /// <summary>Runs every case and returns the Markdown report.</summary>
    public static string Run(bool quick, string command, string part = "all")
    {
        var cases = new List<(string Case, long Rows, int[] Shape, string Cache, int Hidden, int Pretrain)>();
        long[] sizes = quick ? new long[] { 2_000, 20_000 } : new long[] { 20_000, 200_000, 2_000_000 };
        foreach (long rows in sizes)
        {
            cases.Add(("cache off", rows, new[] { 3, 32, 32 }, "off", 32, 1));
        }
        foreach (long rows in quick ? new long[] { 2_000 } : new long[] { 20_000, 2_000_000 })
        {
            cases.Add(("default settings", rows, new[] { 3, 32, 32 }, "default", 32, 1));
        }
        cases.Add(("past the 2^31-float cap", quick ? 500 : 20_000, new[] { 3, 224, 224 }, "default", 16, 0));
        var results = new List<Measurement>();
        foreach (var c in part == "speed" ? cases.Take(0) : cases)
        {
            Console.WriteLine($"streaming: {c.Case}, {c.Rows:N0} rows of [{string.Join("x", c.Shape)}] ...");
            results.Add(Child(c.Case, c.Rows, c.Shape, c.Cache, c.Hidden, c.Pretrain));
            Console.WriteLine($"  peak {results[^1].PeakMiB:N0} MiB, {results[^1].Seconds:N1} s, {results[^1].Path}");
        }
        var speed = quick || part == "memory" ? new List<(string, int, double, double, double)>() : SpeedOnFashionMnist();
        var decode = part == "memory" ? null : DecodeHiding(quick ? 1_000 : 10_000);

        var report = new StringBuilder();
        report.AppendLine("# Training on data of any size: memory and speed of streamed training");
        report.AppendLine();
        report.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with `{command}` on {Environment.ProcessorCount} cores, " +
            $"{RuntimeInformation.OSDescription.Trim()}, TorchSharp {typeof(torch).Assembly.GetName().Version} (CPU). Each Fit runs in its own process; " +
            "the peak working set is that process's VmHWM at the end of Fit (runtime, libtorch, model, data and everything else).");
        report.AppendLine();
        report.AppendLine("## Peak memory of a Fit against the number of rows");
        report.AppendLine();
        report.AppendLine("A lazily generated IDataView (rows computed when a cursor asks, nothing held; row count known; it cannot shuffle itself, so " +
            "streamed passes go through the shuffle pool), `CbpQuantize` with an MLP (two hidden layers of 32, or 16 for 3x224x224; the middle one constrained), batch 64, 1 float pre-training pass and 1 CBP pass " +
            "(the 3x224x224 case: no pre-training, 1 CBP pass). \"cache off\" sets `DataCacheBudgetBytes = 0`; \"default settings\" leaves it at 2 GiB.");
        report.AppendLine();
        report.AppendLine("| case | rows | row shape | float data size | data path | peak working set | vs 20,000 rows | Fit seconds | trainer waited |");
        report.AppendLine("|---|---:|---|---:|---|---:|---:|---:|---:|");
        foreach (var m in results)
        {
            var baseline = results.FirstOrDefault(r => r.Case == m.Case && r.Shape == m.Shape && r.Rows == sizes[0]);
            string ratio = baseline is null || m.Case.StartsWith("past", StringComparison.Ordinal) ? "" : $"{m.PeakMiB / baseline.PeakMiB:F2}x";
            double floats = m.Rows * m.Shape.Split('x').Select(double.Parse).Aggregate(1.0, (a, b) => a * b);
            report.AppendLine(CultureInfo.InvariantCulture, $"| {m.Case} | {m.Rows:N0} | {m.Shape} | {floats * 4 / (1 << 30):N2} GiB ({floats:G3} floats) | {m.Path} | {m.PeakMiB:N0} MiB | {ratio} | {m.Seconds:N1} | {m.WaitSeconds / Math.Max(1e-9, m.Seconds):P0} |");
        }
        if (speed.Count > 0)
        {
            report.AppendLine();
            report.AppendLine("## Streamed versus cached training speed, whole Fashion-MNIST");
            report.AppendLine();
            report.AppendLine("60,000 training images, small CNN, batch 64, one CBP pass from a fresh network (no pre-training), binary levels, the same seed; " +
                "the streamed run sets `DataCacheBudgetBytes = 0`. Rows/s counts the training pass only (the cached run's one-off read is listed apart). " +
                "The four runs take turns in one process (cached and streamed alternating), so machine drift hits each alike.");
            report.AppendLine();
            report.AppendLine("| torch threads | cached rows/s | streamed rows/s | streamed / cached | streamed: trainer waited |");
            report.AppendLine("|---:|---:|---:|---:|---:|");
            foreach (var (_, threads, cached, streamed, wait) in speed.GroupBy(s => s.Item2).Select(g => (g.First().Item1, g.Key, g.First(s => s.Item1 == "cached").Item3,
                g.First(s => s.Item1 == "streamed").Item3, g.First(s => s.Item1 == "streamed").Item4)))
            {
                report.AppendLine(CultureInfo.InvariantCulture, $"| {threads} | {cached:N0} | {streamed:N0} | {streamed / cached:F2}x | {wait:P1} |");
            }
        }
        if (decode is { } d)
        {
            report.AppendLine();
            report.AppendLine("## Prefetch hides an expensive transform");
            report.AppendLine();
            report.AppendLine(FormattableString.Invariant($"{d.Rows:N0} Fashion-MNIST training images stored as 224x224 PNG files' bytes (upscaled, as photos are larger than a network's input); the feature column decodes each PNG and resizes it to 32x32 ") +
                "(SkiaSharp, linear) every time a cursor reads it, as an image-loading pipeline does. Small CNN on [1, 32, 32], batch 64, one CBP pass from a fresh network, " +
                "`DataCacheBudgetBytes = 0` (streamed), default threads and prefetch.");
            report.AppendLine();
            report.AppendLine("| decoding and resizing one pass, alone | training pass | trainer waited for the reader | share of the pass |");
            report.AppendLine("|---:|---:|---:|---:|");
            report.AppendLine(CultureInfo.InvariantCulture, $"| {d.DecodeSeconds:N1} s | {d.TrainingSeconds:N1} s | {d.WaitSeconds:N1} s | {d.WaitSeconds / d.TrainingSeconds:P1} |");
        }
        return report.ToString();
    }

    /// <summary>Streams PNG images that are decoded and resized on every read, and measures how long training waits for them.</summary>
    private static (int Rows, double DecodeSeconds, double TrainingSeconds, double WaitSeconds)? DecodeHiding(int rows)
    {
        string directory = File.Exists(Path.Combine(FashionMnistData.FullDataDirectory, "train-images-idx3-ubyte.gz")) ? FashionMnistData.FullDataDirectory : FashionMnistData.SubsetDirectory;
        var images = FashionMnistData.Read(directory, "train", rows);
        var png = images.Select(i => DecodingImageView.EncodePng(i.Features.Select(v => (byte)Math.Round(v * 255)).ToArray(), 224)).ToList();
        var labels = images.Select(i => (uint)Array.IndexOf(FashionMnistData.ClassNames, i.Label)).ToList();
        var data = new DecodingImageView(png, labels, 32);
        Console.WriteLine($"streaming: {png.Count:N0} PNG images decoded per read ...");
        var clock = Stopwatch.StartNew();
        using (var cursor = data.GetRowCursor(data.Schema))
        {
            var getter = cursor.GetGetter<VBuffer<float>>(data.Schema["Features"]);
            VBuffer<float> buffer = default;
            while (cursor.MoveNext())
            {
                getter(ref buffer);
            }
        }
        double decode = clock.Elapsed.TotalSeconds;
        var ml = new MLContext(seed: 1);
        using var model = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            InputShape = new[] { 1, 32, 32 },
            Architecture = CbpArchitecture.SmallCnn(),
            PretrainEpochs = 0,
            Epochs = 1,
            TrainingDevice = CbpTrainingDevice.Cpu,
            DataCacheBudgetBytes = 0,
        }).Fit(data);
        var report = model.TrainingReport!;
        double training = report.Cbp.Sum(e => e.Seconds);
        Console.WriteLine($"  decode alone {decode:N1} s, training {training:N1} s, waited {report.DataWaitSeconds:N1} s");
        return (png.Count, decode, training, report.DataWaitSeconds);
    }

    /// <summary>The child process: one Fit, then one line with its measurements.</summary>
    public static int ChildMain(string[] args)
    {
        long rows = long.Parse(Arg(args, "--rows"), CultureInfo.InvariantCulture);
        var shape = Arg(args, "--shape").Split('x').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var ml = new MLContext(seed: 1);
        var data = new SyntheticImageView(rows, shape[0], shape[1], shape[2]);
        var options = new CbpQuantizeOptions
        {
            InputShape = shape,
            Architecture = CbpArchitecture.Mlp(Enumerable.Repeat(int.Parse(Arg(args, "--hidden"), CultureInfo.InvariantCulture), 2).ToArray()),
            PretrainEpochs = int.Parse(Arg(args, "--pretrain"), CultureInfo.InvariantCulture),
            Epochs = 1,
            TrainingDevice = CbpTrainingDevice.Cpu,
        };
        if (Arg(args, "--cache") == "off")
        {
            options.DataCacheBudgetBytes = 0;
        }
        var clock = Stopwatch.StartNew();
        using var model = ml.Transforms.CbpQuantize(options).Fit(data);
        double seconds = clock.Elapsed.TotalSeconds;
        var report = model.TrainingReport!;
        Console.WriteLine(FormattableString.Invariant($"RESULT peak_kib={PeakKib()} seconds={seconds:F2} wait={report.DataWaitSeconds:F2} rows={report.TrainingRows} path={report.DataPath}"));
        return 0;
    }

    private static Measurement Child(string name, long rows, int[] shape, string cache, int hidden, int pretrain)
    {
        string shapeText = string.Join("x", shape);
        string line = ChildProcess.Result($"{name} ({rows} rows)", new[] { "--suite", "streaming-child", "--rows", rows.ToString(CultureInfo.InvariantCulture), "--shape", shapeText,
            "--cache", cache, "--hidden", hidden.ToString(CultureInfo.InvariantCulture), "--pretrain", pretrain.ToString(CultureInfo.InvariantCulture) });
        string Field(string key)
        {
            int at = line.IndexOf(key + "=", StringComparison.Ordinal) + key.Length + 1;
            int end = key == "path" ? line.Length : line.IndexOf(' ', at);
            return line[at..(end < 0 ? line.Length : end)].Trim();
        }
        return new Measurement(name, rows, shapeText, cache, double.Parse(Field("peak_kib"), CultureInfo.InvariantCulture) / 1024,
            double.Parse(Field("seconds"), CultureInfo.InvariantCulture), Field("path"), double.Parse(Field("wait"), CultureInfo.InvariantCulture),
            long.Parse(Field("rows"), CultureInfo.InvariantCulture));
    }

    /// <summary>Cached and streamed training passes over the whole Fashion-MNIST, with 1 and 2 torch threads, taking turns.</summary>
    private static List<(string Path, int Threads, double RowsPerSecond, double Wait, double Read)> SpeedOnFashionMnist()
    {
        var results = new List<(string, int, double, double, double)>();
        if (!File.Exists(Path.Combine(FashionMnistData.FullDataDirectory, "train-images-idx3-ubyte.gz")))
        {
            Console.WriteLine($"streaming: {FashionMnistData.FullDataDirectory} missing (apt-get install dataset-fashion-mnist); speed section skipped.");
            return results;
        }
        var ml = new MLContext(seed: 1);
        var images = FashionMnistData.Read(FashionMnistData.FullDataDirectory, "train");
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(images)).Transform(ml.Data.LoadFromEnumerable(images));
        foreach (int threads in new[] { 1, 2 })
        {
            foreach (string path in threads == 1 ? new[] { "cached", "streamed" } : new[] { "streamed", "cached" })
            {
                var options = new CbpQuantizeOptions
                {
                    InputShape = new[] { 1, 28, 28 },
                    Architecture = CbpArchitecture.SmallCnn(),
                    PretrainEpochs = 0,
                    Epochs = 1,
                    Seed = 1,
                    TrainingThreads = threads,
                    TrainingDevice = CbpTrainingDevice.Cpu,
                    DataCacheBudgetBytes = path == "cached" ? 2L << 30 : 0,
                };
                Console.WriteLine($"streaming: Fashion-MNIST, {path}, {threads} thread(s) ...");
                var clock = Stopwatch.StartNew();
                using var model = ml.Transforms.CbpQuantize(options).Fit(data);
                var report = model.TrainingReport!;
                double training = report.Cbp.Sum(e => e.Seconds);
                double rowsPerSecond = report.TrainingRows * 1.0 / training;
                results.Add((path, threads, rowsPerSecond, report.DataWaitSeconds / training, clock.Elapsed.TotalSeconds - training));
                Console.WriteLine($"  {rowsPerSecond:N0} rows/s, waited {report.DataWaitSeconds:N1} s");
            }
        }
        return results;
    }

    private static long PeakKib() => ChildProcess.StatusKib("VmHWM");

    private static string Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{name} is required.");
    }
}
