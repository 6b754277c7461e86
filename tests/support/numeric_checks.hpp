// tests/support/numeric_checks.hpp — random inputs and tolerance checks for op tests.
//
// Tolerance rule: |got - ref| <= ulps · (ε(T) · scale + subnormal spacing of T), where ref is computed in double and
// scale is |ref| unless a test passes the magnitude of the terms (for sums and fused
// expressions, where cancellation makes |ref| meaningless). Integers must match exactly.
// On failure the first few mismatches are printed with their index.
#pragma once

#include "gpukit/ops/detail/numeric.hpp"
#include "support/catch.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace gpukit_test {

template <class T>
double as_double(T x) {
  if constexpr (gpukit::detail::is_reduced_float_v<T>) {
    return static_cast<double>(static_cast<float>(x));
  } else {
    return static_cast<double>(x);
  }
}

template <class T>
constexpr double epsilon() {
  if constexpr (std::is_same_v<T, gpukit::half>) return 0x1p-10;
  if constexpr (std::is_same_v<T, gpukit::bfloat16>) return 0x1p-7;
  if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::epsilon();
  return 0.0;
}

/// The spacing of T's subnormal numbers: below the normal range rounding error is absolute.
template <class T>
constexpr double subnormal_spacing() {
  if constexpr (std::is_same_v<T, gpukit::half>) return 0x1p-24;
  if constexpr (std::is_same_v<T, gpukit::bfloat16>) return 0x1p-133;
  if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::denorm_min();
  return 0.0;
}

/// splitmix64: a fast, well-mixed value per (seed, index), so large inputs fill in parallel.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// n values uniform in [lo, hi] (integers: whole numbers in that range).
template <class T>
std::vector<T> random_values(std::size_t n, double lo, double hi, std::uint64_t salt) {
  std::vector<T> v(n);
  const std::uint64_t seed = rng(salt)();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) {
    const double u = static_cast<double>(mix(seed ^ static_cast<std::uint64_t>(i)) >> 11) * 0x1p-53;
    double x = lo + u * (hi - lo);
    if constexpr (std::is_integral_v<T>) x = std::floor(x);
    v[i] = static_cast<T>(static_cast<std::conditional_t<gpukit::detail::is_reduced_float_v<T>, float, T>>(x));
  }
  return v;
}

/// Requires got[i] within ulps·ε·scale[i] of ref[i] (scale empty: |ref[i]|, at least the
/// smallest normal); integers exactly.
template <class T>
void require_close(const std::vector<T>& got, const std::vector<double>& ref, double ulps,
                   const std::vector<double>& scale = {}) {
  REQUIRE(got.size() == ref.size());
  std::size_t bad = 0;
  std::string report;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = as_double(got[i]);
    double tol = 0;
    if constexpr (!std::is_integral_v<T>) {
      const double s = scale.empty() ? std::fabs(ref[i]) : scale[i];
      tol = ulps * (epsilon<T>() * s + subnormal_spacing<T>());
    }
    const bool ok = std::isnan(ref[i]) ? std::isnan(g) : std::fabs(g - ref[i]) <= tol;
    if (!ok && ++bad <= 5) {
      char line[160];
      std::snprintf(line, sizeof line, "  [%zu] got %.17g, want %.17g (tolerance %.3g)\n", i, g, ref[i], tol);
      report += line;
    }
  }
  INFO("mismatches: " << bad << " of " << got.size() << "\n" << report);
  REQUIRE(bad == 0);
}

/// Bitwise equality of two results (same element type).
template <class T>
void require_identical(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  std::size_t bad = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = as_double(a[i]), y = as_double(b[i]);
    const bool same = x == y || (std::isnan(x) && std::isnan(y));
    if (!same && bad++ == 0) first = i;
  }
  INFO("first difference at " << first << ": " << (a.empty() ? 0.0 : as_double(a[first])) << " vs "
                              << (b.empty() ? 0.0 : as_double(b[first])));
  REQUIRE(bad == 0);
}

}  // namespace gpukit_test
