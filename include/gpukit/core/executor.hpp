// gpukit/core/executor.hpp — where an op runs.
//
// Every gpukit op takes an executor as its first argument:
//   cpu_executor  — the CPU fallback, OpenMP threads on host memory (host_span);
//   cuda_executor — a CUDA device and a stream, on device memory (device_span).
// Ops never synchronise behind the caller's back: a GPU op returns once its work is
// queued on the executor's stream (ops that return a host value say so).
//
// default_executor() answers "the GPU if there is one, the CPU otherwise" at run time, as
// an any_executor (a std::variant) to std::visit with generic code; buffer_for<Exec, T>
// and make_buffer<T>(exec, n) give the matching memory.
//
// Host-only: compiles with a plain C++17 compiler. A GPU op itself needs nvcc: calling one
// from a host-compiled file is a compile error saying so (see core/dispatch.hpp).
#pragma once

#include "gpukit/core/device.hpp"
#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/host_buffer.hpp"
#include "gpukit/core/stream.hpp"
#include "gpukit/core/timer.hpp"
#include "gpukit/core/workspace.hpp"

#include <cstring>
#include <string>
#include <type_traits>
#include <variant>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace gpukit {

/// The CPU fallback. `threads` = 0 means OpenMP's default (OMP_NUM_THREADS or all cores).
class cpu_executor {
 public:
  explicit cpu_executor(int threads = 0) : threads_(threads) {
    detail::require(threads >= 0, "gpukit::cpu_executor", "argument 'threads' = " + std::to_string(threads) + " < 0");
  }
  /// Threads an op on this executor uses.
  int threads() const noexcept {
#if defined(_OPENMP)
    return threads_ > 0 ? threads_ : omp_get_max_threads();
#else
    return 1;
#endif
  }
  /// CPU ops finish before they return: nothing to wait for.
  void synchronize() const noexcept {}
  static constexpr const char* name() noexcept { return "cpu"; }

 private:
  int threads_ = 0;
};

/// A CUDA device and a stream on it. Copyable (it views, never owns, the stream).
class cuda_executor {
 public:
  /// The current device's per-thread default stream.
  cuda_executor() : cuda_executor(stream_view{}) {}
  /// Work goes to `s`, which must belong to the current device (or to `device`).
  explicit cuda_executor(stream_view s) : stream_(s), device_(current_device()) {}
  cuda_executor(stream_view s, int device) : stream_(s), device_(device) {
    const int count = device_count();
    detail::require(device >= 0 && device < count, "gpukit::cuda_executor",
                    "argument 'device' = " + std::to_string(device) + " is not a device (device_count() = " +
                        std::to_string(count) + ")");
  }
  /// Work goes to `s`, and ops that need scratch memory reuse `ws`, which must belong to
  /// `s` and outlive every op queued through this executor.
  cuda_executor(stream_view s, workspace& ws) : cuda_executor(s) {
    detail::require(ws.stream() == s, "gpukit::cuda_executor",
                    "argument 'ws' belongs to another stream than argument 's'");
    workspace_ = &ws;
  }

  stream_view stream() const noexcept { return stream_; }
  /// The workspace ops may reuse, or nullptr (then they allocate per call).
  workspace* scratch() const noexcept { return workspace_; }
  int device() const noexcept { return device_; }
  /// Waits for everything queued on the executor's stream.
  void synchronize() const { stream_.synchronize(); }
  static constexpr const char* name() noexcept { return "cuda"; }

 private:
  stream_view stream_{};
  int device_ = 0;
  workspace* workspace_ = nullptr;
};

using any_executor = std::variant<cpu_executor, cuda_executor>;

/// cuda_executor on the current device's per-thread stream when a CUDA device is usable,
/// cpu_executor otherwise. Never throws for lack of a GPU.
inline any_executor default_executor() {
  if (is_cuda_available()) return cuda_executor{};
  return cpu_executor{};
}

/// True for cuda_executor.
template <class Exec>
inline constexpr bool is_gpu_executor_v = std::is_same_v<std::decay_t<Exec>, cuda_executor>;

namespace detail {
template <class Exec, class T>
struct buffer_for_impl;
template <class T>
struct buffer_for_impl<cpu_executor, T> {
  using type = host_buffer<T>;
};
template <class T>
struct buffer_for_impl<cuda_executor, T> {
  using type = device_buffer<T>;
};
}  // namespace detail

/// The owning buffer an executor's ops read and write: host_buffer<T> for the CPU,
/// device_buffer<T> for CUDA.
template <class Exec, class T>
using buffer_for = typename detail::buffer_for_impl<std::decay_t<Exec>, T>::type;

/// The span type an executor's ops take: host_span<T> or device_span<T>.
template <class Exec, class T>
using span_for = span<T, is_gpu_executor_v<Exec> ? memory_space::device : memory_space::host>;

/// `count` uninitialised elements in the executor's memory (stream-ordered on its stream
/// for CUDA).
template <class T>
host_buffer<T> make_buffer(const cpu_executor&, std::size_t count) {
  return host_buffer<T>(count);
}
template <class T>
device_buffer<T> make_buffer(const cuda_executor& exec, std::size_t count) {
  return device_buffer<T>(count, exec.stream());
}

/// `count` zeroed elements in the executor's memory (CUDA: zeroed on its stream).
template <class T>
host_buffer<T> make_buffer(const cpu_executor&, std::size_t count, zero_init_t) {
  return host_buffer<T>(count, host_memory::pageable, zero_init);
}
template <class T>
device_buffer<T> make_buffer(const cuda_executor& exec, std::size_t count, zero_init_t) {
  return device_buffer<T>(count, exec.stream(), zero_init);
}

/// Sets every element of `b` to zero bits (CUDA: queued on the executor's stream).
template <class T>
void zero_fill(const cpu_executor&, host_buffer<T>& b) {
  if (!b.empty()) std::memset(static_cast<void*>(b.data()), 0, b.bytes());
}
template <class T>
void zero_fill(const cuda_executor& exec, device_buffer<T>& b) {
  b.set_zero(exec.stream());
}

/// Copies `src` (host memory, src.size() == b.size()) into `b` and returns once it is there.
template <class T>
void copy_from_host(const cpu_executor&, host_buffer<T>& b, host_span<const T> src) {
  detail::require(src.size() == b.size(), "gpukit::copy_from_host",
                  "argument 'src' has " + std::to_string(src.size()) + " elements, the buffer " + std::to_string(b.size()));
  if (!b.empty()) std::memcpy(static_cast<void*>(b.data()), src.data(), b.bytes());
}
template <class T>
void copy_from_host(const cuda_executor& exec, device_buffer<T>& b, host_span<const T> src) {
  b.copy_from_host(src, exec.stream());
}

/// A timer measuring an executor's work: cpu_timer for the CPU, gpu_timer on the stream.
inline cpu_timer make_timer(const cpu_executor&) { return {}; }
inline gpu_timer make_timer(const cuda_executor& exec) { return gpu_timer(exec.stream()); }

}  // namespace gpukit
