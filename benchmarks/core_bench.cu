// Core cases: host<->device transfers (pageable and pinned), the device copy, and the
// seed's vector-add kernel against the CPU loop at 2^20, 2^24 and 2^28 floats.
#include "support/harness.hpp"
#include "vector_add/vector_add.cuh"

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

void register_device_copy_and_vector_add() {
  for (int p : {20, 24, 28}) {
    const std::size_t n = std::size_t{1} << p;
    add_gpu_case("device_copy", "cudaMemcpy", n, 2.0 * n * sizeof(float), n, [=](gpukit::stream_view s) {
      auto a = std::make_shared<gpukit::device_buffer<float>>(n, s, gpukit::zero_init);
      auto b = std::make_shared<gpukit::device_buffer<float>>(n, s);
      return [=](gpukit::stream_view st) {
        GPUKIT_CUDA_TRY(cudaMemcpyAsync(b->data(), a->data(), a->bytes(), cudaMemcpyDeviceToDevice, st));
      };
    });
    const double bytes = 3.0 * n * sizeof(float);
    add_gpu_case("vector_add", "gpu", n, bytes, n, [=](gpukit::stream_view s) {
      std::vector<float> host(n);
      fill_pattern(host.data(), n);
      auto a = std::make_shared<gpukit::device_buffer<float>>(gpukit::device_buffer<float>::from_host(host, s));
      auto b = std::make_shared<gpukit::device_buffer<float>>(a->clone(s));
      auto c = std::make_shared<gpukit::device_buffer<float>>(n, s);
      return [=](gpukit::stream_view st) {
        vector_add_demo::vector_add(gpukit::cuda_executor(st), std::as_const(*a).span(), std::as_const(*b).span(),
                                    c->span());
      };
    });
    add_cpu_case("vector_add", "cpu", n, bytes, n, [=] {
      auto a = std::make_shared<gpukit::host_buffer<float>>(n), b = std::make_shared<gpukit::host_buffer<float>>(n),
           c = std::make_shared<gpukit::host_buffer<float>>(n);
      fill_pattern(a->data(), n);
      fill_pattern(b->data(), n);
      fill_pattern(c->data(), n);  // first touch by the same threads that will run the loop
      return [=] { vector_add_demo::vector_add(gpukit::cpu_executor{}, std::as_const(*a).span(), std::as_const(*b).span(), c->span()); };
    });
  }
}

}  // namespace

void register_core_cases() {
  register_transfers();
  register_device_copy_and_vector_add();
}

}  // namespace gpukit_bench
