// gpukit/nn/model_plan.hpp — what a sequential model runs, decided on the host before
// anything is allocated: unit-testable without a GPU (plan for a path_target made by hand).
//
//   nn::model_plan plan(input, layers, names, max_batch, loss, optimizer, target);
//   plan.stages()            the fused passes, their geometry, parameter slices and flags
//   plan.for_batch(b)        every stage's kernel paths for b samples (each layer's own
//                            selection function answers; cached per batch size)
//   plan.scratch_bytes()     the most scratch any kernel of a step borrows, any batch size
//
// Fusion (a stage is one pass):
// - conv2d [+ activation] [+ maxpool2d] is one stage (pool windows up to 16x16 fuse);
// - dense [+ activation] is one stage; flatten costs nothing (it views its input);
// - an average pool (global or windowed) and a dropout are stages of their own;
// - batchnorm [+ activation] is one stage (its parameters: weight, then bias); in inference
//   passes (evaluate, predict, an inference capture) a batch norm right after a conv
//   (without activation or pool) or a dense layer (without activation) is folded into it:
//   the layer runs with weights a·w and bias a·b + b' (a, b' the batch norm's coefficients
//   from its running estimates) and the batch norm's activation, and the batch norm's own
//   pass is skipped;
// - a final sigmoid with binary_crossentropy, or a final softmax with softmax_crossentropy,
//   is evaluated from the logits (the stable form), so the loss gradient skips it;
// - backward, a dense or conv stage's input gradient multiplies by the slope of the
//   activation of the dense or conv stage before it (through a flatten), so that stage's
//   backward pass skips its activation: one elementwise pass fewer per such pair;
// - GPU: a small last dense layer and an elementwise loss are one launch, and with Adam up
//   to three dense layers whose backward kernel can take it apply the update themselves.
// Parameters: one buffer, every slice 256-byte aligned (64 floats), weights then bias per
// layer in layer order; the gradients mirror it. A conv or dense layer without a bias has no
// bias slice (b_count 0): the runner hands its kernels a zero bias and a discarded gradient.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/avgpool2d.hpp"
#include "gpukit/nn/batchnorm.hpp"
#include "gpukit/nn/conv2d.hpp"
#include "gpukit/nn/dense.hpp"
#include "gpukit/nn/dropout.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/maxpool2d.hpp"
#include "gpukit/nn/optimizer.hpp"
#include "gpukit/nn/softmax.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gpukit::nn {

enum class stage_kind { conv, pool, dense, act, flatten, avgpool, dropout, softmax, batchnorm };

/// One fused pass: a conv block, a max pool, a dense layer (+ activation), an activation, an
/// average pool (global pooling is one whose window is the plane) or a flatten (no work: it
/// views its input).
struct stage_plan {
  stage_kind kind = stage_kind::flatten;
  std::size_t first_layer = 0, last_layer = 0;
  std::optional<conv_block> conv;
  std::optional<maxpool2d> pool;
  std::optional<avgpool2d> avg;  // avgpool stages (global pooling as its plane-sized window)
  std::optional<dropout> drop;   // dropout stages
  std::optional<batchnorm> bn;   // batchnorm stages
  std::optional<dense> fc;
  activation act = activation::none;
  shape4 in{}, out{};  // one sample
  std::size_t w_off = 0, w_count = 0, b_off = 0, b_count = 0;
  bool has_params = false;
  bool needs_dx = false;           // a stage with parameters lies before it
  bool loss_takes_logits = false;  // the last stage: binary cross-entropy from the logits
  bool act_done_downstream = false;  // the next conv or dense stage folds this activation's slope into its dx
  bool folds_next_batchnorm = false; // inference passes: the next stage (a batch norm) runs folded into this one
  std::size_t dx_act_from = 0;       // the stage whose activation this stage's dx folds in (dx_act)
  activation dx_act = activation::none;

  /// The activation this stage's own backward pass differentiates.
  activation backward_act() const noexcept { return loss_takes_logits || act_done_downstream ? activation(activation::none) : act; }

  detail::conv_geometry conv_geometry(std::size_t batch) const {
    detail::conv_geometry g = cg_;
    g.n = static_cast<int>(batch);
    return g;
  }
  /// The conv geometry the backward pass sees (without the activation it leaves downstream).
  detail::conv_geometry conv_backward_geometry(std::size_t batch) const {
    detail::conv_geometry g = conv_geometry(batch);
    g.act = backward_act();
    return g;
  }
  detail::pool_geometry pool_geometry(std::size_t batch) const {
    detail::pool_geometry g = pg_;
    g.n = static_cast<int>(batch);
    return g;
  }
  detail::dense_geometry dense_geometry(std::size_t batch) const {
    detail::dense_geometry g = dg_;
    g.n = static_cast<int>(batch);
    return g;
  }
  detail::batchnorm_geometry batchnorm_geometry(std::size_t batch) const {
    detail::batchnorm_geometry g = bg_;
    g.n = static_cast<int>(batch);
    return g;
  }

  detail::conv_geometry cg_{};
  detail::pool_geometry pg_{};
  detail::dense_geometry dg_{};
  detail::batchnorm_geometry bg_{};
};

/// The parameter slices of one layer (zero counts for layers without parameters).
struct param_slot {
  std::size_t w_off = 0, w_count = 0, b_off = 0, b_count = 0;
};

/// The kernel paths of every stage for one batch size, and what they imply for the step.
struct batch_plan {
  struct stage_paths {
    conv2d_path conv;    // conv stages
    dense_path fc;       // dense stages
    pool_path pool;      // pool stages
    avgpool_path avg;    // avgpool stages
    dropout_path drop;   // dropout stages
    softmax_path soft;   // softmax stages
    batchnorm_path bn;   // batchnorm stages
    bool adam_fused = false;  // dense: applies Adam in its backward kernel
  };
  std::vector<stage_paths> stages;
  loss_path loss;
  bool fused_head = false;  // the last dense stage's forward (in a training step), loss and backward: one launch
  detail::param_ranges optimizer_ranges;  // what the optimizer launch updates in a step with fused Adam
  std::size_t scratch_bytes = 0;
};

class model_plan {
 public:
  static constexpr std::size_t param_alignment = 64;  // elements: 256-byte aligned slices
  /// At most this many dense layers apply Adam in their own backward kernel (the optimizer
  /// launch then covers the other ranges, which fit its four).
  static constexpr int max_fused_adam = 3;

  model_plan() = default;

  /// Plans `layers` (each already checked against its input by sequential::add; `names` their
  /// Keras names, for messages) for batches of 1..max_batch on `target`. Throws
  /// std::invalid_argument naming the layer when a geometry exceeds what the kernels index.
  model_plan(const shape4& input, const std::vector<layer>& layers, const std::vector<std::string>& names,
             std::size_t max_batch, const loss& loss_fn, const optimizer& opt, const path_target& target)
      : input_(input), max_batch_(max_batch), loss_(loss_fn), optimizer_(opt), target_(target) {
    plan_stages(layers, names);
    assign_parameters(layers.size());
    optimizer_path_ = choose_optimizer_path(opt, target);
    for (std::size_t b = 1; b <= max_batch_; ++b) {
      scratch_bytes_ = std::max(scratch_bytes_, make_batch_plan(b, true).scratch_bytes);
      if (reads_input_densely()) scratch_bytes_ = std::max(scratch_bytes_, make_batch_plan(b, false).scratch_bytes);
    }
  }

  const std::vector<stage_plan>& stages() const noexcept { return stages_; }
  /// Whether a stage draws random masks (dropout): training forwards then advance a step counter.
  bool has_dropout() const noexcept {
    for (const auto& st : stages_)
      if (st.kind == stage_kind::dropout) return true;
    return false;
  }
  /// The smallest batch a training step takes: 2 when a batch norm sees one value per
  /// channel per sample (a flat input), as the batch variance needs two values; else 1.
  std::size_t min_training_batch() const noexcept {
    for (const auto& st : stages_)
      if (st.kind == stage_kind::batchnorm && st.in.h * st.in.w == 1) return 2;
    return 1;
  }
  std::size_t max_batch() const noexcept { return max_batch_; }
  const path_target& target() const noexcept { return target_; }
  const optimizer_path& optimizer_route() const noexcept { return optimizer_path_; }
  const loss& loss_function() const noexcept { return loss_; }
  const optimizer& optimizer_config() const noexcept { return optimizer_; }
  /// Elements of the parameter buffer (and of the gradient buffer), alignment padding included.
  std::size_t parameter_total() const noexcept { return param_total_; }
  const std::vector<param_slot>& slots() const noexcept { return slots_; }
  /// Whether an inference pass folds a batch norm into the layer before it.
  bool folds_batchnorms() const noexcept {
    for (const auto& st : stages_)
      if (st.folds_next_batchnorm) return true;
    return false;
  }
  /// The most elements (weights, then bias at a 64-element boundary) a folded layer needs.
  std::size_t max_folded_elements() const noexcept {
    std::size_t m = 0;
    for (const auto& st : stages_)
      if (st.folds_next_batchnorm) m = std::max(m, align_up(st.w_count) + (st.conv ? st.conv->conv.out_channels : st.fc->out_features));
    return m;
  }
  /// The most outputs of a conv or dense layer without a bias (the runner's zero bias).
  std::size_t max_biasless_outputs() const noexcept {
    std::size_t m = 0;
    for (const auto& st : stages_)
      if (st.has_params && st.b_count == 0) m = std::max(m, st.conv ? st.conv->conv.out_channels : st.fc->out_features);
    return m;
  }
  /// The most scratch any kernel of a step or a forward pass borrows, over every batch size.
  std::size_t scratch_bytes() const noexcept { return scratch_bytes_; }

  /// The paths for `batch` samples. `input_aligned`: the caller's x is 16-byte aligned (a
  /// first dense layer's fastest kernels need it; every other stage reads the model's own
  /// buffers). Computed once per batch size, then cached.
  const batch_plan& for_batch(std::size_t batch, bool input_aligned = true) const {
    const std::size_t key = batch * 2 + (input_aligned ? 1 : 0);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, make_batch_plan(batch, input_aligned)).first;
    return it->second;
  }

  /// "conv2d+relu+max_pooling2d | flatten | dense+relu | dense_1+sigmoid (loss on logits)".
  std::string describe(const std::vector<std::string>& names) const {
    std::string s;
    for (const auto& st : stages_) {
      if (!s.empty()) s += " | ";
      for (std::size_t i = st.first_layer; i <= st.last_layer; ++i) s += (i == st.first_layer ? "" : "+") + names[i];
      if (st.loss_takes_logits) s += " (loss on logits)";
    }
    return s;
  }

  /// The kernel path of stage i at the largest batch, in words (what summary() prints).
  std::string path_text(std::size_t i) const {
    const batch_plan& bp = for_batch(max_batch_);
    const stage_plan& st = stages_[i];
    switch (st.kind) {
      case stage_kind::conv:
        return bp.stages[i].conv.describe() + (st.folds_next_batchnorm ? "; inference: the next batch norm folded in" : "");
      case stage_kind::dense: {
        std::string s = bp.stages[i].fc.describe();
        if (bp.stages[i].adam_fused) s += ", Adam in the backward kernel";
        if (st.folds_next_batchnorm) s += "; inference: the next batch norm folded in";
        return s;
      }
      case stage_kind::pool: return bp.stages[i].pool.describe();
      case stage_kind::avgpool: return bp.stages[i].avg.describe();
      case stage_kind::dropout: return bp.stages[i].drop.describe();
      case stage_kind::softmax: return bp.stages[i].soft.describe();
      case stage_kind::batchnorm: return bp.stages[i].bn.describe();
      case stage_kind::act: return target_.gpu ? "elementwise (cub::DeviceTransform)" : "elementwise (OpenMP)";
      default: return "a view: no work";
    }
  }

 private:
  void plan_stages(const std::vector<layer>& layers, const std::vector<std::string>& names) {
    stages_.clear();
    std::vector<shape4> shapes;
    shape4 cur = input_;
    for (const auto& l : layers) shapes.push_back(cur = output_shape(l, cur, "gpukit::nn::model_plan"));
    shape4 in = input_;
    for (std::size_t i = 0; i < layers.size();) {
      stage_plan st;
      st.first_layer = i;
      st.in = in;
      const layer& l = layers[i];
      std::size_t next = i + 1;
      const auto take_activation = [&] {
        // Only an activation whose slope follows from its output: the fused stage keeps no input.
        if (next < layers.size() && activation_of(layers[next]) != activation::none && slope_from_output(activation_of(layers[next])))
          st.act = activation_of(layers[next++]);
      };
      if (const auto* c = std::get_if<conv2d>(&l)) {
        st.kind = stage_kind::conv;
        take_activation();
        conv_block block{*c, st.act, std::nullopt};
        if (next < layers.size()) {
          if (const auto* p = std::get_if<maxpool2d>(&layers[next]); p != nullptr && p->window.h <= 16 && p->window.w <= 16) {
            block.pool = *p;
            ++next;
          }
        }
        st.conv = block;
        st.has_params = true;
        st.w_count = c->weight_count(), st.b_count = c->bias_count();
      } else if (const auto* d = std::get_if<dense>(&l)) {
        st.kind = stage_kind::dense;
        take_activation();
        st.fc = *d;
        st.has_params = true;
        st.w_count = d->weight_count(), st.b_count = d->bias_count();
      } else if (const auto* p = std::get_if<maxpool2d>(&l)) {
        st.kind = stage_kind::pool;
        st.pool = *p;
      } else if (const auto* a = std::get_if<avgpool2d>(&l)) {
        st.kind = stage_kind::avgpool;
        st.avg = *a;
      } else if (const auto* ga = std::get_if<global_avgpool2d>(&l)) {
        st.kind = stage_kind::avgpool;
        st.avg = ga->as_avgpool(in);
      } else if (const auto* b = std::get_if<batchnorm>(&l)) {
        st.kind = stage_kind::batchnorm;
        take_activation();
        st.bn = *b;
        st.has_params = true;
        st.w_count = b->weight_count(), st.b_count = b->bias_count();
      } else if (std::holds_alternative<softmax>(l)) {
        st.kind = stage_kind::softmax;
      } else if (const auto* d = std::get_if<dropout>(&l)) {
        st.kind = stage_kind::dropout;
        st.drop = *d;
      } else if (std::holds_alternative<flatten>(l)) {
        st.kind = stage_kind::flatten;
      } else {
        st.kind = stage_kind::act;
        st.act = activation_of(l);
      }
      st.last_layer = next - 1;
      st.out = shapes[next - 1];
      in = st.out;
      stages_.push_back(std::move(st));
      i = next;
    }
    bool params_before = false;
    for (auto& st : stages_) {
      st.needs_dx = params_before && st.kind != stage_kind::flatten;
      params_before = params_before || st.has_params;
    }
    stage_plan& last = stages_.back();
    last.loss_takes_logits = (std::holds_alternative<binary_crossentropy>(loss_) && last.act == activation::sigmoid &&
                              (last.kind == stage_kind::dense || last.kind == stage_kind::act)) ||
                             (std::holds_alternative<softmax_crossentropy>(loss_) && last.kind == stage_kind::softmax);
    // A conv or dense stage's input-gradient product can multiply, in its epilogue, by the
    // slope of the activation that produced its input: one elementwise pass fewer.
    for (std::size_t i = 1; i < stages_.size(); ++i) {
      stage_plan& consumer = stages_[i];
      if ((consumer.kind != stage_kind::dense && consumer.kind != stage_kind::conv) || !consumer.needs_dx) continue;
      std::size_t j = i - 1;
      while (j > 0 && stages_[j].kind == stage_kind::flatten) --j;
      stage_plan& producer = stages_[j];
      if ((producer.kind == stage_kind::dense || producer.kind == stage_kind::conv) && producer.act != activation::none) {
        consumer.dx_act = producer.act;
        consumer.dx_act_from = j;
        producer.act_done_downstream = true;
      }
    }
    for (std::size_t i = 0; i + 1 < stages_.size(); ++i) {
      stage_plan& st = stages_[i];
      const bool plain_conv = st.kind == stage_kind::conv && !st.conv->pool;
      st.folds_next_batchnorm = (plain_conv || st.kind == stage_kind::dense) && st.act == activation::none &&
                                stages_[i + 1].kind == stage_kind::batchnorm;
    }
    for (auto& st : stages_) {
      const std::string who = "gpukit::nn::sequential::compile: layer " + std::to_string(st.first_layer + 1) + " '" +
                              names[st.first_layer] + "' (" + layer_type_name(layers[st.first_layer]) + ")";
      const shape4 in_b = st.in.with_batch(max_batch_);
      if (st.kind == stage_kind::conv) {
        st.cg_ = detail::make_conv_geometry(*st.conv, in_b, who);
      } else if (st.kind == stage_kind::pool) {
        st.pg_ = detail::make_pool_geometry(*st.pool, in_b, who);
      } else if (st.kind == stage_kind::avgpool) {
        st.pg_ = detail::make_avgpool_geometry(*st.avg, in_b, who);
      } else if (st.kind == stage_kind::dense) {
        st.dg_ = detail::make_dense_geometry(*st.fc, in_b, who);
      } else if (st.kind == stage_kind::batchnorm) {
        st.bg_ = detail::make_batchnorm_geometry(*st.bn, in_b, st.act, who);
      }
    }
  }

  void assign_parameters(std::size_t layer_count) {
    slots_.assign(layer_count, param_slot{});
    std::size_t total = 0;
    for (auto& st : stages_) {
      if (!st.has_params) continue;
      st.w_off = total;
      total = align_up(total + st.w_count);
      st.b_off = total;
      total = align_up(total + st.b_count);
      slots_[st.first_layer] = {st.w_off, st.w_count, st.b_off, st.b_count};
    }
    param_total_ = std::max<std::size_t>(total, param_alignment);
  }

  /// Whether the first stage that does work is a dense layer (whose fastest kernels need the
  /// caller's x 16-byte aligned).
  bool reads_input_densely() const noexcept {
    for (const auto& st : stages_)
      if (st.kind != stage_kind::flatten) return st.kind == stage_kind::dense;
    return false;
  }

  static std::size_t align_up(std::size_t v) { return (v + param_alignment - 1) / param_alignment * param_alignment; }

  batch_plan make_batch_plan(std::size_t batch, bool input_aligned) const {
    batch_plan bp;
    bp.stages.resize(stages_.size());
    const bool elementwise = loss_is_elementwise(loss_);
    int fused_adam = 0;
    std::size_t first_reader = 0;  // the first stage that is not a flatten reads the caller's x
    while (first_reader + 1 < stages_.size() && stages_[first_reader].kind == stage_kind::flatten) ++first_reader;
    // In backward order, as the step runs them: the last layers are the ones to fuse.
    for (std::size_t i = stages_.size(); i-- > 0;) {
      const stage_plan& st = stages_[i];
      auto& sp = bp.stages[i];
      if (st.kind == stage_kind::conv) {
        sp.conv = choose_conv2d_path(st.conv_backward_geometry(batch), target_, st.needs_dx);
        bp.scratch_bytes = std::max({bp.scratch_bytes, sp.conv.forward_scratch, sp.conv.backward_scratch});
      } else if (st.kind == stage_kind::pool) {
        sp.pool = choose_pool_path(st.pool_geometry(batch), target_);
      } else if (st.kind == stage_kind::avgpool) {
        sp.avg = choose_avgpool_path(st.pool_geometry(batch), target_);
      } else if (st.kind == stage_kind::dropout) {
        sp.drop = choose_dropout_path(target_);
      } else if (st.kind == stage_kind::softmax) {
        sp.soft = choose_softmax_path(target_);
      } else if (st.kind == stage_kind::batchnorm) {
        sp.bn = choose_batchnorm_path(st.batchnorm_geometry(batch), target_);
      } else if (st.kind == stage_kind::dense) {
        detail::dense_context c;
        c.aligned16 = i != first_reader || input_aligned;
        // Adam in the backward kernel updates the bias too: only where the layer has one.
        c.adam_available = optimizer_path_.fuses_into_layers && fused_adam < max_fused_adam && st.b_count > 0;
        c.loss_head = i + 1 == stages_.size() && elementwise;
        c.want_dx = st.needs_dx;
        c.act = st.backward_act();
        sp.fc = choose_dense_path(st.dense_geometry(batch), target_, c);
        sp.adam_fused = sp.fc.adam_fused;
        fused_adam += sp.adam_fused ? 1 : 0;
        bp.scratch_bytes = std::max({bp.scratch_bytes, sp.fc.forward_scratch, sp.fc.backward_scratch});
      }
    }
    const stage_plan& last = stages_.back();
    bp.fused_head = target_.gpu && last.kind == stage_kind::dense && bp.stages.back().fc.head_fused;
    bp.loss = choose_loss_path(loss_, target_, last.loss_takes_logits, bp.fused_head);
    // The optimizer launch covers what the fused kernels leave: the complement of their
    // [w_off, b_off) ranges (padding included: it stays zero).
    long long at = 0;
    for (std::size_t i = 0; i < stages_.size(); ++i) {
      const stage_plan& st = stages_[i];
      if (!st.has_params || !bp.stages[i].adam_fused) continue;
      const long long w = static_cast<long long>(st.w_off);
      if (w > at) add_range(bp.optimizer_ranges, at, w - at);
      at = static_cast<long long>(st.b_off);
    }
    if (static_cast<long long>(param_total_) > at) add_range(bp.optimizer_ranges, at, static_cast<long long>(param_total_) - at);
    bp.scratch_bytes = std::max<std::size_t>(bp.scratch_bytes, 256);
    return bp;
  }

  static void add_range(detail::param_ranges& r, long long begin, long long count) {
    r.begin[r.size] = begin, r.count[r.size] = count, ++r.size;
  }

  shape4 input_{};
  std::size_t max_batch_ = 0;
  loss loss_{};
  optimizer optimizer_{};
  path_target target_{};
  optimizer_path optimizer_path_{};
  std::vector<stage_plan> stages_;
  std::vector<param_slot> slots_;
  std::size_t param_total_ = 0;
  std::size_t scratch_bytes_ = 0;
  mutable std::map<std::size_t, batch_plan> cache_;
};

}  // namespace gpukit::nn
