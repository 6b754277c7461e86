// gpukit/nn/path_target.hpp — the machine a layer's kernel path is chosen for.
//
// Every layer kind has one host-compilable selection function (choose_conv2d_path in
// conv2d.hpp, choose_dense_path in dense.hpp, choose_pool_path in maxpool2d.hpp,
// choose_avgpool_path in avgpool2d.hpp, choose_dropout_path in dropout.hpp,
// choose_softmax_path in softmax.hpp, choose_batchnorm_path in batchnorm.hpp,
// choose_loss_path in loss.hpp, choose_optimizer_path in
// optimizer.hpp). Each takes the layer's shape and a path_target and returns the path, its
// tiles and its scratch; the model plan asks them once per stage and summary() prints their
// answers. A path_target can be made by hand (unit tests plan for an H200 on a machine
// without a GPU) or read from the current device. `numbers` is the model's precision
// (precision.hpp): the products' arithmetic is part of what a path is chosen for.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/device.hpp"
#include "gpukit/nn/precision.hpp"

#include <atomic>
#include <string>

namespace gpukit::nn {

struct path_target {
  bool gpu = false;
  int sm_count = 0;
  int compute_capability = 0;  ///< 90 for 9.0
  precision numbers = precision::fp32;  ///< the operand format of the conv and dense products

  /// The CPU fallback: every layer takes its one CPU path.
  static path_target cpu() noexcept { return {}; }
  /// A GPU with `sms` multiprocessors of compute capability `cc` (90 for an H100 or H200).
  static path_target gpu_with(int sms, int cc) noexcept { return {true, sms, cc, precision::fp32}; }
  /// This target with the products' operands in format `p`.
  path_target with_precision(precision p) const noexcept {
    path_target t = *this;
    t.numbers = p;
    return t;
  }
  /// The current CUDA device (throws cuda_error without one). Cached per device: layer
  /// calls ask on every launch, and a property query costs far more than a launch.
  static path_target current_gpu() {
    constexpr int max_cached = 64;
    static std::atomic<int> cached_cc[max_cached];  // static storage: zero = not read yet
    const int id = current_device();
    int cc = id < max_cached ? cached_cc[id].load(std::memory_order_relaxed) : 0;
    if (cc == 0) {
      int major = 0, minor = 0;
      GPUKIT_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, id));
      GPUKIT_CUDA_TRY(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, id));
      cc = major * 10 + minor;
      if (id < max_cached) cached_cc[id].store(cc, std::memory_order_relaxed);  // racing writers agree
    }
    return gpu_with(current_sm_count(), cc);
  }
  /// Whether the tensor cores take TF32 operands (compute capability 8.0 and later).
  bool has_tf32_tensor_cores() const noexcept { return gpu && compute_capability >= 80; }
  /// Where the CPU path rounds its operands: "" in fp32, else ", operands rounded to TF32"
  /// (or BF16), for the summaries of the CPU paths.
  const char* cpu_rounding() const noexcept {
    return numbers == precision::tf32   ? ", operands rounded to TF32"
           : numbers == precision::bf16 ? ", operands rounded to BF16"
                                        : "";
  }
  /// Whether asynchronous global-to-shared copies (cp.async) exist (8.0 and later).
  bool has_async_copy() const noexcept { return gpu && compute_capability >= 80; }

  std::string to_string() const {
    const std::string format = numbers == precision::tf32   ? ", TF32 products"
                               : numbers == precision::bf16 ? ", BF16 products"
                                                            : "";
    if (!gpu) return "cpu" + format;
    return "gpu (" + std::to_string(sm_count) + " SMs, sm_" + std::to_string(compute_capability) + ")" + format;
  }
};

}  // namespace gpukit::nn
