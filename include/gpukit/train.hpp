// gpukit/train.hpp — the training layer: augmentation, the batch loader, metrics, fit,
// evaluate and predict, the training history and its files, and model files.
// Host-compilable (the CPU paths); under nvcc each header also brings in its GPU path.
#pragma once

#include "gpukit/train/augment.hpp"
#include "gpukit/train/fit.hpp"
#include "gpukit/train/history.hpp"
#include "gpukit/train/loader.hpp"
#include "gpukit/train/metrics.hpp"
#include "gpukit/train/model_file.hpp"
