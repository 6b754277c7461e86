// gpukit/nn/detail/conv_phase.hpp — the stride phases of a convolution's input gradient,
// shared by the CPU and GPU paths.
//
// Input row iy receives from output row oy through tap ky when iy + pad_h = oy·s + ky·d
// (stride s, dilation d). So the rows with (iy + pad_h) mod s = ry (one phase) meet only the
// taps with ky·d ≡ ry (mod s): with q = gcd(s, d), none unless q divides ry, else every
// (s / q)-th tap from the first such one, ky0; and one step along those taps moves d / q
// output rows. Each phase is then a dense product over its own taps: no multiply is spent on
// a tap that misses. At dilation 1 the taps of phase ry are ry, ry + s, ... and dz moves one
// row per tap; at stride 1 there is one phase with every tap. Columns likewise.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include <numeric>

namespace gpukit::nn::detail {

/// One stride phase of the input gradient: the input pixels (iy, ix) with
/// (iy + pad_h) % stride == ry and (ix + pad_w) % stride == rx. The taps that reach them are
/// ky = ky0 + tap_step·a (a < tky) and kx = kx0 + tap_step·b (b < tkx), and tap (a, b) reads
/// dz at (cy + jy - dz_step·a, cx + jx - dz_step·b) for the phase's pixel (jy, jx); ny x nx
/// such pixels per image, the first at (iy_first, ix_first), pixel (jy, jx) at
/// (iy_first + stride·jy, ix_first + stride·jx).
struct dgrad_phase {
  int ry = 0, rx = 0, ky0 = 0, kx0 = 0, tap_step = 1, dz_step = 1, tky = 0, tkx = 0;
  int iy_first = 0, ix_first = 0, ny = 0, nx = 0, cy = 0, cx = 0;
  long long pixels(int images) const noexcept { return static_cast<long long>(images) * ny * nx; }
  long long taps() const noexcept { return static_cast<long long>(tky) * tkx; }
};

/// Phase (ry, rx), 0 <= ry, rx < g.stride, of geometry g (fields stride, dil, kh, kw, pad_h,
/// pad_w, h, w).
template <class Geometry>
dgrad_phase make_dgrad_phase(const Geometry& g, int ry, int rx) {
  const int s = g.stride, d = g.dil, q = std::gcd(s, d);
  dgrad_phase ph;
  ph.ry = ry, ph.rx = rx, ph.tap_step = s / q, ph.dz_step = d / q;
  // The first tap of a residue: taps repeat their residue every tap_step, so one of the
  // first tap_step taps has it, or none does.
  const auto first_tap = [&](int r, int k) {
    for (int t = 0; t < k && t < ph.tap_step; ++t)
      if ((static_cast<long long>(t) * d) % s == r) return t;
    return -1;
  };
  const int ky0 = first_tap(ry, g.kh), kx0 = first_tap(rx, g.kw);
  ph.ky0 = ky0 < 0 ? 0 : ky0, ph.kx0 = kx0 < 0 ? 0 : kx0;
  ph.tky = ky0 < 0 ? 0 : (g.kh - 1 - ky0) / ph.tap_step + 1;
  ph.tkx = kx0 < 0 ? 0 : (g.kw - 1 - kx0) / ph.tap_step + 1;
  ph.iy_first = ((ry - g.pad_h) % s + s) % s;
  ph.ix_first = ((rx - g.pad_w) % s + s) % s;
  ph.ny = ph.iy_first < g.h ? (g.h - 1 - ph.iy_first) / s + 1 : 0;
  ph.nx = ph.ix_first < g.w ? (g.w - 1 - ph.ix_first) / s + 1 : 0;
  // Exact divisions: iy_first + pad_h ≡ ry ≡ ky0·d (mod s).
  ph.cy = (ph.iy_first + g.pad_h - ph.ky0 * d) / s;
  ph.cx = (ph.ix_first + g.pad_w - ph.kx0 * d) / s;
  return ph;
}

}  // namespace gpukit::nn::detail
