// The ops' CPU paths compiled by the host compiler alone (no nvcc): the same headers a
// host-only translation unit of a user's project gets through <gpukit/gpukit.hpp>.
#include "gpukit/gpukit.hpp"
#include "support/catch.hpp"

#include <numeric>
#include <vector>

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

TEST_CASE("ops run on the CPU executor from a host-only file", "[ops][host_only]") {
  const gpukit::cpu_executor exec(2);
  std::vector<float> a(100000), b(100000), out(100000);
  std::iota(a.begin(), a.end(), 0.0f);
  gpukit::fill(exec, b, 0.5f);
  gpukit::add(exec, a, b, out);
  CHECK(out[99999] == 99999.5f);
  gpukit::transform(exec, out, [](float x, float y) { return x * y; }, a, b);
  CHECK(out[10] == 5.0f);
  CHECK(gpukit::sum(exec, b) == 50000.0f);
  CHECK(gpukit::max(exec, a) == 99999.0f);
  std::vector<std::int64_t> idx(10), scanned(10);
  gpukit::sequence(exec, idx, std::int64_t{1});
  gpukit::inclusive_scan(exec, idx, scanned);
  CHECK(scanned.back() == 55);
  gpukit::host_buffer<double> h(8);
  gpukit::fill(exec, h, 2.0);
  CHECK(gpukit::product(exec, h) == 256.0);
}
