// gpukit/fractal.cuh — the escape-time fractals with their GPU path. Needs nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/fractal.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include gpukit/fractal.hpp for the CPU path"
#endif

#include "gpukit/fractal.hpp"
#include "gpukit/fractal/mandelbrot.cuh"
#include "gpukit/fractal/perturbation.cuh"
