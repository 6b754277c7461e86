// gpukit/nn/graph.hpp — a captured, replayable CUDA graph (cudaGraphExec_t), owned.
//
//   auto g = nn::graph::capture(stream, [&](gpukit::stream_view s) { ...queue work on s... });
//   g.replay(stream);   // the same kernels, copies and memsets, on the same memory
//
// Capture records instead of running: the work must not synchronise, allocate (outside
// stream-ordered allocation) or read results on the host, and every buffer it touches
// must outlive the graph, which replays on the addresses it saw. Capture runs in
// thread-local mode on a stream other than the legacy default stream. Move-only;
// destroying it never throws.
// Host-only: compiles with a plain C++17 compiler (CUDA runtime API only).
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/stream.hpp"

#include <utility>

namespace gpukit::nn {

class graph {
 public:
  graph() = default;
  graph(const graph&) = delete;
  graph& operator=(const graph&) = delete;
  graph(graph&& o) noexcept : graph_(std::exchange(o.graph_, nullptr)), exec_(std::exchange(o.exec_, nullptr)) {}
  graph& operator=(graph&& o) noexcept {
    if (this != &o) {
      reset();
      graph_ = std::exchange(o.graph_, nullptr);
      exec_ = std::exchange(o.exec_, nullptr);
    }
    return *this;
  }
  ~graph() { reset(); }

  /// Captures what `record(s)` queues on `s` and instantiates it. If `record` throws, the
  /// capture is ended and discarded and the exception propagates.
  template <class Record>
  static graph capture(stream_view s, Record&& record) {
    detail::require(s.value() != nullptr, "gpukit::nn::graph::capture",
                    "argument 's' is the legacy default stream, which cannot be captured");
    GPUKIT_CUDA_TRY(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    graph g;
    try {
      record(s);
    } catch (...) {
      cudaGraph_t partial = nullptr;
      if (cudaStreamEndCapture(s, &partial) == cudaSuccess && partial != nullptr) {
        GPUKIT_CUDA_TRY_NOEXCEPT(cudaGraphDestroy(partial));
      }
      (void)cudaGetLastError();
      throw;
    }
    GPUKIT_CUDA_TRY(cudaStreamEndCapture(s, &g.graph_));
    GPUKIT_CUDA_TRY(cudaGraphInstantiate(&g.exec_, g.graph_, 0));
    return g;
  }

  /// Queues one replay on `s`; returns at once.
  void replay(stream_view s) const {
    if (exec_ == nullptr) throw std::logic_error("gpukit::nn::graph::replay: the graph is empty (moved from or never captured)");
    GPUKIT_CUDA_TRY(cudaGraphLaunch(exec_, s));
  }

  bool empty() const noexcept { return exec_ == nullptr; }
  /// Kernel, copy and memset nodes the graph holds.
  std::size_t node_count() const {
    std::size_t n = 0;
    if (graph_ != nullptr) GPUKIT_CUDA_TRY(cudaGraphGetNodes(graph_, nullptr, &n));
    return n;
  }

 private:
  void reset() noexcept {
    if (exec_ != nullptr) GPUKIT_CUDA_TRY_NOEXCEPT(cudaGraphExecDestroy(exec_));
    if (graph_ != nullptr) GPUKIT_CUDA_TRY_NOEXCEPT(cudaGraphDestroy(graph_));
    exec_ = nullptr;
    graph_ = nullptr;
  }

  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace gpukit::nn
