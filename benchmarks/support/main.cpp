// The entry point of gpukit_bench: measures the copy ceiling, runs every registered case
// through Google Benchmark (its flags work: --benchmark_filter, --benchmark_out=FILE.json,
// ...), then prints the summary table.
//
//   gpukit_bench [--gpukit_table=FILE.md] [Google Benchmark flags]
#include "support/harness.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace gpukit_bench {
void register_core_cases();  // core_bench.cu
void register_fractal_cases();  // fractal_bench.cu
void register_ops_cases();   // ops_bench.cu
void register_nn_cases();    // nn_bench.cu
void register_io_cases();    // io_bench.cpp
void register_train_cases(); // train_bench.cu
void register_zoo_cases();   // zoo_bench.cu
void register_layer_cases(); // layer_bench.cu
}  // namespace gpukit_bench

int main(int argc, char** argv) try {
  std::string table_path;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--gpukit_table=", 15) == 0) {
      table_path = argv[i] + 15;
    } else {
      args.push_back(argv[i]);
    }
  }
  int bench_argc = static_cast<int>(args.size());
  benchmark::Initialize(&bench_argc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bench_argc, args.data())) return 2;

  if (gpukit::is_cuda_available()) {
    const auto info = gpukit::device_properties(gpukit::current_device());
    const double ceiling = gpukit_bench::measure_copy_ceiling();
    std::printf("GPU: %s, %d SMs; device-to-device copy ceiling %.0f GB/s (read + write)\n", info.name.c_str(),
                info.sm_count, ceiling / 1e9);
    benchmark::AddCustomContext("gpu", info.name);
    benchmark::AddCustomContext("copy_ceiling_GBps", std::to_string(ceiling / 1e9));
  } else {
    std::printf("No usable CUDA device: running the CPU cases only; GPU cases are skipped.\n");
    benchmark::AddCustomContext("gpu", "none");
  }
  benchmark::AddCustomContext("cpu_threads", std::to_string(gpukit::cpu_executor{}.threads()));

  gpukit_bench::register_core_cases();
  gpukit_bench::register_fractal_cases();
  gpukit_bench::register_ops_cases();
  gpukit_bench::register_nn_cases();
  gpukit_bench::register_io_cases();
  gpukit_bench::register_train_cases();
  gpukit_bench::register_zoo_cases();
  gpukit_bench::register_layer_cases();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  gpukit_bench::print_summary(table_path);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpukit_bench: %s\n", e.what());
  return 1;
}
