// gpukit/core/device.hpp — which CUDA devices exist and what they are like.
//
// Host-only. Every query here is safe on a machine without a GPU or without a driver:
// device_count() is then 0 and is_cuda_available() false — nothing aborts or throws.
#pragma once

#include "gpukit/core/error.hpp"

#include <atomic>
#include <cstddef>
#include <string>

namespace gpukit {

/// Number of CUDA devices the runtime can use; 0 when there is no GPU, no driver, or the
/// driver is older than the runtime. Never throws.
inline int device_count() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // "no device" is an answer here, not an error to keep
    return 0;
  }
  return count;
}

/// True when at least one CUDA device can run gpukit's kernels. Never throws.
inline bool is_cuda_available() noexcept { return device_count() > 0; }

/// The properties users size work by. Filled by device_properties(id).
struct device_info {
  int id = 0;
  std::string name;
  int sm_count = 0;                    ///< streaming multiprocessors
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  std::size_t total_memory_bytes = 0;  ///< global memory
  std::size_t l2_cache_bytes = 0;
  std::size_t shared_memory_per_block_optin = 0;  ///< largest dynamic shared memory a block may opt into
  int max_threads_per_block = 0;
  int max_threads_per_sm = 0;
  int warp_size = 0;
  int clock_rate_khz = 0;              ///< SM clock, 0 where the runtime no longer reports it
  int memory_bus_width_bits = 0;

  /// Compute capability as one number, 90 for 9.0.
  int compute_capability() const noexcept { return compute_capability_major * 10 + compute_capability_minor; }
};

/// The device the calling host thread currently uses (cudaGetDevice). Throws cuda_error
/// when no device is usable.
inline int current_device() {
  int id = 0;
  GPUKIT_CUDA_TRY(cudaGetDevice(&id));
  return id;
}

/// Properties of device `id` (0 <= id < device_count(); std::invalid_argument otherwise).
inline device_info device_properties(int id) {
  const int count = device_count();
  detail::require(id >= 0 && id < count, "gpukit::device_properties",
                  "argument 'id' = " + std::to_string(id) + " is not a device (device_count() = " +
                      std::to_string(count) + ")");
  cudaDeviceProp p{};
  GPUKIT_CUDA_TRY(cudaGetDeviceProperties(&p, id));
  device_info info;
  info.id = id;
  info.name = p.name;
  info.sm_count = p.multiProcessorCount;
  info.compute_capability_major = p.major;
  info.compute_capability_minor = p.minor;
  info.total_memory_bytes = p.totalGlobalMem;
  info.l2_cache_bytes = static_cast<std::size_t>(p.l2CacheSize);
  info.shared_memory_per_block_optin = p.sharedMemPerBlockOptin;
  info.max_threads_per_block = p.maxThreadsPerBlock;
  info.max_threads_per_sm = p.maxThreadsPerMultiProcessor;
  info.warp_size = p.warpSize;
  // cudaDeviceProp lost clockRate in CUDA 13; the attribute still answers.
  if (cudaDeviceGetAttribute(&info.clock_rate_khz, cudaDevAttrClockRate, id) != cudaSuccess) {
    (void)cudaGetLastError();
    info.clock_rate_khz = 0;
  }
  info.memory_bus_width_bits = p.memoryBusWidth;
  return info;
}

/// Free and total memory of the current device, in bytes (cudaMemGetInfo).
struct memory_info {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
};
inline memory_info device_memory_info() {
  memory_info m;
  GPUKIT_CUDA_TRY(cudaMemGetInfo(&m.free_bytes, &m.total_bytes));
  return m;
}

/// Multiprocessor count of the current device, cached per device because launch
/// configuration asks for it on every call.
inline int current_sm_count() {
  constexpr int max_cached = 64;
  static std::atomic<int> cache[max_cached];  // static storage: zero = not read yet
  const int id = current_device();
  if (id < max_cached) {
    if (const int known = cache[id].load(std::memory_order_relaxed)) return known;
  }
  int sms = 0;
  GPUKIT_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, id));
  if (id < max_cached) cache[id].store(sms, std::memory_order_relaxed);  // racing writers agree
  return sms;
}

}  // namespace gpukit
