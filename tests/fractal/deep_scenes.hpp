// Deep-zoom scenes the fractal tests share (deep_zoom_test.cpp, deep_zoom_gpu_test.cu).
#pragma once

#include "gpukit/fractal/deep_zoom.hpp"

#include <cstddef>
#include <cstdint>

namespace fractal_test {

/// The Misiurewicz point M_{30,4} of seahorse valley (z_34 = z_30: the orbit lands on a
/// repelling 4-cycle of multiplier 1.33·e^{0.945i}), found by Newton's method on
/// z_34(c) − z_30(c) at 420 digits and cut to 340. Around it every depth shows spirals, and
/// counts grow by about 4 / log2(1.33) = 9.7 iterations per halving of the pixel size:
/// ~1800–2700 at 1e-60, ~10200–11100 at 1e-320.
inline constexpr const char* misiurewicz_re =
    "-0.743291890852430202931624325972510757176348558120776581832330454160928347257478597718653"
    "257133197437231201536472588305583929644073689764431555478587836718290861127025145634909347"
    "572378244778589787013649966685461677089362429706374182778141527564435372568872765057908790"
    "8737514720453112041546204462935972057395183688934663596585683618423016004";
inline constexpr const char* misiurewicz_im =
    "0.1312405523087976047708459065814781430771141511585840067313339426441224485804463828704809"
    "547062528759706770520637320224159702666378411381293727697380576634323825795329443433122163"
    "779881244894544298238870860082516466489520041039964920179255382099101070060458043609646389"
    "324737321675437633675972715936061682899264387492378905313385957335812736";

/// The seed of the double-double tests (scenes.hpp's deep()), 33 digits: at 1e-20 a spiral
/// with a minibrot at its centre (counts 8050 to max_iters).
inline constexpr const char* seahorse_re = "-0.743643887037158704752191506114774";
inline constexpr const char* seahorse_im = "0.131825904205311970493132056385139";

inline gpukit::fractal::deep_scene deep_at(const char* re, const char* im, const char* pixel_size, std::size_t size,
                                           std::uint32_t iters,
                                           gpukit::fractal::zoom_strategy z = gpukit::fractal::zoom_strategy::automatic) {
  gpukit::fractal::deep_scene s;
  s.center_re = re;
  s.center_im = im;
  s.pixel_size = pixel_size;
  s.width = size;
  s.height = size;
  s.max_iters = iters;
  s.strategy = z;
  return s;
}

/// Pixel size 1e-20, double deltas.
inline gpukit::fractal::deep_scene deep_1e20(std::size_t size = 48) {
  return deep_at(seahorse_re, seahorse_im, "1e-20", size, 20000);
}
/// Pixel size 1e-60, double deltas.
inline gpukit::fractal::deep_scene deep_1e60(std::size_t size = 48) {
  return deep_at(misiurewicz_re, misiurewicz_im, "1e-60", size, 5000);
}
/// Pixel size 1e-320, past double's range: extended deltas.
inline gpukit::fractal::deep_scene deep_1e320(std::size_t size = 48) {
  return deep_at(misiurewicz_re, misiurewicz_im, "1e-320", size, 20000);
}

/// Built to glitch: at 1e-17 the seahorse spiral's arms pass so close to 0 that, without
/// rebasing, a tenth of the pixels lose their digits in z = Z + δ (Pauldelbrot's criterion
/// fires for them) and come out with wrong counts.
inline gpukit::fractal::deep_scene glitching(std::size_t size = 32) {
  return deep_at(seahorse_re, seahorse_im, "1e-17", size, 20000, gpukit::fractal::zoom_strategy::perturbation);
}

}  // namespace fractal_test
