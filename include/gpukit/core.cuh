// gpukit/core.cuh — the whole core layer, launch helpers included. Needs nvcc.
#pragma once

#include "gpukit/core.hpp"
#include "gpukit/core/launch.cuh"
