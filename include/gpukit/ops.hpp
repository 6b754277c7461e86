// gpukit/ops.hpp — the elementwise ops, reductions and scans. Host-compilable; under nvcc
// each header also brings in its GPU path.
#pragma once

#include "gpukit/ops/elementwise.hpp"
#include "gpukit/ops/reduce.hpp"
#include "gpukit/ops/scan.hpp"
#include "gpukit/ops/transform.hpp"
