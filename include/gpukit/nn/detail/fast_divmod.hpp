// gpukit/nn/detail/fast_divmod.hpp — division by a divisor fixed on the host, as a multiply
// and a shift on the device (Granlund and Montgomery's method): the implicit-GEMM loaders
// split flat indices into (image, row, column) and (channel, tap row, tap column) once per
// tile, and a hardware-free integer division costs about twenty instructions each time.
//
// For 0 <= n < 2^31 and 1 <= d < 2^31: with p = 31 + ceil(log2 d) and m = ceil(2^p / d)
// (which fits in 32 bits), n / d = (n · m) >> p exactly. d = 1 is special-cased.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/core/error.hpp"

#include <cstdint>
#include <string>

namespace gpukit::nn::detail {

struct fast_divmod {
  using index = int;
  int divisor = 1;
  unsigned multiplier = 0;
  unsigned shift = 0;  // p - 32

  fast_divmod() = default;
  explicit fast_divmod(int d) : divisor(d) {
    gpukit::detail::require(d >= 1, "gpukit::nn::detail::fast_divmod",
                            "argument 'd' = " + std::to_string(d) + " must be at least 1");
    if (d == 1) return;
    unsigned log2_ceil = 0;
    while ((std::uint64_t{1} << log2_ceil) < static_cast<std::uint64_t>(d)) ++log2_ceil;
    const unsigned p = 31 + log2_ceil;
    multiplier = static_cast<unsigned>(((std::uint64_t{1} << p) + static_cast<std::uint64_t>(d) - 1) /
                                       static_cast<std::uint64_t>(d));
    shift = p - 32;
  }

  /// n / divisor for 0 <= n < 2^31.
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE int div(int n) const {
    if (divisor == 1) return n;
#if GPUKIT_DEVICE_PASS
    return static_cast<int>(__umulhi(static_cast<unsigned>(n), multiplier) >> shift);
#else
    return static_cast<int>(((static_cast<std::uint64_t>(static_cast<unsigned>(n)) * multiplier) >> 32) >> shift);
#endif
  }
  /// q = n / divisor and r = n % divisor.
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void divmod(int n, int& q, int& r) const {
    q = div(n);
    r = n - q * divisor;
  }
};

/// The same interface with plain 64-bit division, for flat indices of tensors too large
/// for fast_divmod (kernels are templated on the divider: fast where every index fits).
struct wide_divmod {
  using index = long long;
  long long divisor = 1;

  wide_divmod() = default;
  explicit wide_divmod(long long d) : divisor(d) {
    gpukit::detail::require(d >= 1, "gpukit::nn::detail::wide_divmod",
                            "argument 'd' = " + std::to_string(d) + " must be at least 1");
  }
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE long long div(long long n) const { return n / divisor; }
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void divmod(long long n, long long& q, long long& r) const {
    q = n / divisor;
    r = n - q * divisor;
  }
};

/// Whether flat indices up to `count` may use fast_divmod (int arithmetic): below 2^30, so
/// that a grid-stride loop's next index cannot overflow either.
constexpr bool fits_fast_divmod(long long count) noexcept { return count <= (1LL << 30); }

}  // namespace gpukit::nn::detail
