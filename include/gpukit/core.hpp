// gpukit/core.hpp — the host-side core layer in one include. Compiles with a plain C++17
// compiler; add gpukit/core.cuh (nvcc) for the launch helpers.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/core/transfer.hpp"
#include "gpukit/core/device.hpp"
#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/host_buffer.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/core/stream.hpp"
#include "gpukit/core/text.hpp"
#include "gpukit/core/timer.hpp"
#include "gpukit/core/views.hpp"
#include "gpukit/core/workspace.hpp"
