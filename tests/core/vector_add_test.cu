// The seed's first demo: the article's values, then GPU against the CPU loop on random
// inputs at sizes 0, 1, odd and large.
#include "vector_add/vector_add.cuh"
#include "support/catch.hpp"

#include <vector>

using namespace gpukit;

TEST_CASE("vector_add on the CPU gives the article's C", "[vector_add]") {
  const std::vector<float> a{1, 2, 3, 4, 5, 6}, b{7, 8, 9, 10, 11, 12};
  std::vector<float> c(6, -1.0f);
  vector_add_demo::vector_add(cpu_executor{}, make_host_span(a), make_host_span(b), make_host_span(c));
  CHECK(c == std::vector<float>{8, 10, 12, 14, 16, 18});
  std::vector<float> short_c(5, -1.0f);
  gpukit_test::require_throws_naming<std::invalid_argument>(
      [&] { vector_add_demo::vector_add(cpu_executor{}, make_host_span(a), make_host_span(b), make_host_span(short_c)); },
      {"'c'", "6, 6, 5"});
  for (float x : short_c) REQUIRE(x == -1.0f);
}

TEST_CASE("vector_add on the GPU matches the CPU loop", "[gpu][vector_add]") {
  stream s;
  const cuda_executor exec(s.view());
  const std::size_t n = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{6}, std::size_t{1025},
                                 std::size_t{1000003}, std::size_t{1} << 26);
  CAPTURE(n);
  auto gen = gpukit_test::rng(n);
  std::uniform_real_distribution<float> dist(-1e3f, 1e3f);
  std::vector<float> a(n), b(n), expected(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = dist(gen);
    b[i] = dist(gen);
  }
  vector_add_demo::vector_add(cpu_executor{}, make_host_span(a), make_host_span(b), make_host_span(expected));
  auto da = device_buffer<float>::from_host(a, s);
  auto db = device_buffer<float>::from_host(b, s);
  device_buffer<float> dc(n, s);
  if (n != 0) REQUIRE(cudaMemsetAsync(dc.data(), 0xff, dc.bytes(), s) == cudaSuccess);  // poison: NaN everywhere
  vector_add_demo::vector_add(exec, da, db, dc);
  REQUIRE(dc.to_host(s) == expected);  // one rounding of a + b on both sides: bit-exact
  // in place: c aliases a
  vector_add_demo::vector_add(exec, da, db, da);
  REQUIRE(da.to_host(s) == expected);
}
