// gpukit/fractal/detail/mpfr.hpp — MPFR for the deep-zoom headers: the availability
// guard, an owning number, and the parser of decimal numbers.
//
// MPFR is an optional dependency of gpukit: CMake's gpukit::deep_zoom target (present when
// CMake finds MPFR, cmake/FindMPFR.cmake) links it and defines GPUKIT_HAVE_MPFR. Everything
// else in gpukit builds without it.
//
// Host-only header: compiles with a plain C++17 compiler.
#pragma once

#if !defined(GPUKIT_HAVE_MPFR)
#error "gpukit's deep-zoom headers (fractal/deep_zoom.hpp, fractal/reference_orbit.hpp) need MPFR: install it (Debian/Ubuntu: libmpfr-dev) and reconfigure, then link gpukit::deep_zoom, which defines GPUKIT_HAVE_MPFR; without CMake, define GPUKIT_HAVE_MPFR and link -lmpfr -lgmp"
#endif

#include <mpfr.h>

#include <cstddef>
#include <string>

namespace gpukit::fractal::detail {

/// One mpfr_t, initialised with a precision and cleared on destruction. Move-only.
class mpfr_number {
 public:
  explicit mpfr_number(mpfr_prec_t bits) { mpfr_init2(value_, bits); }
  mpfr_number(const mpfr_number&) = delete;
  mpfr_number& operator=(const mpfr_number&) = delete;
  mpfr_number(mpfr_number&& other) noexcept {
    mpfr_init2(value_, mpfr_get_prec(other.value_));
    mpfr_swap(value_, other.value_);
  }
  mpfr_number& operator=(mpfr_number&& other) noexcept {
    mpfr_swap(value_, other.value_);
    return *this;
  }
  ~mpfr_number() { mpfr_clear(value_); }

  mpfr_ptr get() noexcept { return value_; }
  mpfr_srcptr get() const noexcept { return value_; }

 private:
  mpfr_t value_;
};

/// Whether `text` is a plain decimal number: an optional sign, digits with at most one
/// point (at least one digit), an optional exponent e/E with an optional sign and digits.
/// No spaces, no hexadecimal, no inf or nan (which MPFR's own parser would accept).
inline bool is_decimal_number(const std::string& text) {
  std::size_t i = 0;
  const auto digit = [&](std::size_t k) { return k < text.size() && text[k] >= '0' && text[k] <= '9'; };
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  std::size_t digits = 0;
  for (; digit(i); ++i) ++digits;
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; digit(i); ++i) ++digits;
  }
  if (digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (!digit(i)) return false;
    for (; digit(i); ++i) {
    }
  }
  return i == text.size();
}

/// Sets `out` to the decimal number `text` rounded to out's precision. False (out
/// unspecified) unless `text` is a decimal number (is_decimal_number) with a finite value.
inline bool parse_decimal(mpfr_ptr out, const std::string& text) {
  if (!is_decimal_number(text)) return false;
  // mpfr_set_str wants no leading '+'.
  const char* start = text.c_str() + (text[0] == '+' ? 1 : 0);
  if (mpfr_set_str(out, start, 10, MPFR_RNDN) != 0) return false;
  return mpfr_number_p(out) != 0;
}

}  // namespace gpukit::fractal::detail
