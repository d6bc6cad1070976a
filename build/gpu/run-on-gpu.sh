#!/usr/bin/env bash
# Runs on the GPU machine, in the folder that holds bundle.tar (or its bundle.tar.partNN pieces) from
# build/gpu-scoring-bundle.sh: unpacks it under /tmp/cbp-gpu, finds the CUDA 13 libraries, and runs the CUDA scoring
# benchmark. Usage: bash run-on-gpu.sh [OUTDIR] (default: this folder); writes OUTDIR/scoring-gpu.md and OUTDIR/log.txt.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
outdir=$(mkdir -p "${1:-$here}" && cd "${1:-$here}" && pwd)
work=/tmp/cbp-gpu
rm -rf "$work" && mkdir -p "$work"
if [ -f "$here/bundle.tar" ]; then tar -xf "$here/bundle.tar" -C "$work"; else cat "$here"/bundle.tar.part?? | tar -xf - -C "$work"; fi
cd "$work"
if command -v xz > /dev/null; then
  tar -xJf app.tar.xz && xz -dc cudaprov.xz > app/runtimes/linux-x64/native/libonnxruntime_providers_cuda.so
else
  python3 -c "import lzma, shutil, tarfile; tarfile.open('app.tar.xz').extractall('.'); shutil.copyfileobj(lzma.open('cudaprov.xz'), open('app/runtimes/linux-x64/native/libonnxruntime_providers_cuda.so', 'wb'))"
fi
rm -f app.tar.xz cudaprov.xz
# The CUDA 13 libraries ONNX Runtime's CUDA provider links (and cuDNN 9, which it loads): the CUDA toolkit's, the system's,
# or those of a CUDA 13 PyTorch wheel, whichever the machine has; the driver's libcuda first, never the toolkit's compat copy.
libs=$(find / -xdev \( -name 'libcuda.so.1' -o -name 'libcublasLt.so.13' -o -name 'libcublas.so.13' -o -name 'libcudart.so.13' \
  -o -name 'libcurand.so.10' -o -name 'libcudnn.so.9' -o -name 'libcufft.so.12' \) 2> /dev/null | grep -v '/compat/' \
  | awk '/libcuda.so.1$/ { print; next } { rest[++n] = $0 } END { for (i = 1; i <= n; i++) print rest[i] }' \
  | xargs -r -n1 dirname | awk '!seen[$0]++' | paste -sd:)
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_ROOT="$work/dotnet" DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
echo "CUDA libraries from: $libs"
ldd app/runtimes/linux-x64/native/libonnxruntime_providers_cuda.so | grep "not found" && echo "a CUDA library is missing (above)"
cd app
"$work/dotnet/dotnet" Microsoft.ML.Cbp.Benchmarks.dll --suite scoring-gpu --models "$work/models" --gpu "${CBP_GPU:-0}" \
  --output "$outdir/scoring-gpu.md" 2>&1 | grep -v NNPACK | tee "$outdir/log.txt"
exit "${PIPESTATUS[0]}"
