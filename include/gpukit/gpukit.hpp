// gpukit/gpukit.hpp — everything gpukit offers to a host-only (g++) translation unit:
// the core layer, the CPU paths of the ops, the fractals, the nn layers and training, and
// the io layer.
#pragma once

#include "gpukit/core.hpp"
#include "gpukit/ops.hpp"
#include "gpukit/fractal.hpp"
#include "gpukit/io.hpp"
#include "gpukit/nn.hpp"
#include "gpukit/train.hpp"
