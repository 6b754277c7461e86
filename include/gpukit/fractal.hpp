// gpukit/fractal.hpp — the escape-time fractals in one include: scenes, the per-pixel
// iteration, double-double numbers, palettes, and the renderers' front ends with their CPU
// paths; perturbation and its extended-exponent numbers; and, where gpukit::deep_zoom
// provides MPFR (GPUKIT_HAVE_MPFR), the deep-zoom front ends. Host-compilable;
// gpukit/fractal.cuh (nvcc) is the whole layer, GPU path included.
#pragma once

#include "gpukit/fractal/bla.hpp"
#include "gpukit/fractal/colour.hpp"
#include "gpukit/fractal/double_double.hpp"
#include "gpukit/fractal/escape_time.hpp"
#include "gpukit/fractal/extended_float.hpp"
#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/perturbation.hpp"
#include "gpukit/fractal/scene.hpp"
#include "gpukit/fractal/supersample.hpp"
#if defined(GPUKIT_HAVE_MPFR)
#include "gpukit/fractal/deep_zoom.hpp"
#include "gpukit/fractal/reference_orbit.hpp"
#endif
