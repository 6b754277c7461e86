// gpukit/train/fit.hpp — Keras' fit, evaluate and predict for a sequential model over a
// decoded image set, on either executor.
//
//   train::fit_options o;
//   o.epochs = 5; o.batch_size = 32; o.validation = test_cache;      // Keras' defaults otherwise
//   train::history h = train::fit(model, train_cache, o);             // h.val_accuracy.back()
//   train::write_history(h, "history.csv");                           // history.hpp
//   train::evaluation e = train::evaluate(model, test_cache);
//   std::vector<float> p = train::predict(model, pixels);             // uint8 NHWC images
//
// Each epoch visits every training image once in a seeded order (loader.hpp), augmented
// as o.augment says (augment.hpp) and rescaled, in batches of o.batch_size; the last batch
// of an epoch holds the remainder. Loss and accuracy are the sample-weighted means over
// the epoch of each batch's values before its update (as Keras reports them); val_loss and
// val_accuracy are evaluate() on o.validation after the epoch (rescale only, in order).
//
// On the GPU a full batch is one CUDA graph replay — the augmentation kernel, the model's
// checked training step (what nn::sequential::capture_train_step records) and the metrics
// kernel — one graph per loader slot, since each reads its slot's fixed device memory;
// the partial batch at the end of an epoch, if any, runs the same three steps eagerly
// (a third graph would be captured for one batch per epoch). Loss and accuracy accumulate
// in device memory (metrics.hpp); the host reads them when it redraws the progress line
// (an asynchronous copy it picks up once ready) and once at the end of the epoch, the
// only point where it waits for the device.
//
// Progress (o.verbose): 0 prints nothing; 1 redraws a bar in place on a terminal
// ("  37/250 [====>.........] - ETA: 1s - loss: 0.4137 - accuracy: 0.8125 - 98,304 images/s")
// at most every o.progress_seconds and prints one line per epoch when the stream is not a
// terminal; 2 prints one line per epoch.
//
// Requirements (std::invalid_argument naming the argument and values, nothing trained):
// the model compiled with max_batch >= batch_size and an input shape of (channels, height,
// width) of the set; labels of 0 or 1 for a model with one output, class indices below k
// for k outputs (targets one-hot); options in range.
// Host-compilable (the CPU path); the GPU path is in fit.cuh, included from here under nvcc
// (core/dispatch.hpp: a GPU model in a host-compiled file is a compile error saying so).
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/text.hpp"
#include "gpukit/nn/sequential.hpp"
#include "gpukit/train/augment.hpp"
#include "gpukit/train/history.hpp"
#include "gpukit/train/loader.hpp"
#include "gpukit/train/metrics.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <ostream>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include <unistd.h>

namespace gpukit::train {

struct fit_options {
  std::size_t epochs = 1;
  std::size_t batch_size = 32;
  std::uint64_t seed = 0;                    ///< shuffling and augmentation
  bool shuffle = true;
  augment_options augment{};                 ///< augment.enabled = false: rescale only
  std::optional<image_set> validation{};     ///< evaluated after every epoch when given
  int verbose = 1;                           ///< 0 silent, 1 progress bar (a terminal) or lines, 2 lines
  std::ostream* out = nullptr;               ///< where progress goes; nullptr: std::cout
  double progress_seconds = 0.1;             ///< the least time between two redraws of the bar
  residency data = residency::automatic;     ///< GPU: where the uint8 images live (loader.hpp)
};

struct evaluation {
  double loss = 0, accuracy = 0;
};

namespace detail {

/// A non-negative count rounded to a whole number, with thousands separators.
inline std::string thousands(double v) {
  return gpukit::detail::with_thousands(static_cast<std::uint64_t>(v < 0 ? 0 : std::llround(v)));
}

inline std::string fixed(double v, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}

inline std::string duration(double seconds) {
  if (seconds < 1) return thousands(seconds * 1000) + "ms";
  if (seconds < 100) return fixed(seconds, seconds < 10 ? 2 : 1) + "s";
  return thousands(seconds) + "s";
}

/// The per-epoch progress display (see the header comment).
class progress {
 public:
  progress(const fit_options& o, std::size_t batches)
      : out_(o.out != nullptr ? *o.out : std::cout), batches_(batches), interval_(o.progress_seconds) {
    const bool tty = (&out_ == &std::cout && ::isatty(STDOUT_FILENO) != 0) ||
                     ((&out_ == &std::cerr || &out_ == &std::clog) && ::isatty(STDERR_FILENO) != 0);
    bar_ = o.verbose == 1 && tty;
    lines_ = o.verbose == 2 || (o.verbose == 1 && !tty);
  }

  bool bar() const noexcept { return bar_; }

  void begin_epoch(std::size_t epoch, std::size_t epochs) {
    epoch_ = epoch, epochs_ = epochs, width_ = 0;
    start_ = last_ = clock::now();
    if (bar_) out_ << "Epoch " << epoch + 1 << "/" << epochs << "\n" << std::flush;
  }

  /// True when the bar is due for a redraw (time-based).
  bool due() const { return bar_ && seconds_since(last_) >= interval_; }

  /// Redraws the bar with `m` (its count says how many samples the device has finished).
  void draw(const running_metrics& m, std::size_t batch_size) {
    last_ = clock::now();
    const double t = seconds_since(start_);
    const auto done = std::min(batches_, static_cast<std::size_t>((m.count + static_cast<double>(batch_size) - 1) /
                                                                   static_cast<double>(batch_size)));
    std::string line = counter(done) + " - ETA: " +
                       (done > 0 ? duration(t / static_cast<double>(done) * static_cast<double>(batches_ - done)) : std::string("?"));
    if (m.count > 0)
      line += " - loss: " + fixed(m.loss(), 4) + " - accuracy: " + fixed(m.accuracy(), 4) + " - " +
              thousands(m.count / std::max(t, 1e-9)) + " images/s";
    redraw(line);
  }

  void end_epoch(const history& h) {
    const std::size_t e = h.epochs() - 1;
    std::string text = " - " + duration(h.seconds[e]) + " - loss: " + fixed(h.loss[e], 4) +
                       " - accuracy: " + fixed(h.accuracy[e], 4);
    if (!std::isnan(h.val_loss[e]))
      text += " - val_loss: " + fixed(h.val_loss[e], 4) + " - val_accuracy: " + fixed(h.val_accuracy[e], 4);
    text += " - " + thousands(h.images_per_second[e]) + " images/s";
    if (bar_) {
      redraw(counter(batches_) + text);
      out_ << "\n" << std::flush;
    } else if (lines_) {
      out_ << "Epoch " << epoch_ + 1 << "/" << epochs_ << ": " << batches_ << "/" << batches_ << " batches" << text << "\n"
           << std::flush;
    }
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds_since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

  std::string counter(std::size_t done) const {
    const std::string total = std::to_string(batches_);
    std::string n = std::to_string(done);
    n.insert(0, total.size() - std::min(total.size(), n.size()), ' ');
    constexpr std::size_t cells = 30;
    const std::size_t filled = batches_ ? done * cells / batches_ : cells;
    std::string bar(cells, '.');
    for (std::size_t i = 0; i < filled; ++i) bar[i] = '=';
    if (filled < cells && done > 0) bar[filled] = '>';
    return n + "/" + total + " [" + bar + "]";
  }
  void redraw(const std::string& line) {
    out_ << "\r" << line;
    if (line.size() < width_) out_ << std::string(width_ - line.size(), ' ');
    width_ = std::max(width_, line.size());
    out_ << std::flush;
  }

  std::ostream& out_;
  std::size_t batches_ = 0, epoch_ = 0, epochs_ = 0, width_ = 0;
  double interval_ = 0.1;
  bool bar_ = false, lines_ = false;
  clock::time_point start_{}, last_{};
};

template <class Exec>
void check_model_for(const nn::sequential<Exec>& model, const image_set& set, const char* where, const char* which) {
  gpukit::detail::require(model.compiled(), where, "argument 'model' is not compiled: call compile() first");
  const nn::shape4 in = model.input_shape();
  gpukit::detail::require(in.c == set.channels && in.h == set.height && in.w == set.width, where,
                          std::string("argument '") + which + "' holds " + std::to_string(set.width) + " x " +
                              std::to_string(set.height) + " x " + std::to_string(set.channels) +
                              " images, the model takes input " + nn::sample_string(in));
  check_labels(set, model.output_shape().features(), where, which);
}

/// The threshold deciding a one-output model's prediction: 0 on logits, 0.5 on probabilities.
inline float decision_threshold(const nn::loss& l) {
  return std::holds_alternative<nn::binary_crossentropy_with_logits>(l) ? 0.0f : 0.5f;
}

inline double elapsed_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

inline void record_epoch(history& h, const running_metrics& m, double seconds, const std::optional<evaluation>& val,
                         double learning_rate) {
  h.loss.push_back(m.loss());
  h.accuracy.push_back(m.accuracy());
  h.seconds.push_back(seconds);
  h.images_per_second.push_back(m.count / std::max(seconds, 1e-12));
  h.val_loss.push_back(val ? val->loss : std::numeric_limits<double>::quiet_NaN());
  h.val_accuracy.push_back(val ? val->accuracy : std::numeric_limits<double>::quiet_NaN());
  h.learning_rate.push_back(learning_rate);
}

/// The learning rate of the model's last optimizer step (its schedule's; GPU: reads the
/// device's clock, after the epoch's work).
template <class Exec>
double learning_rate_of(const nn::sequential<Exec>& model) {
  return static_cast<double>(model.optimizer_state_ref().learning_rate());
}

// ---- the CPU path ------------------------------------------------------------------------

inline evaluation evaluate_cpu(nn::sequential<cpu_executor>& model, const image_set& set, std::size_t batch, float rescale,
                               nn::host_tensor<float>& x, std::vector<float>& y) {
  const std::size_t f = model.output_shape().features(), features = set.image_bytes();
  const float threshold = decision_threshold(model.loss_function());
  augment_options none;
  none.enabled = false;
  const epoch_plan plan = plan_epoch(set, 0, 0, false, none);
  running_metrics m;
  for (std::size_t first = 0; first < set.count; first += batch) {
    const std::size_t count = std::min(batch, set.count - first);
    load_batch(model.executor(), set, plan, first, count, rescale, x.span().subspan(0, count * features),
               host_span<float>(y.data(), count * f), f);
    const auto xv = nn::host_tensor_view<const float>{x.data(), model.input_shape(count)};
    const auto yv = nn::host_tensor_view<const float>{y.data(), model.output_shape(count)};
    model.evaluate_async(xv, yv);
    accumulate_metrics(model.executor(), model.last_loss_address(), model.last_output(), y.data(), threshold, &m);
  }
  return {m.loss(), m.accuracy()};
}

inline history fit_impl(const cpu_executor&, nn::sequential<cpu_executor>& model, const image_set& train,
                        const fit_options& o) {
  const std::size_t b = o.batch_size, n = train.count, f = model.output_shape().features();
  const std::size_t features = train.image_bytes();
  const float threshold = decision_threshold(model.loss_function());
  nn::host_tensor<float> x(model.input_shape(b));
  std::vector<float> y(b * f);
  progress bar(o, batch_count(n, b));
  history h;
  for (std::size_t epoch = 0; epoch < o.epochs; ++epoch) {
    bar.begin_epoch(epoch, o.epochs);
    const auto start = std::chrono::steady_clock::now();
    const epoch_plan plan = plan_epoch(train, o.seed, epoch, o.shuffle, o.augment);
    running_metrics m;
    for (std::size_t first = 0; first < n; first += b) {
      const std::size_t count = std::min(b, n - first);
      load_batch(model.executor(), train, plan, first, count, o.augment.rescale, x.span().subspan(0, count * features),
                 host_span<float>(y.data(), count * f), f);
      (void)model.train_step(nn::host_tensor_view<const float>{x.data(), model.input_shape(count)},
                             nn::host_tensor_view<const float>{y.data(), model.output_shape(count)});
      accumulate_metrics(model.executor(), model.last_loss_address(), model.last_output(), y.data(), threshold, &m);
      if (bar.due()) bar.draw(m, b);
    }
    const double seconds = elapsed_since(start);
    std::optional<evaluation> val;
    if (o.validation) val = evaluate_cpu(model, *o.validation, b, o.augment.rescale, x, y);
    record_epoch(h, m, seconds, val, learning_rate_of(model));
    bar.end_epoch(h);
  }
  return h;
}

inline evaluation evaluate_impl(const cpu_executor&, nn::sequential<cpu_executor>& model, const image_set& set,
                               std::size_t batch, float rescale) {
  nn::host_tensor<float> x(model.input_shape(batch));
  std::vector<float> y(batch * model.output_shape().features());
  return evaluate_cpu(model, set, batch, rescale, x, y);
}

inline std::vector<float> predict_impl(const cpu_executor&, nn::sequential<cpu_executor>& model,
                                       host_span<const std::uint8_t> pixels, float rescale) {
  const nn::shape4 in = model.input_shape();
  const std::size_t image_bytes = in.features(), count = pixels.size() / image_bytes, b = model.max_batch();
  const std::size_t f = model.output_shape().features();
  std::vector<float> out(count * f);
  nn::host_tensor<float> x(model.input_shape(b));
  std::vector<std::uint32_t> rows(b);
  for (std::size_t first = 0; first < count; first += b) {
    const std::size_t k = std::min(b, count - first);
    for (std::size_t i = 0; i < k; ++i) rows[i] = static_cast<std::uint32_t>(first + i);
    augment_batch(model.executor(), pixels, in.w, in.h, in.c, host_span<const std::uint32_t>(rows.data(), k), {}, rescale,
                  x.span().subspan(0, k * image_bytes));
    const auto y = model.predict(nn::host_tensor_view<const float>{x.data(), model.input_shape(k)});
    std::copy(y.data, y.data + k * f, out.begin() + static_cast<std::ptrdiff_t>(first * f));
  }
  return out;
}

template <class Exec>
void check_fit(const nn::sequential<Exec>& model, const image_set& train, const fit_options& o) {
  constexpr const char* where = "gpukit::train::fit";
  check_model_for(model, train, where, "train");
  gpukit::detail::require(train.count >= 1, where, "argument 'train' holds no image");
  gpukit::detail::require(o.batch_size >= 1 && o.batch_size <= model.max_batch(), where,
                          "option 'batch_size' = " + std::to_string(o.batch_size) + " is outside [1, " +
                              std::to_string(model.max_batch()) + "] (the model's max_batch)");
  gpukit::detail::require(o.verbose >= 0 && o.verbose <= 2, where, "option 'verbose' = " + std::to_string(o.verbose) + " is not 0, 1 or 2");
  gpukit::detail::require(o.progress_seconds >= 0, where, "option 'progress_seconds' is negative");
  check_augment_options(o.augment, where);
  if (o.validation) {
    check_model_for(model, *o.validation, where, "options.validation");
    gpukit::detail::require(o.validation->count >= 1, where, "option 'validation' holds no image");
  }
}

#if defined(__CUDACC__)
// Defined in fit.cuh.
inline history fit_impl(const cuda_executor& exec, nn::sequential<cuda_executor>& model, const image_set& train,
                        const fit_options& o);
inline evaluation evaluate_impl(const cuda_executor& exec, nn::sequential<cuda_executor>& model, const image_set& set,
                                std::size_t batch, float rescale);
inline std::vector<float> predict_impl(const cuda_executor& exec, nn::sequential<cuda_executor>& model,
                                       host_span<const std::uint8_t> pixels, float rescale);
#else
GPUKIT_GPU_ONLY_STUB(fit_impl)
GPUKIT_GPU_ONLY_STUB(evaluate_impl)
GPUKIT_GPU_ONLY_STUB(predict_impl)
#endif

}  // namespace detail

/// Trains `model` on `train` (see the header comment); returns the per-epoch history.
template <class Exec>
history fit(nn::sequential<Exec>& model, const image_set& train, const fit_options& options = {}) {
  detail::check_fit(model, train, options);
  return detail::fit_impl(model.executor(), model, train, options);
}

/// The model's mean loss and accuracy over `set` (rescaled by `rescale`, no augmentation),
/// in batches of `batch_size` (0: the model's max_batch).
template <class Exec>
evaluation evaluate(nn::sequential<Exec>& model, const image_set& set, std::size_t batch_size = 0,
                    float rescale = 1.0f / 255.0f) {
  constexpr const char* where = "gpukit::train::evaluate";
  detail::check_model_for(model, set, where, "set");
  gpukit::detail::require(set.count >= 1, where, "argument 'set' holds no image");
  if (batch_size == 0) batch_size = model.max_batch();
  gpukit::detail::require(batch_size <= model.max_batch(), where,
                          "argument 'batch_size' = " + std::to_string(batch_size) + " exceeds the model's max_batch " +
                              std::to_string(model.max_batch()));
  return detail::evaluate_impl(model.executor(), model, set, batch_size, rescale);
}

/// The model's outputs (probabilities after a final sigmoid or softmax) for `pixels`: whole
/// uint8 images of the model's input shape, NHWC (height × width × channels bytes each),
/// rescaled by `rescale`; returns images × outputs floats. Always in inference (dropout
/// passes its input on), whatever set_training() says. GPU: waits for the results.
template <class Exec>
std::vector<float> predict(nn::sequential<Exec>& model, host_span<const std::uint8_t> pixels,
                           float rescale = 1.0f / 255.0f) {
  constexpr const char* where = "gpukit::train::predict";
  gpukit::detail::require(model.compiled(), where, "argument 'model' is not compiled: call compile() first");
  const std::size_t image_bytes = model.input_shape().features();
  gpukit::detail::require(pixels.size() % image_bytes == 0, where,
                          "argument 'pixels' has " + std::to_string(pixels.size()) +
                              " bytes, not a whole number of images of the model's input " +
                              nn::sample_string(model.input_shape()) + " (" + std::to_string(image_bytes) + " bytes each)");
  if (pixels.empty()) return {};
  struct inference_scope {  // the model's mode restored however predict leaves
    nn::sequential<Exec>& m;
    bool was;
    ~inference_scope() { m.set_training(was); }
  } scope{model, model.training()};
  model.set_training(false);
  return detail::predict_impl(model.executor(), model, pixels, rescale);
}

/// predict() for every image of `set` (its labels are not used).
template <class Exec>
std::vector<float> predict(nn::sequential<Exec>& model, const image_set& set, float rescale = 1.0f / 255.0f) {
  return predict(model, set.pixels, rescale);
}

}  // namespace gpukit::train

#if defined(__CUDACC__)
#include "gpukit/train/fit.cuh"
#endif
