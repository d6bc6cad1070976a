#!/usr/bin/env bash
# Runs the benchmarks (not tests: nothing gates on wall-clock time) and writes their report under
# docs/benchmarks/. Usage: bash build/bench.sh [--quick] [--suite all|accuracy|speed|scoring|scoring-gpu|onnx-export|training-step|streaming|fuzz|zoo|budget|lowbit|data-parallel] [options]
# budget: [--seeds N] [--network all|cnn|resnet20] (accuracy against compact bytes, uniform level sets versus MaxModelBytes; the small CNN about 9 minutes per seed, ResNet-20 at one seed about 8 minutes)
# lowbit: session memory, rows/s and kernel placement per form of the constrained weights (float, DequantizeLinear, Cast/Mul, MatMulNBits fp32 and int8, and 8-bit codes); about 9 minutes
# data-parallel: one CBP epoch of the small CNN on the whole Fashion-MNIST, and one streamed pass over 6,000 images decoded per read, one process x 2 threads against mpiexec -n 2 x 1 thread, taking turns (needs MPICH: bash build/install-mpi.sh); about 6 minutes
# zoo: [--models resnet18,vit_tiny_16,...] (torchvision coverage table; needs the full-size exports: /usr/bin/python3 build/make-zoo-models.py full)
# fuzz: [--mutants N] [--seed S] (load-stage mutation fuzz; the test suite runs 2,000 of them)
# streaming: [--part all|memory|speed] (memory: peak working set against rows, each Fit in its own process; speed: streamed vs cached on the whole Fashion-MNIST)
# scoring-gpu: [--prepare DIR] | [--models DIR] [--gpu N] [--output FILE] (CUDA execution provider; see docs/benchmarks/scoring-gpu.md)
# accuracy: [--subset] [--train-rows N] [--test-rows N] [--pretrain-epochs N] [--epochs N] [--networks cnn,mlp] [--constraints binary,ternary,...] [--multiplier-lr X] [--schedule-epochs-per-pass N] [--scale-mode per-layer|minimum-error|per-output-channel] [--report NAME]; training-step: [--threads N] [--network all|cnn|mlp]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet run --project test/Microsoft.ML.Cbp.Benchmarks -c Release -- "$@"
