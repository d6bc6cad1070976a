#!/usr/bin/env bash
# Builds the Microsoft.ML.Cbp NuGet package into artifacts/packages (README, XML docs, MIT licence, and the
# TorchSharp native-library fix as buildTransitive targets). Usage: bash build/pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet pack src/Microsoft.ML.Cbp/Microsoft.ML.Cbp.csproj -c Release -o artifacts/packages --nologo "$@"
