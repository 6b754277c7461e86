#include <gpukit/gpukit.hpp>

#include <cstdio>

int main() {
  gpukit::host_buffer<float> b(16, gpukit::host_memory::pageable, gpukit::zero_init);
  std::printf("consumer_host: %d CUDA device(s), cpu threads %d, buffer %zu\n", gpukit::device_count(),
              gpukit::cpu_executor{}.threads(), b.size());
  return b[0] == 0.0f ? 0 : 1;
}
