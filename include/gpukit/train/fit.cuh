// gpukit/train/fit.cuh — the GPU path of fit, evaluate and predict (see fit.hpp). Needs nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/train/fit.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include gpukit/train/fit.hpp for the CPU path"
#endif

#include "gpukit/nn/graph.hpp"
#include "gpukit/train/fit.hpp"
#include "gpukit/train/loader.cuh"
#include "gpukit/train/metrics.cuh"

#include <array>

namespace gpukit::train::detail {

/// Running metrics in device memory, with an asynchronous snapshot for progress display.
class device_metrics {
 public:
  explicit device_metrics(stream_view s)
      : stream_(s), sums_(1, s), snapshot_(1, host_memory::pinned), ready_(false) {
    reset();
  }
  running_metrics* data() noexcept { return sums_.data(); }
  void reset() { GPUKIT_CUDA_TRY(cudaMemsetAsync(sums_.data(), 0, sizeof(running_metrics), stream_)); pending_ = false; }

  /// The last snapshot that has arrived, after queuing the next one if none is in flight.
  /// Never waits; false while no snapshot has arrived.
  bool poll(running_metrics& out) {
    bool have = false;
    if (pending_) {
      const cudaError_t status = cudaEventQuery(ready_.value());
      if (status == cudaErrorNotReady) {
        (void)cudaGetLastError();
        return false;
      }
      GPUKIT_CUDA_TRY(status);
      out = snapshot_[0];
      have = true;
      pending_ = false;
    }
    GPUKIT_CUDA_TRY(cudaMemcpyAsync(snapshot_.data(), sums_.data(), sizeof(running_metrics), cudaMemcpyDeviceToHost, stream_));
    ready_.record(stream_);
    pending_ = true;
    return have;
  }

  /// The sums once the stream has passed everything queued so far (waits).
  running_metrics read() {
    GPUKIT_CUDA_TRY(cudaMemcpyAsync(snapshot_.data(), sums_.data(), sizeof(running_metrics), cudaMemcpyDeviceToHost, stream_));
    GPUKIT_CUDA_TRY(cudaStreamSynchronize(stream_));
    pending_ = false;
    return snapshot_[0];
  }

 private:
  stream_view stream_;
  device_buffer<running_metrics> sums_;
  host_buffer<running_metrics> snapshot_;
  event ready_;
  bool pending_ = false;
};

/// Runs one pass over `set` through `in` in batches of `b`: `step(slot, first, count)` queues the
/// work of one batch after its slot's copy; slots alternate so the next batch's host work
/// and copy overlap it. `after(batch)` runs on the host after each batch is queued.
template <class Step, class After>
void pipeline(device_loader& in, const epoch_plan& plan, std::size_t n, std::size_t b, Step&& step, After&& after) {
  const std::size_t batches = batch_count(n, b);
  in.stage(0, plan, 0, std::min(b, n));
  for (std::size_t k = 0; k < batches; ++k) {
    const int s = static_cast<int>(k % 2);
    const std::size_t first = k * b, count = std::min(b, n - first);
    if (k + 1 < batches) in.stage(1 - s, plan, first + b, std::min(b, n - first - b));
    in.wait(s);
    step(s, first, count);
    in.release(s);
    after(k);
  }
}

inline evaluation evaluate_on(nn::sequential<cuda_executor>& model, device_loader& in, const image_set& set,
                              std::size_t b, float rescale, nn::device_tensor& x, device_metrics& sums) {
  const float threshold = decision_threshold(model.loss_function());
  augment_options none;
  none.enabled = false;
  const epoch_plan plan = plan_epoch(set, 0, 0, false, none);
  sums.reset();
  pipeline(
      in, plan, set.count, b,
      [&](int s, std::size_t, std::size_t count) {
        in.queue_augment(s, count, rescale, x.span().subspan(0, count * set.image_bytes()), false);
        const auto y = in.targets(s, count);
        model.evaluate_async({x.data(), model.input_shape(count)}, {y.data(), model.output_shape(count)});
        accumulate_metrics(model.executor(), model.last_loss_address(), model.last_output(), y.data(), threshold,
                           sums.data());
      },
      [](std::size_t) {});
  const running_metrics m = sums.read();
  (void)model.last_loss();  // throws if the device check rejected a batch
  return {m.loss(), m.accuracy()};
}

inline evaluation evaluate_impl(const cuda_executor& exec, nn::sequential<cuda_executor>& model, const image_set& set,
                                std::size_t batch, float rescale) {
  device_loader in(exec, set, batch, model.output_shape().features());
  nn::device_tensor x(model.input_shape(batch), exec.stream());
  device_metrics sums(exec.stream());
  return evaluate_on(model, in, set, batch, rescale, x, sums);
}

}  // namespace gpukit::train::detail

namespace gpukit::train {

/// The GPU loop of fit (see fit.hpp), set up once — loader, input tensor, running sums
/// and the two captured step graphs — and run one epoch per call: fit uses it, and so can
/// code that runs epochs itself (benchmarks, custom schedules). `model`, `train` and the
/// memory they view must outlive it.
class device_trainer {
 public:
  device_trainer(nn::sequential<cuda_executor>& model, const image_set& train, const fit_options& o)
      : model_(model), train_(train), o_(o), checked_((detail::check_fit(model, train, o), true)),
        in_(model.executor(), train, o.batch_size, model.output_shape().features(), o.data),
        x_(model.input_shape(o.batch_size), model.executor().stream()), sums_(model.executor().stream()),
        threshold_(detail::decision_threshold(model.loss_function())) {
    if (train.count >= o.batch_size)
      for (int s = 0; s < device_loader::slots; ++s)
        graphs_[static_cast<std::size_t>(s)] =
            nn::graph::capture(model.executor().stream(), [&](stream_view) { queue_step(s, o_.batch_size); });
  }

  /// Whether the loader keeps the images on the device (residency::device).
  bool resident() const noexcept { return in_.resident(); }

  /// One epoch (number `epoch`: it seeds the order and the augmentation); redraws `bar`
  /// when given. Waits for the device once, at the end, and returns the epoch's sums.
  running_metrics run_epoch(std::size_t epoch, detail::progress* bar = nullptr) {
    const std::size_t b = o_.batch_size;
    const epoch_plan plan = plan_epoch(train_, o_.seed, epoch, o_.shuffle, o_.augment);
    sums_.reset();
    detail::pipeline(
        in_, plan, train_.count, b,
        [&](int s, std::size_t, std::size_t count) {
          if (count == b) {
            graphs_[static_cast<std::size_t>(s)].replay(model_.executor().stream());
          } else {
            queue_step(s, count);  // the remainder: the same three steps, queued directly
          }
        },
        [&](std::size_t) {
          running_metrics seen;
          if (bar != nullptr && bar->due() && sums_.poll(seen)) bar->draw(seen, b);
        });
    const running_metrics m = sums_.read();
    (void)model_.last_loss();  // throws if the device check rejected a batch
    return m;
  }

  /// evaluate() of `set` through `in` (a loader of that set), reusing the input tensor and sums.
  evaluation evaluate(device_loader& in, const image_set& set) {
    return detail::evaluate_on(model_, in, set, o_.batch_size, o_.augment.rescale, x_, sums_);
  }

 private:
  // One training step of `count` images read from slot s: augmentation, the model's
  // checked step, the metrics.
  void queue_step(int s, std::size_t count) {
    in_.queue_augment(s, count, o_.augment.rescale, x_.span().subspan(0, count * train_.image_bytes()), o_.augment.enabled);
    const auto y = in_.targets(s, count);
    model_.train_step_async({x_.data(), model_.input_shape(count)}, {y.data(), model_.output_shape(count)});
    accumulate_metrics(model_.executor(), model_.last_loss_address(), model_.last_output(), y.data(), threshold_,
                       sums_.data());
  }

  nn::sequential<cuda_executor>& model_;
  image_set train_;
  fit_options o_;
  bool checked_ = false;  // check_fit ran before the members below were made
  device_loader in_;
  nn::device_tensor x_;
  detail::device_metrics sums_;
  float threshold_ = 0.5f;
  std::array<nn::graph, device_loader::slots> graphs_;
};

}  // namespace gpukit::train

namespace gpukit::train::detail {

inline history fit_impl(const cuda_executor&, nn::sequential<cuda_executor>& model, const image_set& train,
                        const fit_options& o) {
  device_trainer trainer(model, train, o);
  std::optional<device_loader> val_in;
  if (o.validation) val_in.emplace(model.executor(), *o.validation, o.batch_size, model.output_shape().features(), o.data);
  progress bar(o, batch_count(train.count, o.batch_size));
  history h;
  for (std::size_t epoch = 0; epoch < o.epochs; ++epoch) {
    bar.begin_epoch(epoch, o.epochs);
    const auto start = std::chrono::steady_clock::now();
    const running_metrics m = trainer.run_epoch(epoch, &bar);
    const double seconds = elapsed_since(start);
    std::optional<evaluation> val;
    if (o.validation) val = trainer.evaluate(*val_in, *o.validation);
    record_epoch(h, m, seconds, val, learning_rate_of(model));
    bar.end_epoch(h);
  }
  return h;
}

inline std::vector<float> predict_impl(const cuda_executor& exec, nn::sequential<cuda_executor>& model,
                                       host_span<const std::uint8_t> pixels, float rescale) {
  const nn::shape4 in_shape = model.input_shape();
  const std::size_t count = pixels.size() / in_shape.features(), b = model.max_batch();
  const std::size_t f = model.output_shape().features();
  const std::vector<float> no_labels(count, 0.0f);
  const image_set set(pixels, make_host_span(no_labels), in_shape.w, in_shape.h, in_shape.c);
  device_loader in(exec, set, b, 1, residency::staged);
  nn::device_tensor x(model.input_shape(b), exec.stream());
  augment_options none;
  none.enabled = false;
  const epoch_plan plan = plan_epoch(set, 0, 0, false, none);
  std::vector<float> out(count * f);
  pipeline(
      in, plan, count, b,
      [&](int s, std::size_t first, std::size_t k) {
        in.queue_augment(s, k, rescale, x.span().subspan(0, k * set.image_bytes()), false);
        const auto y = model.predict({x.data(), model.input_shape(k)});
        // Stream-ordered before the next batch's forward overwrites the output.
        GPUKIT_CUDA_TRY(cudaMemcpyAsync(out.data() + first * f, y.data, k * f * sizeof(float), cudaMemcpyDeviceToHost,
                                        exec.stream()));
      },
      [](std::size_t) {});
  exec.synchronize();
  return out;
}

}  // namespace gpukit::train::detail
