// Core cases: host<->device transfers (pageable and pinned) and the device copy. The
// seed's vector add is benchmarked with the other elementwise ops (ops_bench.cu, vadd_f32).
#include "gpukit/core.cuh"
#include "support/harness.hpp"

#include <memory>
#include <vector>

namespace gpukit_bench {
namespace {

template <class T>
void fill_pattern(T* p, std::size_t n) {
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) p[i] = static_cast<T>(i % 1021) * T(0.5);
}

void register_transfers() {
  const std::size_t n = std::size_t{1} << 26;  // 256 MiB
  const double bytes = n * sizeof(float);
  for (auto kind : {gpukit::host_memory::pageable, gpukit::host_memory::pinned}) {
    const std::string variant = kind == gpukit::host_memory::pinned ? "pinned" : "pageable";
    add_gpu_case("host_to_device", variant, n, bytes, 0, [=](gpukit::stream_view s) {
      auto host = std::make_shared<gpukit::host_buffer<float>>(n, kind);
      fill_pattern(host->data(), n);
      auto dev = std::make_shared<gpukit::device_buffer<float>>(n, s);
      return [=](gpukit::stream_view st) { dev->copy_from_host_async(*host, st); };
    });
    add_gpu_case("device_to_host", variant, n, bytes, 0, [=](gpukit::stream_view s) {
      auto host = std::make_shared<gpukit::host_buffer<float>>(n, kind);
      auto dev = std::make_shared<gpukit::device_buffer<float>>(n, s, gpukit::zero_init);
      return [=](gpukit::stream_view st) { dev->copy_to_host_async(*host, st); };
    });
  }
}

/// cudaMemcpy device to device. 2^28 floats give the copy ceiling; the smaller sizes are
/// what a copy of the memory-bound layer passes' bytes takes (2^21: a global pool of 256
/// channels of 8x8 at batch 256; 2^24: the 2x2 pool and batch-norm passes at batch 256),
/// the fixed costs of a short kernel included.
void register_device_copy() {
  for (int p : {20, 21, 24, 28}) {
    const std::size_t n = std::size_t{1} << p;
    add_gpu_case("device_copy", "cudaMemcpy", n, 2.0 * n * sizeof(float), n, [=](gpukit::stream_view s) {
      auto a = std::make_shared<gpukit::device_buffer<float>>(n, s, gpukit::zero_init);
      auto b = std::make_shared<gpukit::device_buffer<float>>(n, s);
      return [=](gpukit::stream_view st) {
        GPUKIT_CUDA_TRY(cudaMemcpyAsync(b->data(), a->data(), a->bytes(), cudaMemcpyDeviceToDevice, st));
      };
    });
  }
}

}  // namespace

void register_core_cases() {
  register_transfers();
  register_device_copy();
}

}  // namespace gpukit_bench
