// gpukit/nn/batch_check.hpp — what a sequential model checks of a batch, and the messages
// it refuses one with. Shapes are checked on the host before anything is queued; values
// (x finite, y in the loss's domain) by validate_impl, on the host or, inside a GPU step,
// on the device, whose findings the step record keeps (loss.hpp).
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/tensor.hpp"

#include <string>

namespace gpukit::nn::detail {

/// An index that failed a check and the value found there.
struct bad_element {
  unsigned long long index = no_bad_index;
  double value = 0.0;
  bool found() const noexcept { return index != no_bad_index; }
};

/// What the checks need to know of the model: its sample shapes, its largest batch, the
/// labels of its first and last layers ("layer 1 'conv2d' (Conv2D)") and its loss.
struct batch_rules {
  shape4 input{}, output{};
  std::size_t max_batch = 0;
  std::string first_layer, last_layer;
  loss loss_fn{};

  /// x's batch size, after checking its shape.
  std::size_t check_input(const char* where, const shape4& x) const {
    const shape4 want = input.with_batch(x.n);
    require(x == want && x.n >= 1 && x.n <= max_batch, where,
            "argument 'x' has shape " + to_string(x) + ", " + first_layer + " takes (N, " + std::to_string(input.c) +
                ", " + std::to_string(input.h) + ", " + std::to_string(input.w) + ") with 1 <= N <= " +
                std::to_string(max_batch));
    return x.n;
  }
  void check_target(const char* where, const shape4& y, std::size_t batch) const {
    require(y == output.with_batch(batch), where,
            "argument 'y' has shape " + to_string(y) + ", the output of " + last_layer + " for " +
                std::to_string(batch) + " samples is " + to_string(output.with_batch(batch)));
  }
  std::size_t check_batch(const char* where, const shape4& x, const shape4& y) const {
    const std::size_t b = check_input(where, x);
    check_target(where, y, b);
    return b;
  }

  /// Throws std::invalid_argument for the first of bad_x, bad_y found.
  [[noreturn]] void reject(const char* where, const shape4& x_shape, const shape4& y_shape, bad_element bad_x,
                           bad_element bad_y) const {
    if (bad_x.found())
      require(false, where,
              bad_value_message("x", x_shape, bad_x.index, bad_x.value, "the input of " + first_layer + " must be finite") +
                  "; nothing was updated");
    require(false, where,
            bad_value_message("y", y_shape, bad_y.index, bad_y.value,
                              std::string(target_rule(kind_of(loss_fn))) + " (loss " + loss_name(loss_fn) + " after " +
                                  last_layer + ")") +
                "; nothing was updated");
    throw std::logic_error("unreachable");
  }
};

/// The bad elements a step record holds.
inline bad_element bad_input_of(const step_record& r) { return {r.bad_input, r.bad_input_value}; }
inline bad_element bad_target_of(const step_record& r) { return {r.bad_target, r.bad_target_value}; }

}  // namespace gpukit::nn::detail
