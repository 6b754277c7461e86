// gpukit/core/launch.cuh — launch configurations, a checked launch, and the grid-stride
// index range kernels iterate with.
//
//   auto cfg = gpukit::config_for_elements(n, my_kernel);       // block 256, grid capped
//   gpukit::launch(my_kernel, cfg, stream, gpukit::device_span<float>(...), n);
//   __global__ void my_kernel(..., std::size_t n) {
//     for (std::size_t i : gpukit::grid_stride_range(n)) { ... }
//   }
//
// Zero elements give an empty configuration, and launching it does nothing. Every launch
// is checked right after it is issued (gpukit::cuda_error names the configuration).
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/core/launch.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include only gpukit's .hpp headers"
#endif

#include "gpukit/core/device.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/stream.hpp"

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

namespace gpukit {

/// Grid, block and dynamic shared memory of one launch. An empty grid means "no work".
struct launch_config {
  dim3 grid{0, 1, 1};
  dim3 block{1, 1, 1};
  std::size_t shared_bytes = 0;

  bool empty() const noexcept { return grid.x == 0 || grid.y == 0 || grid.z == 0; }
};

namespace detail {

inline std::string describe(const launch_config& cfg) {
  auto d3 = [](dim3 d) { return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")"; };
  return "kernel with grid " + d3(cfg.grid) + " block " + d3(cfg.block) + " and " + std::to_string(cfg.shared_bytes) +
         " bytes of dynamic shared memory";
}

/// Resident blocks per SM for (kernel, block size, shared memory) on the current device;
/// cached because the occupancy calculator costs more than a small launch.
inline int resident_blocks_per_sm(const void* kernel, int block_size, std::size_t shared_bytes) {
  using key = std::tuple<const void*, int, std::size_t, int>;
  static std::mutex mutex;
  static std::map<key, int> cache;
  const key k{kernel, block_size, shared_bytes, current_device()};
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(k); it != cache.end()) return it->second;
  }
  int blocks = 0;
  GPUKIT_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, block_size, shared_bytes));
  blocks = std::max(blocks, 1);
  std::lock_guard<std::mutex> lock(mutex);
  cache.emplace(k, blocks);
  return blocks;
}

}  // namespace detail

/// A 1-D configuration covering `count` work items with `block_size` threads per block,
/// `items_per_thread` items each. The grid is capped at what the device keeps resident at
/// once (SM count × resident blocks per SM), so kernels must loop with grid_stride_range.
/// count = 0 gives an empty configuration.
template <class... Params>
launch_config config_for_elements(std::size_t count, void (*kernel)(Params...), int block_size = 256,
                                  int items_per_thread = 1, std::size_t shared_bytes = 0) {
  detail::require(block_size > 0 && block_size <= 1024, "gpukit::config_for_elements",
                  "argument 'block_size' = " + std::to_string(block_size) + " is outside [1, 1024]");
  detail::require(items_per_thread > 0, "gpukit::config_for_elements",
                  "argument 'items_per_thread' = " + std::to_string(items_per_thread) + " < 1");
  launch_config cfg;
  cfg.block = dim3(static_cast<unsigned>(block_size));
  cfg.shared_bytes = shared_bytes;
  if (count == 0) return cfg;
  const std::size_t per_block = static_cast<std::size_t>(block_size) * static_cast<std::size_t>(items_per_thread);
  const std::size_t needed = (count + per_block - 1) / per_block;
  const std::size_t resident = static_cast<std::size_t>(current_sm_count()) *
                               detail::resident_blocks_per_sm(reinterpret_cast<const void*>(kernel), block_size, shared_bytes);
  cfg.grid = dim3(static_cast<unsigned>(std::min(needed, resident)));
  return cfg;
}

/// A 2-D configuration with one thread per pixel of a width × height image (no cap: 2-D
/// kernels index by blockIdx/threadIdx and return outside the image).
inline launch_config config_for_image(std::size_t width, std::size_t height, dim3 block = dim3(16, 16)) {
  detail::require(block.x > 0 && block.y > 0 && block.z == 1 && block.x * block.y <= 1024, "gpukit::config_for_image",
                  "argument 'block' = (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," +
                      std::to_string(block.z) + ") is not a 2-D block of at most 1024 threads");
  launch_config cfg;
  cfg.block = block;
  const std::size_t gx = (width + block.x - 1) / block.x;
  const std::size_t gy = (height + block.y - 1) / block.y;
  detail::require(gx <= 0x7fffffffu && gy <= 65535u, "gpukit::config_for_image",
                  "arguments 'width' x 'height' = " + std::to_string(width) + " x " + std::to_string(height) +
                      " need more blocks than a grid holds");
  cfg.grid = dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  return cfg;
}

/// Launches `kernel` with `cfg` on `s` and checks the launch. An empty configuration is a
/// no-op. Arguments are passed as the kernel's parameter types (by value).
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), const launch_config& cfg, stream_view s, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "gpukit::launch: wrong number of kernel arguments");
  if (cfg.empty()) return;
  kernel<<<cfg.grid, cfg.block, cfg.shared_bytes, s.value()>>>(std::forward<Args>(args)...);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) detail::throw_cuda_error(status, "launch of " + detail::describe(cfg), __FILE__, __LINE__);
}

/// The indices [0, n) this thread handles in a grid-stride loop: it starts at its global
/// thread index and steps by the total number of threads in the (1-D) grid.
class grid_stride_range {
 public:
  class iterator {
   public:
    __device__ iterator(std::size_t i, std::size_t step) : i_(i), step_(step) {}
    __device__ std::size_t operator*() const { return i_; }
    __device__ iterator& operator++() {
      i_ += step_;
      return *this;
    }
    // "not at the end" is "still below n", so a step past n ends the loop too.
    __device__ bool operator!=(const iterator& end) const { return i_ < end.i_; }

   private:
    std::size_t i_;
    std::size_t step_;
  };

  __device__ explicit grid_stride_range(std::size_t n) : n_(n) {}
  __device__ iterator begin() const {
    return iterator(static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x,
                    static_cast<std::size_t>(gridDim.x) * blockDim.x);
  }
  __device__ iterator end() const { return iterator(n_, 0); }

 private:
  std::size_t n_;
};

}  // namespace gpukit
