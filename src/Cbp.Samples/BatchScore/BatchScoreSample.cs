using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cbp.Samples.BatchScore;

/// <summary>What the batch-score sample did.</summary>
/// <param name="Rows">Rows scored.</param>
/// <param name="RowsPerSecond">Rows per second, reading the CSV, scoring and writing included.</param>
/// <param name="OutputPath">The predictions CSV.</param>
public sealed record BatchScoreResult(int Rows, double RowsPerSecond, string OutputPath);

/// <summary>
/// A saved model plus a CSV in, a CSV of predictions out: every input line followed by the predicted label and the
/// probabilities. The CSV's header names the columns; those the model reads are loaded with the model's types.
/// </summary>
public static class BatchScoreSample
{
    /// <summary>Runs the sample.</summary>
    /// <param name="options"><see cref="SampleOptions.Input"/>: the model zip (default the tabular sample's WineModel.zip in the output folder);
    /// <see cref="SampleOptions.Data"/>: the CSV (default the shipped wine.csv).</param>
    /// <param name="progress">Receives the number of rows done (every 64 rows).</param>
    public static BatchScoreResult Run(SampleOptions options, Action<int, int>? progress = null)
    {
        string modelPath = options.Input ?? Path.Combine(options.OutputDirectory, "WineModel.zip");
        string dataPath = options.Data ?? Tabular.TabularSample.DataPath;
        if (!File.Exists(modelPath))
        {
            throw new SampleException($"The model '{modelPath}' does not exist; train one first (the 'tabular' sample writes WineModel.zip) or give --input model.zip.");
        }
        if (!File.Exists(dataPath))
        {
            throw new SampleException($"The CSV '{dataPath}' does not exist; give one with --data file.csv.");
        }
        var mlContext = new MLContext(seed: 1);
        using var model = (IDisposable)mlContext.Model.LoadWithBatchedScoring(modelPath, out var inputSchema);
        var lines = File.ReadAllLines(dataPath);
        var header = lines[0].Split(',');
        var columns = header.Select((name, index) =>
        {
            var wanted = inputSchema.GetColumnOrNull(name);
            var kind = wanted?.Type switch
            {
                NumberDataViewType n when n.RawType == typeof(float) => DataKind.Single,
                NumberDataViewType n when n.RawType == typeof(double) => DataKind.Double,
                BooleanDataViewType => DataKind.Boolean,
                _ => DataKind.String,
            };
            return new TextLoader.Column(name, kind, index);
        }).ToArray();
        var missing = inputSchema.Where(c => !c.IsHidden && !header.Contains(c.Name)).Select(c => c.Name).ToList();
        if (missing.Count > 0)
        {
            throw new SampleException($"The CSV lacks columns the model reads: {string.Join(", ", missing)}.");
        }
        var data = mlContext.Data.LoadFromTextFile(dataPath, columns, separatorChar: ',', hasHeader: true);

        var clock = Stopwatch.StartNew();
        var scored = ((ITransformer)model).Transform(data);
        var scoreColumn = scored.Schema["Score"];
        var labelColumn = scored.Schema.GetColumnOrNull("PredictedLabel");
        int classes = ((VectorDataViewType)scoreColumn.Type).Size;
        string outputPath = Path.Combine(options.OutputDirectory, Path.GetFileNameWithoutExtension(dataPath) + "-predictions.csv");
        Directory.CreateDirectory(options.OutputDirectory);
        string temp = outputPath + ".tmp";
        int rows = 0;
        using (var writer = new StreamWriter(temp))
        {
            writer.WriteLine(lines[0] + ",PredictedLabel," + string.Join(",", Enumerable.Range(0, classes).Select(i => $"Score{i}")));
            using var cursor = scored.GetRowCursor(labelColumn is null ? new[] { scoreColumn } : new[] { scoreColumn, labelColumn.Value });
            var getScore = cursor.GetGetter<VBuffer<float>>(scoreColumn);
            Func<string> getLabel = LabelGetter(cursor, labelColumn);
            VBuffer<float> score = default;
            while (cursor.MoveNext())
            {
                getScore(ref score);
                rows++;
                writer.WriteLine(lines[rows] + "," + getLabel() + "," + string.Join(",", score.DenseValues().Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
                if (rows % 64 == 0)
                {
                    progress?.Invoke(rows, lines.Length - 1);
                }
            }
        }
        File.Move(temp, outputPath, overwrite: true);
        progress?.Invoke(rows, lines.Length - 1);
        return new BatchScoreResult(rows, rows / clock.Elapsed.TotalSeconds, outputPath);
    }

    private static Func<string> LabelGetter(DataViewRowCursor cursor, DataViewSchema.Column? column)
    {
        if (column is null)
        {
            return () => "";
        }
        var type = (column.Value.Type as VectorDataViewType)?.ItemType ?? column.Value.Type;
        if (type is TextDataViewType)
        {
            var getter = cursor.GetGetter<VBuffer<ReadOnlyMemory<char>>>(column.Value);
            VBuffer<ReadOnlyMemory<char>> value = default;
            return () =>
            {
                getter(ref value);
                return value.GetItemOrDefault(0).ToString();
            };
        }
        if (type is BooleanDataViewType)
        {
            var getter = cursor.GetGetter<VBuffer<bool>>(column.Value);
            VBuffer<bool> value = default;
            return () =>
            {
                getter(ref value);
                return value.GetItemOrDefault(0) ? "true" : "false";
            };
        }
        var keyGetter = cursor.GetGetter<VBuffer<uint>>(column.Value);
        VBuffer<uint> key = default;
        return () =>
        {
            keyGetter(ref key);
            return key.GetItemOrDefault(0).ToString(CultureInfo.InvariantCulture);
        };
    }
}
