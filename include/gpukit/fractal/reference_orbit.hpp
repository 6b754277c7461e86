// gpukit/fractal/reference_orbit.hpp — the arbitrary-precision side of deep zooms, on the
// host with MPFR: the reference orbit that perturbation measures every pixel against, and
// the plain per-pixel iteration that tests compare perturbation with.
//
// The orbit Z_0 = 0, Z_{n+1} = Z_n² + C is computed with as many bits as the zoom needs
// (deep_zoom.hpp chooses them from the pixel size) and stored rounded to double and to
// the extended-exponent form; each stored value is the correctly rounded MPFR value, so
// the orbit does not depend on anything but C, the precision and max_iters.
//
// Host-only header: compiles with a plain C++17 compiler; needs MPFR (detail/mpfr.hpp).
#pragma once

#include "gpukit/fractal/bla.hpp"
#include "gpukit/fractal/detail/mpfr.hpp"
#include "gpukit/fractal/extended_float.hpp"

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace gpukit::fractal {

/// Z_0 .. Z_length of one reference point.
struct reference_orbit {
  std::vector<dcomplex> z;    ///< in double (tiny values underflow to 0 or subnormals)
  std::vector<xcomplex> z_x;  ///< the same with extended exponents
  /// The last index stored: the first n with |Z_n|² >= 4 when the point escapes within
  /// max_iters iterations, max_iters otherwise.
  std::uint32_t length = 0;
  bool escaped = false;
};

namespace detail {

/// The correctly rounded extended form of re + i·im (both finite).
inline xcomplex to_xcomplex(mpfr_srcptr re, mpfr_srcptr im) {
  long e_re = 0, e_im = 0;
  // d · 2^e with |d| in [0.5, 1); 0 for a zero part.
  const double d_re = mpfr_get_d_2exp(&e_re, re, MPFR_RNDN);
  const double d_im = mpfr_get_d_2exp(&e_im, im, MPFR_RNDN);
  if (d_re == 0.0 && d_im == 0.0) return {};
  long e = d_re == 0.0 ? e_im : (d_im == 0.0 ? e_re : (e_re > e_im ? e_re : e_im));
  // The smaller part is scaled into the larger's exponent (only bits far below the larger
  // part's last one are lost).
  const double re_s = d_re == 0.0 ? 0.0 : std::ldexp(d_re, static_cast<int>(e_re - e));
  const double im_s = d_im == 0.0 ? 0.0 : std::ldexp(d_im, static_cast<int>(e_im - e));
  return normalized(re_s, im_s, static_cast<std::int32_t>(e));
}

/// z ← z² + c at one precision, keeping zr² and zi² for the escape test and the next step.
class mpfr_orbit {
 public:
  explicit mpfr_orbit(mpfr_prec_t bits) : zr_(bits), zi_(bits), x2_(bits), y2_(bits), t_(bits), mag_(bits) {
    for (mpfr_ptr v : {zr_.get(), zi_.get(), x2_.get(), y2_.get()}) mpfr_set_zero(v, 1);
  }
  /// One iteration: z = (zr² − zi² + c_re) + i·(2·zr·zi + c_im).
  void step(mpfr_srcptr c_re, mpfr_srcptr c_im) {
    mpfr_mul(t_.get(), zr_.get(), zi_.get(), MPFR_RNDN);
    mpfr_sub(zr_.get(), x2_.get(), y2_.get(), MPFR_RNDN);
    mpfr_add(zr_.get(), zr_.get(), c_re, MPFR_RNDN);
    mpfr_mul_2ui(t_.get(), t_.get(), 1, MPFR_RNDN);
    mpfr_add(zi_.get(), t_.get(), c_im, MPFR_RNDN);
    mpfr_sqr(x2_.get(), zr_.get(), MPFR_RNDN);
    mpfr_sqr(y2_.get(), zi_.get(), MPFR_RNDN);
  }
  /// |z|² >= 4.
  bool escaped() {
    mpfr_add(mag_.get(), x2_.get(), y2_.get(), MPFR_RNDN);
    return mpfr_cmp_ui(mag_.get(), 4) >= 0;
  }
  mpfr_srcptr re() const noexcept { return zr_.get(); }
  mpfr_srcptr im() const noexcept { return zi_.get(); }

 private:
  mpfr_number zr_, zi_, x2_, y2_, t_, mag_;
};

}  // namespace detail

/// The orbit of C = c_re + i·c_im, iterated with `bits` of precision for at most
/// `max_iters` (>= 1) iterations, stopping where it escapes (the article's test, |Z|² >= 4).
inline reference_orbit compute_reference_orbit(mpfr_srcptr c_re, mpfr_srcptr c_im, mpfr_prec_t bits,
                                               std::uint32_t max_iters) {
  reference_orbit r;
  r.z.reserve(static_cast<std::size_t>(max_iters) + 1);
  r.z_x.reserve(static_cast<std::size_t>(max_iters) + 1);
  r.z.push_back({});
  r.z_x.push_back({});
  detail::mpfr_orbit z(bits);
  for (std::uint32_t n = 1; n <= max_iters; ++n) {
    z.step(c_re, c_im);
    r.z.push_back({mpfr_get_d(z.re(), MPFR_RNDN), mpfr_get_d(z.im(), MPFR_RNDN)});
    r.z_x.push_back(detail::to_xcomplex(z.re(), z.im()));
    if (z.escaped()) {
      r.length = n;
      r.escaped = true;
      return r;
    }
  }
  r.length = max_iters;
  return r;
}

/// The seed article's count (the index of the iteration that escaped, or max_iters) of
/// the point c = c_re + i·c_im, iterated plainly with `bits` of precision: the yardstick
/// for perturbation. Costs max_iters multiplications at that precision; for tests.
inline std::uint32_t reference_count(mpfr_srcptr c_re, mpfr_srcptr c_im, mpfr_prec_t bits, std::uint32_t max_iters) {
  detail::mpfr_orbit z(bits);
  for (std::uint32_t i = 0; i < max_iters; ++i) {
    z.step(c_re, c_im);
    if (z.escaped()) return i;
  }
  return max_iters;
}

}  // namespace gpukit::fractal
