// gpukit/nn.cuh — the neural-network layers with their GPU paths. Needs nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include gpukit/nn.hpp for the CPU path"
#endif

#include "gpukit/nn.hpp"
