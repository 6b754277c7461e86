// device_buffer and pinned host_buffer on a real GPU: moves, copies both ways, sizes
// 0 / 1 / odd / large, zero-init, clones, out_of_memory and recovery.
#include "gpukit/core.cuh"
#include "support/catch.hpp"

#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

using namespace gpukit;

namespace {
__global__ void add_one(device_span<int> v) {
  for (std::size_t i : grid_stride_range(v.size())) v[i] += 1;
}

template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t salt) {
  auto gen = gpukit_test::rng(salt);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(gen() % 1000003);
  return v;
}
}  // namespace

TEST_CASE("device_buffer is move-only and moves its allocation", "[gpu][buffer]") {
  static_assert(!std::is_copy_constructible_v<device_buffer<float>>);
  static_assert(!std::is_copy_assignable_v<device_buffer<float>>);
  static_assert(std::is_nothrow_move_constructible_v<device_buffer<float>>);
  static_assert(std::is_nothrow_move_assignable_v<device_buffer<float>>);
  stream s;
  device_buffer<float> a(1000, s);
  float* p = a.data();
  device_buffer<float> b(std::move(a));
  CHECK(b.data() == p);
  CHECK(b.size() == 1000);
  CHECK(a.data() == nullptr);  // NOLINT: moved-from state is specified
  CHECK(a.size() == 0);
  device_buffer<float> c(10, s);
  c = std::move(b);  // frees c's old allocation
  CHECK(c.data() == p);
  CHECK(c.bytes() == 4000);
  c = device_buffer<float>();
  CHECK(c.empty());
  s.synchronize();
}

TEST_CASE("device_buffer copies both ways at sizes 0, 1, odd and large", "[gpu][buffer]") {
  stream s;
  const std::size_t n = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{31}, std::size_t{1000003},
                                 gpukit_test::large_size(std::size_t{1} << 26));
  CAPTURE(n);
  const auto src = random_vector<std::int32_t>(n, n);
  // asynchronous path with pinned staging
  host_buffer<std::int32_t> pinned_in(n, host_memory::pinned), pinned_out(n, host_memory::pinned);
  std::copy(src.begin(), src.end(), pinned_in.begin());
  device_buffer<std::int32_t> d(n, s);
  d.copy_from_host_async(pinned_in, s);
  device_buffer<std::int32_t> e = d.clone(s);
  e.copy_to_host_async(pinned_out, s);
  s.synchronize();
  REQUIRE(std::equal(src.begin(), src.end(), pinned_out.begin()));
  // synchronous path through pageable vectors
  auto f = device_buffer<std::int32_t>::from_host(src, s);
  REQUIRE(f.to_host(s) == src);
  // span copies device to device and back
  device_buffer<std::int32_t> g(n, s);
  transfer(g.span(), std::as_const(f).span(), s);
  std::vector<std::int32_t> back(n);
  transfer(make_host_span(back), std::as_const(g).span(), s);
  REQUIRE(back == src);
}

TEST_CASE("device_buffer is uninitialised unless asked; zero_init zeroes", "[gpu][buffer]") {
  stream s;
  device_buffer<double> z(4097, s, zero_init);
  for (double x : z.to_host(s)) REQUIRE(x == 0.0);
  auto d = device_buffer<double>::from_host(std::vector<double>(33, 2.5), s);
  d.set_zero(s);
  for (double x : d.to_host(s)) REQUIRE(x == 0.0);
}

TEST_CASE("size mismatches are rejected before anything is copied", "[gpu][buffer]") {
  stream s;
  auto d = device_buffer<int>::from_host(std::vector<int>(8, 5), s);
  std::vector<int> wrong(7, -1);
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { d.copy_from_host(wrong, s); }, {"'src'", "7", "8"});
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { d.copy_to_host(make_host_span(wrong), s); },
                                                            {"'dst'", "7", "8"});
  for (int x : wrong) REQUIRE(x == -1);
  for (int x : d.to_host(s)) REQUIRE(x == 5);
  device_buffer<int> other(9, s);
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { transfer(other.span(), std::as_const(d).span(), s); },
                                                            {"'dst'", "9", "'src'", "8"});
  gpukit_test::require_throws_naming<std::invalid_argument>(
      [&] { transfer(d.span().subspan(0, 4), device_span<const int>(d.span().subspan(2, 4)), s); }, {"overlap"});
}

// [api_error]: these cases make a CUDA call fail on purpose, which compute-sanitizer would
// report; scripts/test-gpu-sanitized runs them with API-error reporting off.
TEST_CASE("asking for more than the device has throws out_of_memory, and the library keeps working",
          "[gpu][buffer][oom][api_error]") {
  stream s;
  const memory_info m = device_memory_info();
  const std::size_t too_many = m.total_bytes + (std::size_t{1} << 30);
  bool caught = false;
  try {
    device_buffer<std::uint8_t> huge(too_many, s);
  } catch (const out_of_memory& e) {
    caught = true;
    CHECK(e.code() == cudaErrorMemoryAllocation);
    CHECK_FALSE(e.sticky());
    CHECK(e.requested_bytes() == too_many);
    CHECK(e.free_bytes() > 0);
    CHECK(e.free_bytes() <= m.total_bytes);
    const std::string what = e.what();
    INFO("message: " << what);
    CHECK(what.find(std::to_string(too_many) + " bytes") != std::string::npos);
    CHECK(what.find(std::to_string(e.free_bytes()) + " bytes free") != std::string::npos);
    CHECK(what.find("of " + std::to_string(m.total_bytes)) != std::string::npos);
  }
  REQUIRE(caught);
  CHECK(cudaGetLastError() == cudaSuccess);  // nothing sticky left behind

  // A workspace that cannot grow keeps what it had.
  workspace ws(s, 4096);
  void* before = ws.data();
  CHECK_THROWS_AS(ws.reserve(too_many), out_of_memory);
  CHECK(ws.capacity() == 4096);
  CHECK(ws.data() == before);

  // Allocate, compute, copy back and free, as before the failure.
  {
    auto ok = device_buffer<int>::from_host(std::vector<int>(1000003, 3), s);
    launch(add_one, config_for_elements(ok.size(), add_one), s, ok.span());
    for (int x : ok.to_host(s)) REQUIRE(x == 4);
  }
  s.synchronize();
  const memory_info after = device_memory_info();
  CHECK(after.total_bytes == m.total_bytes);
}

TEST_CASE("a workspace whose 1.5x growth would wrap size_t throws out_of_memory, not a small block",
          "[gpu][buffer][oom][api_error]") {
  stream s;
  workspace ws(s);
  // bytes + bytes / 2 is 2^64 + 2: a wrapping sum would allocate 2 bytes and return them.
  const std::size_t bytes = std::numeric_limits<std::size_t>::max() / 3 * 2 + 2;
  CHECK_THROWS_AS(ws.reserve(bytes), out_of_memory);
  CHECK(ws.capacity() == 0);
}

TEST_CASE("pinned host_buffer: page-locked, move-only, registered with the runtime", "[gpu][buffer]") {
  host_buffer<float> p(1 << 20, host_memory::pinned);
  CHECK(p.kind() == host_memory::pinned);
  cudaPointerAttributes attr{};
  REQUIRE(cudaPointerGetAttributes(&attr, p.data()) == cudaSuccess);
  CHECK(attr.type == cudaMemoryTypeHost);
  host_buffer<float> q(std::move(p));
  CHECK(q.size() == (1u << 20));
  CHECK(p.data() == nullptr);  // NOLINT
  host_buffer<float> pageable(16);
  REQUIRE(cudaPointerGetAttributes(&attr, pageable.data()) == cudaSuccess);
  CHECK(attr.type == cudaMemoryTypeUnregistered);
}

TEST_CASE("buffers are stream-ordered: allocate, fill and free on one stream without a sync", "[gpu][buffer]") {
  stream s;
  std::vector<int> expected(1 << 16);
  std::iota(expected.begin(), expected.end(), 0);
  host_buffer<int> out(expected.size(), host_memory::pinned);
  for (int round = 0; round < 50; ++round) {
    device_buffer<int> tmp(expected.size(), s);
    tmp.copy_from_host_async(make_host_span(expected), s);
    tmp.copy_to_host_async(out, s);
  }  // each tmp is freed on s after its copies
  s.synchronize();
  REQUIRE(std::equal(expected.begin(), expected.end(), out.begin()));
}
