// gpukit/core/timer.hpp — a GPU timer and a CPU timer with the same interface:
//   start(); ...work...; stop(); elapsed_ms();
// so code that times "whatever the executor does" can hold either. make_timer(exec) in
// executor.hpp picks the right one.
//
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/stream.hpp"

#include <chrono>

namespace gpukit {

/// Wall-clock timer (std::chrono::steady_clock).
class cpu_timer {
 public:
  void start() noexcept { begin_ = clock::now(); }
  void stop() noexcept { end_ = clock::now(); }
  /// Milliseconds between the last start() and stop().
  double elapsed_ms() const noexcept { return std::chrono::duration<double, std::milli>(end_ - begin_).count(); }

 private:
  using clock = std::chrono::steady_clock;
  clock::time_point begin_{};
  clock::time_point end_{};
};

/// Times the work queued on one stream between start() and stop() with a pair of events.
/// Nothing synchronises until elapsed_ms(), which waits for the stop event.
class gpu_timer {
 public:
  explicit gpu_timer(stream_view s = {}) : stream_(s) {}
  void start() { begin_.record(stream_); }
  void stop() { end_.record(stream_); }
  /// Blocks until the stop event completes, then returns the GPU time in milliseconds.
  double elapsed_ms() const {
    end_.synchronize();
    return event::elapsed_ms(begin_, end_);
  }
  stream_view stream() const noexcept { return stream_; }

 private:
  stream_view stream_;
  event begin_;
  event end_;
};

}  // namespace gpukit
