// gpukit/gpukit.cuh — the umbrella header: all of gpukit, GPU paths included. Needs nvcc.
#pragma once

#include "gpukit/gpukit.hpp"
#include "gpukit/core.cuh"
#include "gpukit/fractal.cuh"
#include "gpukit/nn.cuh"
#include "gpukit/train.cuh"
