#!/usr/bin/env bash
# Packs the CUDA scoring benchmark for a GPU machine that has neither the .NET SDK nor libtorch (a bare CUDA box): the
# benchmark app without libtorch, the .NET runtime, ONNX Runtime's CUDA provider and the models, trained and exported here
# on the CPU. Usage: bash build/gpu-scoring-bundle.sh [--split MB]
# Writes artifacts/gpu-scoring/bundle.tar (or bundle.tar.partNN pieces of MB megabytes each) and run-on-gpu.sh. On the GPU
# machine (NVIDIA driver, CUDA 13 cuBLAS/cuRAND/cudart, cuDNN 9), put them in one folder and run `bash run-on-gpu.sh [OUTDIR]`;
# it writes OUTDIR/scoring-gpu.md. On a GPU machine with the SDK, `bash build/bench.sh --suite scoring-gpu` does both steps.
set -euo pipefail
cd "$(dirname "$0")/.."
split_mb=""
if [ "${1:-}" = "--split" ]; then split_mb="$2"; fi
out=artifacts/gpu-scoring
stage="$out/stage"
rm -rf "$out"
mkdir -p "$stage/app/runtimes/linux-x64/native" "$stage/app/Data" "$stage/dotnet/host" "$stage/dotnet/shared"
dotnet build test/Microsoft.ML.Cbp.Benchmarks -c Release -nologo -v quiet
bin=test/Microsoft.ML.Cbp.Benchmarks/bin/Release/net10.0
native="$bin/runtimes/linux-x64/native"
cp -a "$bin"/*.dll "$bin"/*.json "$stage/app/"
cp -a "$bin/Data/fashion-mnist-subset" "$stage/app/Data/"
cp -a "$native"/libonnxruntime.so "$native"/libonnxruntime_providers_shared.so "$native"/libLdaNative.so "$stage/app/runtimes/linux-x64/native/"
dotnet "$bin/Microsoft.ML.Cbp.Benchmarks.dll" --suite scoring-gpu --prepare "$stage/models" 2>&1 | grep -v NNPACK
root=$(dirname "$(readlink -f "$(command -v dotnet)")")
runtime=$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" { v = $2 } END { print v }')
cp -a "$root/dotnet" "$stage/dotnet/"
cp -a "$root/host/fxr" "$stage/dotnet/host/"
mkdir -p "$stage/dotnet/shared/Microsoft.NETCore.App"
cp -a "$root/shared/Microsoft.NETCore.App/$runtime" "$stage/dotnet/shared/Microsoft.NETCore.App/"
echo "compressing (a few minutes: the CUDA provider alone is $(du -h "$native/libonnxruntime_providers_cuda.so" | cut -f1))"
(cd "$stage" && tar -cf - app dotnet models | xz -9 -T0 > ../app.tar.xz)
xz -6 -T0 -c "$native/libonnxruntime_providers_cuda.so" > "$out/cudaprov.xz"
(cd "$out" && tar -cf bundle.tar app.tar.xz cudaprov.xz && rm app.tar.xz cudaprov.xz)
rm -rf "$stage"
cp build/gpu/run-on-gpu.sh "$out/"
if [ -n "$split_mb" ]; then
  (cd "$out" && split -b "${split_mb}000000" -d bundle.tar bundle.tar.part && rm bundle.tar)
fi
ls -la "$out"
