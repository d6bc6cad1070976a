using System;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;

// Usage: Cbp.ModelLoadCheck <model.zip> <features.bin> <rows> <width> <scores.bin>
// features.bin: rows x width little-endian floats. Writes every Score value (little-endian floats, row by row) and,
// on standard output, the loaded model's output columns.
if (args.Length != 5)
{
    Console.Error.WriteLine("usage: Cbp.ModelLoadCheck <model.zip> <features.bin> <rows> <width> <scores.bin>");
    return 2;
}
int rows = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
int width = int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture);
var bytes = File.ReadAllBytes(args[1]);
var ml = new MLContext(seed: 1);
var model = ml.Model.Load(args[0], out var inputSchema);
string featureColumn = inputSchema.First(c => c.Type is VectorDataViewType).Name;
var definition = SchemaDefinition.Create(typeof(Row));
definition[0].ColumnName = featureColumn;
definition[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
var data = ml.Data.LoadFromEnumerable(
    Enumerable.Range(0, rows).Select(r => new Row { Features = Enumerable.Range(0, width).Select(i => BitConverter.ToSingle(bytes, ((r * width) + i) * 4)).ToArray() }),
    definition);
var scored = model.Transform(data);
foreach (var column in scored.Schema.Where(c => !c.IsHidden))
{
    Console.WriteLine($"{column.Name}: {column.Type}");
}
using var output = new BinaryWriter(File.Create(args[4]));
foreach (var score in scored.GetColumn<float[]>("Score"))
{
    foreach (float value in score)
    {
        output.Write(value);
    }
}
return 0;

internal sealed class Row
{
    public float[] Features { get; set; } = Array.Empty<float>();
}
