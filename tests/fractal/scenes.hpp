// Scenes the fractal tests share.
#pragma once

#include "gpukit/fractal/scene.hpp"

#include <cstddef>
#include <cstdint>

namespace fractal_test {

/// The seed article's scene: 1536 × 1024 over [-2, 1] × [-1, 1], 20 iterations, double.
inline gpukit::fractal::scene seed() { return gpukit::fractal::scene{}; }

/// A piece of seahorse valley: no cardioid interior, counts from tens to thousands.
inline gpukit::fractal::scene boundary(std::size_t size, std::uint32_t iters) {
  gpukit::fractal::scene s;
  s.view = gpukit::fractal::centered_view(gpukit::fractal::dd_from(-0.743643887037151),
                                          gpukit::fractal::dd_from(0.131825904205330), 0.004 / size, size, size);
  s.max_iters = iters;
  return s;
}

/// The whole set, with its interior (cardioid, bulbs, smaller components).
inline gpukit::fractal::scene full(std::size_t size, std::uint32_t iters) {
  gpukit::fractal::scene s;
  s.view = gpukit::fractal::bounds_view(-2.0, 1.0, -1.5, 1.5, size, size);
  s.max_iters = iters;
  return s;
}

/// A Julia set (c = -0.8 + 0.156i) over [-1.6, 1.6] × [-1, 1].
inline gpukit::fractal::scene julia(std::size_t width, std::size_t height, std::uint32_t iters) {
  gpukit::fractal::scene s;
  s.view = gpukit::fractal::bounds_view(-1.6, 1.6, -1.0, 1.0, width, height);
  s.max_iters = iters;
  s.julia = true;
  s.julia_re = gpukit::fractal::dd_from(-0.8);
  s.julia_im = gpukit::fractal::dd_from(0.156);
  return s;
}

/// A zoom to pixel size 2e-17, far past double's resolution near -0.74 (ulp 1.1e-16).
inline gpukit::fractal::scene deep(std::size_t size, std::uint32_t iters) {
  gpukit::fractal::scene s;
  s.view = gpukit::fractal::centered_view(gpukit::fractal::parse_dd("-0.743643887037158704752191506114774"),
                                          gpukit::fractal::parse_dd("0.131825904205311970493132056385139"), 2e-17,
                                          size, size);
  s.max_iters = iters;
  s.prec = gpukit::fractal::precision::dd;
  return s;
}

}  // namespace fractal_test
