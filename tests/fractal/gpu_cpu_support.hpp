// tests/fractal/gpu_cpu_support.hpp — what the fractal GPU tests share: buffers of either
// executor's memory made from and read back into host vectors (so one bad-input case runs on
// both executors), and an image comparison that names the first differing pixels.
#pragma once

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/host_buffer.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/stream.hpp"
#include "support/catch.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace gpukit_test {

/// Host buffers for the CPU executor.
struct cpu_memory {
  gpukit::cpu_executor exec;
  template <class T>
  gpukit::host_buffer<T> make(const std::vector<T>& v) const {
    gpukit::host_buffer<T> b(v.size());
    std::copy(v.begin(), v.end(), b.begin());
    return b;
  }
  template <class T>
  std::vector<T> read(const gpukit::host_buffer<T>& b) const {
    return std::vector<T>(b.begin(), b.end());
  }
};

/// Device buffers for a GPU executor on its own stream; read() synchronizes the stream.
struct gpu_memory {
  gpukit::stream stream;
  gpukit::cuda_executor exec{stream.view()};
  template <class T>
  gpukit::device_buffer<T> make(const std::vector<T>& v) const {
    return gpukit::device_buffer<T>::from_host(v, stream.view());
  }
  template <class T>
  std::vector<T> read(const gpukit::device_buffer<T>& b) const {
    return b.to_host(stream.view());
  }
};

/// Requires equal images (row length `width`) and reports the first few differing pixels.
template <class T>
void require_identical(const std::vector<T>& gpu, const std::vector<T>& cpu, std::size_t width) {
  REQUIRE(gpu.size() == cpu.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < gpu.size(); ++i) {
    if (gpu[i] == cpu[i]) continue;
    if (++differing <= 5)
      UNSCOPED_INFO("pixel (" << i % width << ", " << i / width << "): gpu " << +gpu[i] << ", cpu " << +cpu[i]);
  }
  INFO(differing << " of " << gpu.size() << " pixels differ");
  REQUIRE(differing == 0);
}

}  // namespace gpukit_test
