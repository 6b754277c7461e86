// tests/support/catch.hpp — one include for Catch2 v2 (single header) and v3 (split
// headers), plus the checks every gpukit test uses.
#pragma once

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_get_random_seed.hpp>
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
using Catch::Approx;
namespace gpukit_test::detail {
inline unsigned catch_seed() { return Catch::getSeed(); }
}  // namespace gpukit_test::detail
#else
#include <catch2/catch.hpp>
namespace gpukit_test::detail {
inline unsigned catch_seed() { return Catch::rngSeed(); }
}  // namespace gpukit_test::detail
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <random>
#include <stdexcept>
#include <string>

namespace gpukit_test {

/// A generator seeded from Catch's --rng-seed (printed at start-up), so a failing random
/// case reproduces with the same seed; `salt` gives each use its own stream.
inline std::mt19937_64 rng(std::uint64_t salt = 0) {
  return std::mt19937_64(static_cast<std::uint64_t>(detail::catch_seed()) * 0x9E3779B97F4A7C15ull + salt);
}

/// The element count a test uses for one of its large cases (2^26, 2^28 elements): `n`, or
/// at most GPUKIT_TEST_MAX_ELEMENTS when that environment variable is set. The sanitizer
/// run (scripts/test-gpu-sanitized) sets it because compute-sanitizer slows kernels down
/// many times over: every case still runs, only with its large sizes scaled down.
inline std::size_t large_size(std::size_t n) {
  static const std::size_t cap = [] {
    const char* text = std::getenv("GPUKIT_TEST_MAX_ELEMENTS");
    if (text == nullptr || *text == '\0') return static_cast<std::size_t>(SIZE_MAX);
    char* end = nullptr;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (*end != '\0' || v == 0)
      throw std::invalid_argument(std::string("GPUKIT_TEST_MAX_ELEMENTS = '") + text + "' is not a positive integer");
    return static_cast<std::size_t>(v);
  }();
  return std::min(n, cap);
}

/// Runs `fn`, requires it to throw `Ex`, and requires the message to contain every one of
/// `fragments` (the argument's name, the offending values).
template <class Ex, class Fn>
void require_throws_naming(Fn&& fn, std::initializer_list<std::string> fragments) {
  bool thrown = false;
  try {
    fn();
  } catch (const Ex& e) {
    thrown = true;
    const std::string what = e.what();
    for (const auto& f : fragments) {
      INFO("message: " << what);
      INFO("expected to contain: " << f);
      CHECK(what.find(f) != std::string::npos);
    }
  }
  REQUIRE(thrown);
}

}  // namespace gpukit_test
