// gpukit/fractal.hpp — the escape-time fractals in one include: scenes, the per-pixel
// iteration, double-double numbers, palettes, and the renderers' front ends with their CPU
// paths. Host-compilable; gpukit/fractal.cuh (nvcc) is the whole layer, GPU path included.
#pragma once

#include "gpukit/fractal/colour.hpp"
#include "gpukit/fractal/double_double.hpp"
#include "gpukit/fractal/escape_time.hpp"
#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/scene.hpp"
#include "gpukit/fractal/supersample.hpp"
