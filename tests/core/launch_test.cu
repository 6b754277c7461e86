// Launch helpers: configurations, the checked launch, grid-stride coverage, and a failing
// launch becoming cuda_error.
#include "gpukit/core.cuh"
#include "support/catch.hpp"

#include <vector>

using namespace gpukit;

namespace {
__global__ void count_visits(device_span<unsigned> visits) {
  for (std::size_t i : grid_stride_range(visits.size())) atomicAdd(&visits[i], 1u);
}

__global__ void write_coordinates(view2d<unsigned> img) {
  const unsigned x = blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < img.width && y < img.height) img(x, y) = y * 100000u + x;
}

__global__ void never_runs(int*) {}
}  // namespace

TEST_CASE("zero elements give an empty configuration and a no-op launch", "[gpu][launch]") {
  const launch_config cfg = config_for_elements(0, count_visits);
  CHECK(cfg.empty());
  launch(count_visits, cfg, stream_view{}, device_span<unsigned>{});
  CHECK(cudaGetLastError() == cudaSuccess);
}

TEST_CASE("the grid is capped at what the device keeps resident", "[gpu][launch]") {
  const int sms = current_sm_count();
  const launch_config small = config_for_elements(1000, count_visits, 256);
  CHECK(small.grid.x == 4);
  CHECK(small.block.x == 256);
  const launch_config big = config_for_elements(std::size_t{1} << 32, count_visits, 256);
  CHECK(big.grid.x >= static_cast<unsigned>(sms));
  CHECK(big.grid.x <= static_cast<unsigned>(sms) * (2048u / 256u));
  gpukit_test::require_throws_naming<std::invalid_argument>([] { (void)config_for_elements(10, count_visits, 0); },
                                                            {"'block_size'", "0"});
  gpukit_test::require_throws_naming<std::invalid_argument>([] { (void)config_for_elements(10, count_visits, 2048); },
                                                            {"'block_size'", "2048"});
}

TEST_CASE("grid_stride_range visits every index exactly once", "[gpu][launch]") {
  stream s;
  const std::size_t n = GENERATE(std::size_t{1}, std::size_t{31}, std::size_t{257}, std::size_t{1000003},
                                 gpukit_test::large_size(std::size_t{1} << 26));
  const int block = GENERATE(32, 256, 1024);
  CAPTURE(n, block);
  device_buffer<unsigned> visits(n, s, zero_init);
  launch(count_visits, config_for_elements(n, count_visits, block), s, visits.span());
  const auto host = visits.to_host(s);
  std::size_t wrong = 0;
  for (unsigned v : host) wrong += (v != 1u);
  REQUIRE(wrong == 0);
}

TEST_CASE("2-D configurations cover odd image sizes", "[gpu][launch]") {
  stream s;
  for (auto [w, h] : {std::pair<std::size_t, std::size_t>{1, 1}, {17, 3}, {1536, 1024}, {1001, 999}}) {
    device_buffer<unsigned> img(w * h, s);
    launch(write_coordinates, config_for_image(w, h), s, make_view2d(img.span(), w, h));
    const auto host = img.to_host(s);
    std::size_t wrong = 0;
    for (std::size_t y = 0; y < h; ++y)
      for (std::size_t x = 0; x < w; ++x) wrong += host[y * w + x] != y * 100000u + x;
    CAPTURE(w, h);
    REQUIRE(wrong == 0);
  }
  CHECK(config_for_image(0, 5).empty());
}

// [api_error]: the launch fails on purpose (scripts/test-gpu-sanitized runs this case with
// compute-sanitizer's API-error reporting off).
TEST_CASE("a failing launch becomes cuda_error naming the configuration; the next launch works",
          "[gpu][launch][api_error]") {
  launch_config bad;
  bad.grid = dim3(1);
  bad.block = dim3(2048);  // more threads than a block may have
  bool caught = false;
  try {
    launch(never_runs, bad, stream_view{}, static_cast<int*>(nullptr));
  } catch (const cuda_error& e) {
    caught = true;
    // CUDA 12 says InvalidConfiguration, CUDA 13 InvalidValue: the message must name whichever it is.
    CHECK(e.code() != cudaSuccess);
    const std::string what = e.what();
    CHECK(what.find(cudaGetErrorName(e.code())) != std::string::npos);
    CHECK(what.find("block (2048,1,1)") != std::string::npos);
    CHECK(what.find("launch.cuh:") != std::string::npos);
  }
  REQUIRE(caught);
  stream s;
  device_buffer<unsigned> visits(100, s, zero_init);
  launch(count_visits, config_for_elements(100, count_visits), s, visits.span());
  for (unsigned v : visits.to_host(s)) REQUIRE(v == 1u);
}
