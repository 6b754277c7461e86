// gpukit/nn.hpp — the neural-network layers, losses, optimizers and the sequential model.
// Host-compilable (the CPU paths); under nvcc each header also brings in its GPU path.
#pragma once

#include "gpukit/nn/activation.hpp"
#include "gpukit/nn/avgpool2d.hpp"
#include "gpukit/nn/batch_check.hpp"
#include "gpukit/nn/conv2d.hpp"
#include "gpukit/nn/dense.hpp"
#include "gpukit/nn/dropout.hpp"
#include "gpukit/nn/graph.hpp"
#include "gpukit/nn/init.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/maxpool2d.hpp"
#include "gpukit/nn/model_plan.hpp"
#include "gpukit/nn/model_runner.hpp"
#include "gpukit/nn/optimizer.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/precision.hpp"
#include "gpukit/nn/sequential.hpp"
#include "gpukit/nn/softmax.hpp"
#include "gpukit/nn/summary.hpp"
#include "gpukit/nn/tensor.hpp"
