// Streams, events and the GPU timer.
#include "gpukit/core.cuh"
#include "support/catch.hpp"

#include <vector>

using namespace gpukit;

namespace {
// Spins for roughly `cycles` SM clock cycles, then writes `value`: a kernel whose duration
// and completion order are observable.
__global__ void spin_then_write(long long cycles, int* out, int value) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
  *out = value;
}
__global__ void copy_one(const int* in, int* out) { *out = *in; }
}  // namespace

TEST_CASE("stream is move-only; a moved-from stream refuses to be viewed", "[gpu][stream]") {
  static_assert(!std::is_copy_constructible_v<stream>);
  stream a;
  const cudaStream_t raw = a.view().value();
  stream b(std::move(a));
  CHECK(b.view().value() == raw);
  CHECK_THROWS_AS(a.view(), std::logic_error);  // NOLINT
  stream c;
  c = std::move(b);
  CHECK(c.view().value() == raw);
  CHECK(c.view().ready());
  CHECK(stream_view{}.value() == cudaStreamPerThread);
}

TEST_CASE("events order work across streams without blocking the host", "[gpu][stream]") {
  stream producer, consumer;
  device_buffer<int> value(1, producer, zero_init), seen(1, producer, zero_init);
  producer.synchronize();
  launch(spin_then_write, config_for_elements(1, spin_then_write, 1), producer, 20'000'000LL, value.data(), 42);
  event done(false);
  done.record(producer);
  done.wait_on(consumer);
  launch(copy_one, config_for_elements(1, copy_one, 1), consumer, static_cast<const int*>(value.data()), seen.data());
  CHECK(seen.to_host(consumer)[0] == 42);
  producer.synchronize();
}

TEST_CASE("gpu_timer times the work on its stream", "[gpu][stream][timer]") {
  stream s;
  device_buffer<int> out(1, s);
  const device_info info = device_properties(current_device());
  const long long cycles = 50'000'000LL;  // ≈ 25 ms at 2 GHz
  gpu_timer t = make_timer(cuda_executor(s.view()));
  t.start();
  launch(spin_then_write, config_for_elements(1, spin_then_write, 1), s, cycles, out.data(), 1);
  t.stop();
  const double ms = t.elapsed_ms();
  const double khz = info.clock_rate_khz > 0 ? info.clock_rate_khz : 2'000'000.0;
  const double at_max_clock_ms = static_cast<double>(cycles) / khz;
  CAPTURE(ms, at_max_clock_ms);
  CHECK(ms >= 0.9 * at_max_clock_ms);  // cannot run faster than the top clock allows
  CHECK(ms < 60'000.0);
}
