// gpukit/fractal/extended_float.hpp — floating-point numbers with a double's mantissa and a
// 32-bit exponent, for the perturbation deltas of zooms past double's exponent range
// (pixel sizes below ~1e-290, where the deltas and their squares underflow).
//
//   xfloat    m · 2^e, |m| in [1, 2) (or zero): magnitudes, validity radii
//   xcomplex  (re + i·im) · 2^e with one exponent for both parts, max(|re|, |im|) in
//             [1, 2) (or zero): the deltas and the approximation coefficients. One shared
//             exponent halves the exponent work of every product and sum; the smaller part
//             loses nothing that matters (it is below 2^-1022 of the larger only when it
//             is negligible beside it).
//
// Every operation is a fixed sequence of correctly rounded double operations and integer
// operations on the bits, so the CPU and the GPU produce the same bits (strict_fp.hpp
// keeps the compilers from fusing the products and sums). Zero is the mantissa 0 with
// the exponent `zero_exponent`, far below every other exponent, so that sums pick the
// other operand without a branch of their own.
//
// Range: exponents of non-zero values stay within ±2^29 (the deep-zoom front end refuses
// pixel sizes that could leave it), so sums of two exponents never overflow an int32.
//
// Host-only header: compiles with a plain C++17 compiler; every function is also a
// device function.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/fractal/detail/strict_fp.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

GPUKIT_STRICT_FP_BEGIN

namespace gpukit::fractal {

/// The exponent of zero: below every exponent a non-zero value can have.
inline constexpr std::int32_t zero_exponent = -(1 << 30);

/// m · 2^e with |m| in [1, 2), or m = 0 with e = zero_exponent. Trivially copyable.
struct xfloat {
  double m = 0.0;
  std::int32_t e = zero_exponent;
};

/// (re + i·im) · 2^e with max(|re|, |im|) in [1, 2), or re = im = 0 with e = zero_exponent.
struct xcomplex {
  double re = 0.0;
  double im = 0.0;
  std::int32_t e = zero_exponent;
};

namespace detail {

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double from_bits(std::uint64_t u) {
#if GPUKIT_DEVICE_PASS
  return __longlong_as_double(static_cast<long long>(u));
#else
  double v;
  std::memcpy(&v, &u, sizeof v);
  return v;
#endif
}

/// The biased exponent field of v (0 for zero and subnormals).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::int32_t exponent_field(double v) {
  return static_cast<std::int32_t>((bits(v) >> 52) & 0x7ffu);
}

/// v · 2^-k for a normal v, by moving the exponent field: exact, and flushed to zero when
/// the result would be subnormal (callers use it only where such a value is negligible).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double shift_down(double v, std::int32_t k) {
  const std::uint64_t u = bits(v);
  const std::int32_t field = static_cast<std::int32_t>((u >> 52) & 0x7ffu) - k;
  if (field <= 0 || v == 0.0) return 0.0;
  return from_bits((u & ~(std::uint64_t{0x7ff} << 52)) | (static_cast<std::uint64_t>(field) << 52));
}

/// 2^k as a double, for k in [-1022, 1023].
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double power_of_two(std::int32_t k) {
  return from_bits(static_cast<std::uint64_t>(k + 1023) << 52);
}

/// Subnormal inputs scaled into the normal range first (exactly).
inline constexpr double subnormal_limit = 0x1p-960;
inline constexpr double subnormal_scale = 0x1p600;

}  // namespace detail

// --- real ------------------------------------------------------------------------------

/// m · 2^e brought to the normal form (m finite).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat normalized(double m, std::int32_t e) {
  using namespace detail;
  if (m == 0.0) return {};
  if (std::fabs(m) < subnormal_limit) {
    m = mul(m, subnormal_scale);
    e -= 600;
  }
  const std::int32_t k = exponent_field(m) - 1023;
  return {shift_down(m, k), e + k};
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat to_xfloat(double v) { return normalized(v, 0); }

/// The nearest double: 0 below double's range (subnormals where they arise), ±inf above.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double to_double(xfloat x) {
  using namespace detail;
  if (x.e < -1100) return 0.0 * x.m;
  if (x.e > 1100) return mul(x.m, 0x1p1023) * 0x1p1023;  // inf of the right sign
  // Two exact steps: 2^e itself may be out of double's range while m · 2^e is not.
  const std::int32_t half = x.e / 2;
  return mul(mul(x.m, power_of_two(half)), power_of_two(x.e - half));
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool is_zero(xfloat x) { return x.m == 0.0; }

/// a < b for non-negative a and b (what the iteration compares: squared magnitudes).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool less_nonnegative(xfloat a, xfloat b) {
  if (b.m == 0.0) return false;
  if (a.m == 0.0) return true;
  return a.e < b.e || (a.e == b.e && a.m < b.m);
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat operator*(xfloat a, xfloat b) {
  return normalized(detail::mul(a.m, b.m), a.e + b.e);
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat operator+(xfloat a, xfloat b) {
  using namespace detail;
  if (a.e < b.e) {
    const xfloat t = a;
    a = b;
    b = t;
  }
  const std::int32_t d = a.e - b.e;
  if (d > 60) return a;  // b is below half an ulp of a
  return normalized(add(a.m, shift_down(b.m, d)), a.e);
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat operator-(xfloat a) { return {-a.m, a.e}; }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat operator-(xfloat a, xfloat b) { return a + (-b); }

/// a · 2^k, exact.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat scaled(xfloat a, std::int32_t k) {
  return a.m == 0.0 ? a : xfloat{a.m, a.e + k};
}

// --- complex ---------------------------------------------------------------------------

/// (re + i·im) · 2^e brought to the normal form (re, im finite).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex normalized(double re, double im, std::int32_t e) {
  using namespace detail;
  const double big = std::fabs(re) > std::fabs(im) ? std::fabs(re) : std::fabs(im);
  if (big == 0.0) return {};
  if (big < subnormal_limit) {
    re = mul(re, subnormal_scale);
    im = mul(im, subnormal_scale);
    e -= 600;
  }
  const double top = std::fabs(re) > std::fabs(im) ? re : im;
  const std::int32_t k = exponent_field(top) - 1023;
  return {shift_down(re, k), shift_down(im, k), e + k};
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex to_xcomplex(double re, double im) { return normalized(re, im, 0); }

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool is_zero(const xcomplex& z) { return z.re == 0.0 && z.im == 0.0; }

/// The parts as doubles (0 below double's range, ±inf above).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double real_double(const xcomplex& z) { return to_double(xfloat{z.re, z.e}); }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double imag_double(const xcomplex& z) { return to_double(xfloat{z.im, z.e}); }

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex operator+(xcomplex a, xcomplex b) {
  using namespace detail;
  if (a.e < b.e) {
    const xcomplex t = a;
    a = b;
    b = t;
  }
  const std::int32_t d = a.e - b.e;
  if (d > 60) return a;  // b is below half an ulp of a's larger part
  return normalized(add(a.re, shift_down(b.re, d)), add(a.im, shift_down(b.im, d)), a.e);
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex operator-(const xcomplex& a) { return {-a.re, -a.im, a.e}; }

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex operator*(const xcomplex& a, const xcomplex& b) {
  using namespace detail;
  return normalized(sub(mul(a.re, b.re), mul(a.im, b.im)), add(mul(a.re, b.im), mul(a.im, b.re)), a.e + b.e);
}

/// a², cheaper than a * a.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex sqr(const xcomplex& a) {
  using namespace detail;
  const double t = mul(a.re, a.im);
  return normalized(sub(mul(a.re, a.re), mul(a.im, a.im)), add(t, t), 2 * a.e);
}

/// a · 2^k, exact.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex scaled(const xcomplex& a, std::int32_t k) {
  return is_zero(a) ? a : xcomplex{a.re, a.im, a.e + k};
}

/// a · b for a real b.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex operator*(const xcomplex& a, xfloat b) {
  using namespace detail;
  return normalized(mul(a.re, b.m), mul(a.im, b.m), a.e + b.e);
}

/// |a|², as an xfloat.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat norm(const xcomplex& a) {
  using namespace detail;
  return normalized(add(mul(a.re, a.re), mul(a.im, a.im)), 2 * a.e);
}

// --- host-only helpers (building tables, printing) --------------------------------------

/// The square root of a >= 0.
inline xfloat xsqrt(xfloat a) {
  if (a.m == 0.0) return a;
  const std::int32_t odd = a.e & 1;  // also right for negative e (two's complement)
  return normalized(std::sqrt(odd ? 2.0 * a.m : a.m), (a.e - odd) / 2);
}

/// a / b for b != 0.
inline xfloat operator/(xfloat a, xfloat b) { return normalized(a.m / b.m, a.e - b.e); }

/// |a|.
inline xfloat magnitude(const xcomplex& a) { return xsqrt(norm(a)); }

/// The larger of two non-negative values.
inline xfloat max_nonnegative(xfloat a, xfloat b) { return less_nonnegative(a, b) ? b : a; }
inline xfloat min_nonnegative(xfloat a, xfloat b) { return less_nonnegative(a, b) ? a : b; }

/// log2|a| for a != 0 (to print magnitudes and choose precisions).
inline double log2_abs(xfloat a) { return std::log2(std::fabs(a.m)) + a.e; }

}  // namespace gpukit::fractal

GPUKIT_STRICT_FP_END
