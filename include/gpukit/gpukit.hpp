// gpukit/gpukit.hpp — everything gpukit offers to a host-only (g++) translation unit:
// the core layer, and the CPU paths of the ops and of the nn layers.
#pragma once

#include "gpukit/core.hpp"
#include "gpukit/ops.hpp"
#include "gpukit/nn.hpp"
