// gpukit/fractal/double_double.hpp — double-double numbers: an unevaluated sum hi + lo of
// two doubles with |lo| <= ulp(hi)/2, about 106 significant bits (~32 decimal digits).
//
// Deep zooms need them: below a pixel size of ~1e-13 neighbouring pixels of a double image
// collapse onto the same coordinate and the picture breaks into blocks. Every operation
// here is built from the exactly-rounded helpers of strict_fp.hpp and from an exact product
// (an FMA on the GPU and on FMA hosts, Dekker's splitting elsewhere; both give the same
// exact error term), so the CPU and the GPU produce the same bits.
//
// Host-only header: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/fractal/detail/strict_fp.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

GPUKIT_STRICT_FP_BEGIN

namespace gpukit::fractal {

/// hi + lo, normalised so that hi = fl(hi + lo). Trivially copyable: passes to kernels.
struct dd_real {
  double hi = 0;
  double lo = 0;
};

namespace detail {

/// a + b = s + e exactly (Knuth).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real two_sum(double a, double b) {
  const double s = add(a, b);
  const double bb = sub(s, a);
  const double e = add(sub(a, sub(s, bb)), sub(b, bb));
  return {s, e};
}

/// a + b = s + e exactly, given |a| >= |b| or a == 0.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real quick_two_sum(double a, double b) {
  const double s = add(a, b);
  return {s, sub(b, sub(s, a))};
}

/// a * b = p + e exactly (no overflow: |a|, |b| < 2^996).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real two_prod(double a, double b) {
  const double p = mul(a, b);
#if GPUKIT_DEVICE_PASS
  return {p, __fma_rn(a, b, -p)};
#elif defined(__FP_FAST_FMA)
  return {p, std::fma(a, b, -p)};
#else
  // Dekker: split each factor into two 26-bit halves whose products are exact.
  constexpr double splitter = 134217729.0;  // 2^27 + 1
  const double ta = mul(splitter, a), tb = mul(splitter, b);
  const double ah = sub(ta, sub(ta, a)), al = sub(a, ah);
  const double bh = sub(tb, sub(tb, b)), bl = sub(b, bh);
  const double e = add(add(add(sub(mul(ah, bh), p), mul(ah, bl)), mul(al, bh)), mul(al, bl));
  return {p, e};
#endif
}

}  // namespace detail

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real dd_from(double v) { return {v, 0.0}; }

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real operator-(dd_real a) { return {-a.hi, -a.lo}; }

/// Sum with an error of about 2 ulps of the result (the "accurate" double-double addition,
/// which stays accurate under cancellation — z² − y² + c cancels all the time).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real operator+(dd_real a, dd_real b) {
  using namespace detail;
  dd_real s = two_sum(a.hi, b.hi);
  const dd_real t = two_sum(a.lo, b.lo);
  s.lo = add(s.lo, t.hi);
  s = quick_two_sum(s.hi, s.lo);
  s.lo = add(s.lo, t.lo);
  return quick_two_sum(s.hi, s.lo);
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real operator-(dd_real a, dd_real b) { return a + (-b); }

/// Dekker's sum: about half the operations of operator+, with an error of ~2^-104 of
/// max(|a|, |b|) rather than of |a + b| — no worse than the rounding the operands already
/// carry, which is why the iteration uses it.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real add_fast(dd_real a, dd_real b) {
  using namespace detail;
  dd_real s = two_sum(a.hi, b.hi);
  s.lo = add(s.lo, add(a.lo, b.lo));
  return quick_two_sum(s.hi, s.lo);
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real sub_fast(dd_real a, dd_real b) { return add_fast(a, -b); }

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real operator*(dd_real a, dd_real b) {
  using namespace detail;
  dd_real p = two_prod(a.hi, b.hi);
  p.lo = add(p.lo, add(mul(a.hi, b.lo), mul(a.lo, b.hi)));
  return quick_two_sum(p.hi, p.lo);
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real operator*(dd_real a, double b) {
  using namespace detail;
  dd_real p = two_prod(a.hi, b);
  p.lo = add(p.lo, mul(a.lo, b));
  return quick_two_sum(p.hi, p.lo);
}

/// a², cheaper than a * a.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real sqr(dd_real a) {
  using namespace detail;
  dd_real p = two_prod(a.hi, a.hi);
  const double cross = mul(a.hi, a.lo);
  p.lo = add(p.lo, add(cross, cross));
  return quick_two_sum(p.hi, p.lo);
}

/// 2a, exact.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real twice(dd_real a) { return {detail::add(a.hi, a.hi), detail::add(a.lo, a.lo)}; }

/// a >= v for a double v, comparing the exact value hi + lo.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool greater_equal(dd_real a, double v) {
  return a.hi > v || (a.hi == v && a.lo >= 0.0);
}

/// a / b for a double b (host use: pixel sizes). Three quotient digits, renormalised.
inline dd_real operator/(dd_real a, double b) {
  const double q1 = a.hi / b;
  dd_real r = a - detail::two_prod(q1, b);
  const double q2 = r.hi / b;
  r = r - detail::two_prod(q2, b);
  const double q3 = r.hi / b;
  dd_real q = detail::quick_two_sum(q1, q2);
  return q + dd_from(q3);
}

/// The double-double nearest (to ~1e-31 relative) to a decimal number such as
/// "-0.743643887037158704752191506114774" or "1.5e-3". Throws std::invalid_argument for
/// anything else (the whole text must be the number).
inline dd_real parse_dd(const std::string& text) {
  std::size_t i = 0;
  const auto fail = [&] {
    throw std::invalid_argument("gpukit::fractal::parse_dd: '" + text + "' is not a decimal number");
  };
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  dd_real v{};
  int digits = 0, exponent = 0;
  bool point = false;
  for (; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch >= '0' && ch <= '9') {
      v = v * 10.0 + dd_from(ch - '0');
      ++digits;
      if (point) --exponent;
    } else if (ch == '.' && !point) {
      point = true;
    } else {
      break;
    }
  }
  if (digits == 0) fail();
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    std::size_t used = 0;
    int e = 0;
    try {
      e = std::stoi(text.substr(i), &used);
    } catch (const std::exception&) {
      fail();
    }
    if (used == 0) fail();
    i += used;
    exponent += e;
  }
  if (i != text.size() || std::abs(exponent) > 400) fail();
  for (; exponent > 0; --exponent) v = v * 10.0;
  for (; exponent < 0; ++exponent) v = v / 10.0;
  if (!std::isfinite(v.hi)) fail();
  return negative ? -v : v;
}

/// `digits` significant decimal digits of a (scientific notation), for printing.
inline std::string to_string(dd_real a, int digits = 32) {
  if (!std::isfinite(a.hi)) return std::to_string(a.hi);
  if (a.hi == 0.0) return "0";
  std::string out = a.hi < 0 ? "-" : "";
  if (a.hi < 0) a = -a;
  int e10 = static_cast<int>(std::floor(std::log10(a.hi)));
  dd_real m = a;
  for (int k = 0; k < e10; ++k) m = m / 10.0;
  for (int k = 0; k > e10; --k) m = m * 10.0;
  while (m.hi >= 10.0) {  // log10 may be off by one at powers of ten
    m = m / 10.0;
    ++e10;
  }
  while (m.hi < 1.0) {
    m = m * 10.0;
    --e10;
  }
  std::string mant;
  for (int k = 0; k < digits; ++k) {
    int d = static_cast<int>(std::floor(m.hi));
    if (d < 0) d = 0;
    if (d > 9) d = 9;
    mant += static_cast<char>('0' + d);
    m = (m - dd_from(d)) * 10.0;
  }
  out += mant.substr(0, 1) + "." + mant.substr(1);
  char exp_text[16];
  std::snprintf(exp_text, sizeof exp_text, "e%+d", e10);
  return out + exp_text;
}

}  // namespace gpukit::fractal

GPUKIT_STRICT_FP_END
