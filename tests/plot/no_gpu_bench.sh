#!/usr/bin/env bash
# Runs a few fast CPU cases of gpukit_bench as a machine without a GPU does (no device
# visible), writing the JSON and the log side by side in OUT, as scripts/bench does:
#   no_gpu_bench.sh GPUKIT_BENCH OUT
# The harness fixes every case's minimum time at 0.2 s (MinTime in support/harness.cpp,
# which overrides --benchmark_min_time; Debian 12's Google Benchmark 1.7 also refuses the
# "0.01s" form of that flag), so the filter alone keeps the run short: two sizes of one op
# with its plain-loop peer, the seed Mandelbrot scene and two small zoo models' CPU
# training steps, about 4 s on 2 cores.
set -euo pipefail
bench=$1
out=$2
rm -rf "$out"
mkdir -p "$out"
CUDA_VISIBLE_DEVICES=-1 "$bench" \
  '--benchmark_filter=^(vadd_f32/(cpu|omp_loop)/2\^(16|20)|mandelbrot_seed/cpu|zoo_train_(lenet|mlp)/cpu)/' \
  --benchmark_out="$out/gpukit_bench.json" --benchmark_out_format=json >"$out/gpukit_bench.log" 2>&1 ||
  { cat "$out/gpukit_bench.log"; exit 1; }
cat "$out/gpukit_bench.log"
