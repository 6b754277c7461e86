// gpukit/train.cuh — the training layer with its GPU paths. Needs nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/train.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include gpukit/train.hpp for the CPU path"
#endif

#include "gpukit/train.hpp"
