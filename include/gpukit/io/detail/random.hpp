// gpukit/io/detail/random.hpp — a small, portable random generator for shuffles and the
// synthetic dataset: the same seed gives the same numbers with every compiler and
// standard library (unlike std::shuffle and std::uniform_*_distribution).
#pragma once

#include <cstdint>
#include <limits>

namespace gpukit::io::detail {

/// splitmix64's output function: a well-mixed 64-bit value from any 64-bit input.
inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// The splitmix64 generator (Steele, Lea, Flood 2014).
class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    state_ += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, bound) without modulo bias; bound ≥ 1.
  std::uint64_t below(std::uint64_t bound) noexcept {
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t limit = max - max % bound;  // accept [0, limit): a whole number of bound-sized blocks
    std::uint64_t x;
    do x = next();
    while (x >= limit);
    return x % bound;
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1p-53; }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }

 private:
  std::uint64_t state_;
};

}  // namespace gpukit::io::detail
