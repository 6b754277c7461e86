// benchmarks/support/harness.hpp — what every gpukit benchmark shares.
//
// Each case is a Google Benchmark named "<family>/<variant>/<size>" (variant: gpu, cpu,
// plain, cub, ...). Besides Google Benchmark's own output, every finished case records
// its median time per call in a registry; at the end the harness prints one table that
// puts each figure next to the device-to-device copy ceiling measured in the same run and
// next to the CPU fallback (speedup), and writes it as Markdown for the results folder.
//
// GPU cases are timed with CUDA events around each call (manual time) and the L2 cache is
// flushed before each call, so bandwidth figures are DRAM figures, not cache figures.
#pragma once

#include "gpukit/core.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace gpukit_bench {

/// One finished case.
struct result {
  std::string family;   ///< e.g. "vector_add"
  std::string variant;  ///< e.g. "gpu", "cpu", "cub"
  std::string size;     ///< e.g. "2^24"
  double seconds = 0;   ///< median per call
  double bytes = 0;     ///< bytes moved per call (0: not a bandwidth case)
  double items = 0;     ///< items per call
  bool on_gpu = false;
};

/// Cases finished so far, in order.
std::vector<result>& results();

/// The device-to-device copy ceiling in bytes/s (read + write), measured before the cases
/// run; 0 without a GPU.
double& copy_ceiling_bytes_per_second();

/// "2^24" for powers of two, the number otherwise.
std::string size_label(std::size_t n);

/// Makes a GPU case's inputs on the stream and returns the call, which owns them and queues
/// one call on the stream it is given. Inputs live only while the case runs.
using gpu_factory = std::function<std::function<void(gpukit::stream_view)>(gpukit::stream_view)>;
/// Makes a CPU case's inputs and returns the call, which owns them and runs one call.
using cpu_factory = std::function<std::function<void()>()>;

/// Registers a GPU case; `bytes`/`items` count one call. Not registered (and counted as
/// skipped) when no GPU is usable.
void add_gpu_case(const std::string& family, const std::string& variant, std::size_t n, double bytes, double items,
                  gpu_factory make);

/// Declares that one item of every case of `family` costs `flops` floating-point operations
/// (a multiply-add counts 2): the table then shows GFLOP/s for them.
void set_flops_per_item(const std::string& family, double flops);

/// Registers a CPU case; `bytes`/`items` count one call.
void add_cpu_case(const std::string& family, const std::string& variant, std::size_t n, double bytes, double items,
                  cpu_factory make);

/// Measures the copy ceiling (once, at the start of a run with a GPU).
double measure_copy_ceiling();

/// Prints the table of all results and writes it as Markdown to `markdown_path` (if not
/// empty), with a header naming the GPU and the date.
void print_summary(const std::string& markdown_path);

/// GPU cases that were not registered because no GPU is usable.
int& skipped_gpu_cases();

/// "name: message" of each case that stopped with an exception (out_of_memory, any gpukit
/// error): reported through State::SkipWithError and listed in the summary, while the run
/// goes on with the next case.
std::vector<std::string>& failed_cases();

}  // namespace gpukit_bench
