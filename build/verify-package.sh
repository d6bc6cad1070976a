#!/usr/bin/env bash
# Proves the package's consumption path: packs Microsoft.ML.Cbp, creates a fresh console project outside the
# repository that references it from the local folder feed (plus the libtorch backend an application picks), and
# runs it: it trains a binary-weight network with mlContext.Transforms.CbpQuantize, saves, reloads and scores.
# Prints the consumer's output and ends with "package consumption: OK". Usage: bash build/verify-package.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/build/pack.sh" > /dev/null
version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/src/Microsoft.ML.Cbp/Microsoft.ML.Cbp.csproj" | head -1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/app"
cd "$work/app"
# A private package folder (outside the project, whose *.cs glob would take in files of packages), so the consumer
# gets this build of the package and not a cached one of the same version.
export NUGET_PACKAGES="$work/packages"
cat > nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$root/artifacts/packages" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
cat > Consumer.csproj <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Microsoft.ML.Cbp" Version="$version" />
    <PackageReference Include="libtorch-cpu-linux-x64" Version="2.10.0" />
  </ItemGroup>
</Project>
XML
cat > Program.cs <<'CS'
using System;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Cbp;
using Microsoft.ML.Data;

TorchSharp.torch.set_num_threads(1);
var ml = new MLContext(seed: 1);
var random = new Random(3);
var rows = Enumerable.Range(0, 600).Select(_ =>
{
    var x = Enumerable.Range(0, 16).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    return new Row { Features = x, Label = x[0] + x[1] - x[2] > 0 ? "up" : "down" };
}).ToList();
var data = ml.Data.LoadFromEnumerable(rows);
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.CbpQuantize(new CbpQuantizeOptions { Architecture = CbpArchitecture.Mlp(new[] { 32, 32 }), PretrainEpochs = 10, Epochs = 5 }));
var model = pipeline.Fit(data);
var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data));
ml.Model.Save(model, data.Schema, "model.zip");
var reloaded = ml.Model.Load("model.zip", out _);
var again = ml.MulticlassClassification.Evaluate(reloaded.Transform(data));
Console.WriteLine($"consumer: accuracy {metrics.MicroAccuracy:P1}, after reload {again.MicroAccuracy:P1}");
return metrics.MicroAccuracy > 0.8 && again.MicroAccuracy == metrics.MicroAccuracy ? 0 : 1;

sealed class Row
{
    [VectorType(16)] public float[] Features { get; set; } = Array.Empty<float>();
    public string Label { get; set; } = "";
}
CS
dotnet run -c Release --nologo 2>&1 | grep -v NNPACK
echo "package consumption: OK ($version from $root/artifacts/packages)"
