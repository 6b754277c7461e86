// The host-side core compiled by g++ alone: errors, device query, spans and views, host
// buffers, copies, executors and timers. The [gpu] cases use the CUDA runtime from a
// host-compiled file, which needs no nvcc either.
#include "gpukit/gpukit.hpp"
#include "support/catch.hpp"

#include <cstring>
#include <numeric>
#include <thread>
#include <type_traits>
#include <variant>

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

using namespace gpukit;

TEST_CASE("cuda_error carries the call, the place and the error's name", "[core][error]") {
  bool caught = false;
  try {
    GPUKIT_CUDA_TRY(cudaErrorInvalidValue);
  } catch (const cuda_error& e) {
    caught = true;
    CHECK(e.code() == cudaErrorInvalidValue);
    const std::string what = e.what();
    CHECK(what.find("cudaErrorInvalidValue") != std::string::npos);
    CHECK(what.find("host_only_test.cpp:") != std::string::npos);
    CHECK(what.find("cudaErrorInvalidValue") != std::string::npos);
  }
  REQUIRE(caught);
  // Destructor-safe variant swallows the error instead of throwing.
  GPUKIT_CUDA_TRY_NOEXCEPT(cudaErrorInvalidValue);
}

TEST_CASE("out_of_memory is a cuda_error with the byte counts", "[core][error]") {
  const out_of_memory e(1234, 56, "msg");
  const cuda_error& base = e;
  CHECK(base.code() == cudaErrorMemoryAllocation);
  CHECK(e.requested_bytes() == 1234);
  CHECK(e.free_bytes() == 56);
}

TEST_CASE("device query never crashes and agrees with itself", "[core][device]") {
  const int n = device_count();
  CHECK(n >= 0);
  CHECK(is_cuda_available() == (n > 0));
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { (void)device_properties(n); },
                                                            {"'id'", std::to_string(n)});
  gpukit_test::require_throws_naming<std::invalid_argument>([] { (void)device_properties(-1); }, {"'id'", "-1"});
}

TEST_CASE("default_executor picks the GPU exactly when one is usable", "[core][executor]") {
  const any_executor exec = default_executor();
  CHECK(std::holds_alternative<cuda_executor>(exec) == is_cuda_available());
}

TEST_CASE("cpu_executor threads", "[core][executor]") {
  CHECK(cpu_executor{}.threads() >= 1);
  CHECK(cpu_executor{3}.threads() == 3);
  gpukit_test::require_throws_naming<std::invalid_argument>([] { cpu_executor bad(-2); }, {"'threads'", "-2"});
  static_assert(std::is_same_v<buffer_for<cpu_executor, float>, host_buffer<float>>);
  static_assert(std::is_same_v<buffer_for<cuda_executor, int>, device_buffer<int>>);
  static_assert(std::is_same_v<span_for<cuda_executor, const int>, device_span<const int>>);
}

TEST_CASE("spans: sizes, const conversion, subspans, overlap", "[core][span]") {
  std::vector<int> v(10);
  std::iota(v.begin(), v.end(), 0);
  host_span<int> s = make_host_span(v);
  host_span<const int> cs = s;
  CHECK(cs.size() == 10);
  CHECK(cs.size_bytes() == 40);
  CHECK(cs[3] == 3);
  CHECK(s.subspan(2, 3)[0] == 2);
  CHECK(detail::overlaps(s.subspan(0, 5), s.subspan(4, 2)));
  CHECK_FALSE(detail::overlaps(s.subspan(0, 4), s.subspan(4, 2)));
  CHECK_FALSE(detail::overlaps(s.subspan(0, 0), s));
  static_assert(!std::is_convertible_v<host_span<int>, device_span<int>>, "memory spaces must not mix");
  static_assert(!std::is_convertible_v<host_span<const int>, host_span<int>>, "constness must not be dropped");
}

TEST_CASE("views index images row-major and tensors NCHW", "[core][views]") {
  std::vector<int> img(6 * 4);
  std::iota(img.begin(), img.end(), 0);
  auto v2 = make_view2d(make_host_span(img), 6, 4);
  CHECK(v2(5, 0) == 5);
  CHECK(v2(0, 1) == 6);
  CHECK(v2(3, 2) == 15);
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { (void)make_view2d(make_host_span(img), 5, 4); },
                                                            {"24", "width 5", "height 4"});
  std::vector<float> t(2 * 3 * 4 * 5);
  auto v4 = make_view4d(make_host_span(t), 2, 3, 4, 5);
  CHECK(v4.index(1, 2, 3, 4) == t.size() - 1);
  CHECK(v4.index(0, 1, 0, 0) == 20);
  CHECK(v4.index(1, 0, 0, 0) == 60);
  CHECK_THROWS_AS(make_view4d(make_host_span(t), 2, 3, 4, 4), std::invalid_argument);
}

TEST_CASE("host_buffer: pageable, aligned, move-only", "[core][buffer]") {
  static_assert(!std::is_copy_constructible_v<host_buffer<float>>);
  static_assert(std::is_nothrow_move_constructible_v<host_buffer<float>>);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1001}}) {
    host_buffer<double> b(n);
    CHECK(b.size() == n);
    CHECK(b.bytes() == n * sizeof(double));
    if (n != 0) CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % host_buffer<double>::alignment == 0);
    host_buffer<double> moved(std::move(b));
    CHECK(moved.size() == n);
    CHECK(b.size() == 0);  // NOLINT: moved-from state is specified
    CHECK(b.data() == nullptr);
  }
  host_buffer<int> z(257, host_memory::pageable, zero_init);
  for (int x : z) REQUIRE(x == 0);
  gpukit_test::require_throws_naming<std::invalid_argument>(
      [] { host_buffer<double> huge(std::numeric_limits<std::size_t>::max() / 4); }, {"overflows"});
}

TEST_CASE("transfer between host spans needs no GPU and checks sizes", "[core][copy]") {
  std::vector<int> a(100), b(100, -1), c(99, -1);
  std::iota(a.begin(), a.end(), 7);
  transfer(make_host_span(b), make_host_span(std::as_const(a)));
  CHECK(a == b);
  gpukit_test::require_throws_naming<std::invalid_argument>(
      [&] { transfer(make_host_span(c), make_host_span(std::as_const(a))); }, {"'dst'", "99", "'src'", "100"});
  for (int x : c) REQUIRE(x == -1);  // nothing written
  auto s = make_host_span(a);
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { transfer(s.subspan(0, 10), host_span<const int>(s.subspan(5, 10))); },
                                                            {"overlap"});
}

TEST_CASE("cpu_timer measures wall time", "[core][timer]") {
  cpu_timer t = make_timer(cpu_executor{});
  t.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  t.stop();
  CHECK(t.elapsed_ms() >= 19.0);
  CHECK(t.elapsed_ms() < 5000.0);
}

// ---- GPU cases, still host-compiled: the runtime API needs no nvcc -----------------

TEST_CASE("device properties of a real GPU", "[gpu][core][device]") {
  const device_info info = device_properties(0);
  CHECK_FALSE(info.name.empty());
  CHECK(info.sm_count > 0);
  CHECK(info.compute_capability() >= 50);
  CHECK(info.total_memory_bytes > (std::size_t{1} << 30));
  CHECK(info.l2_cache_bytes > 0);
  CHECK(info.warp_size == 32);
  CHECK(current_sm_count() == info.sm_count);
  const memory_info m = device_memory_info();
  CHECK(m.free_bytes <= m.total_bytes);
  CHECK(m.total_bytes == info.total_memory_bytes);
}

TEST_CASE("device_buffer round trip from a host-compiled file", "[gpu][core][buffer]") {
  stream s;
  std::vector<std::int64_t> src(12345);
  auto gen = gpukit_test::rng(1);
  for (auto& x : src) x = static_cast<std::int64_t>(gen());
  auto d = device_buffer<std::int64_t>::from_host(src, s);
  CHECK(d.to_host(s) == src);
  const cuda_executor exec(s.view());
  auto b = make_buffer<float>(exec, 10);
  CHECK(b.size() == 10);
  CHECK(b.stream() == s.view());
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { cuda_executor bad(s.view(), device_count()); },
                                                            {"'device'", std::to_string(device_count())});
}
