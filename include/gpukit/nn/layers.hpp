// gpukit/nn/layers.hpp — the layer descriptions: what each layer is, how many parameters
// it has and what shape it produces. They hold no memory and know no executor; the layer
// functions (conv2d.hpp, maxpool2d.hpp, dense.hpp, activation.hpp) compute them and the
// sequential model (sequential.hpp) strings them together.
//
//   nn::conv2d(in_channels, out_channels, kernel, stride = 1, padding = 0)
//       kernel is a size (square) or nn::kernel_size{h, w}; weights (out, in, kh, kw) then
//       bias (out). Keras' old Convolution2D(32, 3, 3) is nn::conv2d(3, 32, 3, 1): stride is
//       always explicit here. padding (zeros) is a number for every side, or an
//       nn::conv_padding: ::same (Keras' 'same': ceil(in / stride) outputs, the odd one of
//       the padding at the bottom and right; torch's padding='same' at stride 1), ::valid
//       (none), ::hw(rows, columns) or ::sides(top, bottom, left, right).
//       .dilated(d): taps d apart (torch's dilation=d, Keras' dilation_rate=d).
//       .no_bias(): the layer without a bias (torch's bias=False; before a batch norm, whose
//       own bias makes one redundant): none in the model's parameters or files.
//   nn::maxpool2d(window, stride = window)           no padding, floor division
//   nn::avgpool2d(window, stride = window)           the window's mean; no padding, floor
//                                                      division (torch.nn.AvgPool2d)
//   nn::global_avgpool2d{}                            (n, c, h, w) -> (n, c, 1, 1): each
//                                                      plane's mean (Keras' GlobalAveragePooling2D;
//                                                      a dense layer can follow it directly)
//   nn::dense(in_features, out_features)              weights (out, in) then bias (out);
//                                                      takes a flat (n, in, 1, 1) input;
//                                                      .no_bias() as for conv2d
//   nn::flatten{}                                     (n, c, h, w) -> (n, c·h·w, 1, 1)
//   nn::relu{}, nn::sigmoid{}, nn::tanh{}             the same shape out; fused into the
//   nn::leaky_relu(negative_slope = 0.01)              conv, dense or batch norm before them
//   nn::gelu(tanh_approximation = false)               (GELU never: a pass of its own, since
//                                                      its backward needs its input)
//   nn::softmax{}                                     over the channels of each pixel (the
//                                                      features of a dense output)
//   nn::dropout(p = 0.5)                              training: each element zeroed with
//                                                      probability p, the others scaled by
//                                                      1 / (1 - p); inference: the identity
//   nn::batchnorm2d(channels, eps = 1e-5, momentum = 0.1)
//                                                      per channel over (n, h, w): the batch's
//                                                      mean and variance in training (and the
//                                                      running estimates updated), the running
//                                                      estimates in inference; then weight·x̂ +
//                                                      bias (torch.nn.BatchNorm2d)
//   nn::batchnorm1d(features, eps = 1e-5, momentum = 0.1)
//                                                      the same over a flat (n, f, 1, 1) input
//                                                      (torch.nn.BatchNorm1d)
//
// Constructors reject zero sizes and strides (std::invalid_argument naming the argument);
// output_shape() rejects inputs the layer cannot take, naming the layer, the argument and
// both shapes.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/init.hpp"
#include "gpukit/nn/tensor.hpp"

#include <cstddef>
#include <iterator>
#include <string>
#include <variant>

namespace gpukit::nn {

struct kernel_size {
  std::size_t h = 0, w = 0;
};

inline std::string to_string(kernel_size k) { return std::to_string(k.h) + "x" + std::to_string(k.w); }

/// "(None, 3, 64, 64)": a per-sample shape as Keras prints it.
inline std::string sample_string(const shape4& s) {
  return "(None, " + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " + std::to_string(s.w) + ")";
}

namespace detail {
inline void require_positive(std::size_t v, const char* where, const char* arg) {
  require(v >= 1, where, std::string("argument '") + arg + "' = " + std::to_string(v) + " must be at least 1");
}
}  // namespace detail

/// The zero padding of a convolution: explicit sides, or Keras' 'same' rule, which depends
/// on the input's size and is resolved against it (resolve()).
struct conv_padding {
  enum class rule { sides, same };
  rule how = rule::sides;
  std::size_t top = 0, bottom = 0, left = 0, right = 0;

  /// `all` zeros on every side (an int converts, as conv2d's old padding argument did).
  constexpr conv_padding(std::size_t all = 0) noexcept : top(all), bottom(all), left(all), right(all) {}
  static constexpr conv_padding sides(std::size_t top_, std::size_t bottom_, std::size_t left_,
                                      std::size_t right_) noexcept {
    conv_padding p;
    p.top = top_, p.bottom = bottom_, p.left = left_, p.right = right_;
    return p;
  }
  /// `rows` above and below, `columns` left and right (torch's padding=(rows, columns)).
  static constexpr conv_padding hw(std::size_t rows, std::size_t columns) noexcept {
    return sides(rows, rows, columns, columns);
  }
  /// Keras' padding='same': ceil(in / stride) outputs along each side; of the padding that
  /// takes, half before and the rest (the odd one) after. At stride 1 this is torch's
  /// padding='same' too.
  static const conv_padding same;
  /// No padding (Keras' 'valid').
  static const conv_padding valid;

  constexpr bool is_same() const noexcept { return how == rule::same; }
  constexpr bool symmetric() const noexcept { return !is_same() && top == bottom && top == left && top == right; }
  /// The explicit sides for an in_h x in_w input under a kernel whose taps span extent_h x
  /// extent_w (dilation included) at `stride`.
  constexpr conv_padding resolve(std::size_t in_h, std::size_t in_w, std::size_t extent_h, std::size_t extent_w,
                                 std::size_t stride) const noexcept {
    if (!is_same()) return *this;
    const auto total = [stride](std::size_t in, std::size_t extent) -> std::size_t {
      const std::size_t out = (in + stride - 1) / stride;
      const std::size_t need = (out - 1) * stride + extent;
      return need > in ? need - in : 0;
    };
    const std::size_t th = total(in_h, extent_h), tw = total(in_w, extent_w);
    return sides(th / 2, th - th / 2, tw / 2, tw - tw / 2);
  }
  friend constexpr bool operator==(const conv_padding& a, const conv_padding& b) noexcept {
    return a.how == b.how && (a.is_same() || (a.top == b.top && a.bottom == b.bottom && a.left == b.left &&
                                             a.right == b.right));
  }
  friend constexpr bool operator!=(const conv_padding& a, const conv_padding& b) noexcept { return !(a == b); }
};
inline constexpr conv_padding conv_padding::same = [] {
  conv_padding p;
  p.how = conv_padding::rule::same;
  return p;
}();
inline constexpr conv_padding conv_padding::valid{};

/// "same", "1" (every side; "0" for valid), "1x2" (rows x columns) or "top 1, bottom 2, left 0, right 1".
inline std::string to_string(const conv_padding& p) {
  if (p.is_same()) return "same";
  if (p.symmetric()) return std::to_string(p.top);
  if (p.top == p.bottom && p.left == p.right) return std::to_string(p.top) + "x" + std::to_string(p.left);
  return "top " + std::to_string(p.top) + ", bottom " + std::to_string(p.bottom) + ", left " + std::to_string(p.left) +
         ", right " + std::to_string(p.right);
}

struct conv2d {
  std::size_t in_channels = 0, out_channels = 0;
  kernel_size kernel{};
  std::size_t stride = 1;
  conv_padding padding{};
  std::size_t dilation = 1;  ///< taps this far apart (1: adjacent)
  init weight_init = init::glorot_uniform;
  bool use_bias = true;  ///< false: no bias parameters (the passes add zero)

  conv2d(std::size_t in, std::size_t out, kernel_size k, std::size_t stride_ = 1, conv_padding padding_ = {},
         init weights = init::glorot_uniform)
      : in_channels(in), out_channels(out), kernel(k), stride(stride_), padding(padding_), weight_init(weights) {
    validate();
  }
  conv2d(std::size_t in, std::size_t out, std::size_t k, std::size_t stride_ = 1, conv_padding padding_ = {},
         init weights = init::glorot_uniform)
      : conv2d(in, out, kernel_size{k, k}, stride_, padding_, weights) {}

  /// This layer without a bias (torch.nn.Conv2d's bias=False).
  conv2d no_bias() const {
    conv2d c = *this;
    c.use_bias = false;
    return c;
  }
  /// This layer with its taps `d` apart (torch.nn.Conv2d's dilation=d); d >= 1.
  conv2d dilated(std::size_t d) const {
    conv2d c = *this;
    c.dilation = d;
    c.validate();
    return c;
  }
  /// Rows x columns the kernel's taps span: (k - 1)·dilation + 1 each way.
  kernel_size extent() const noexcept {
    return {(kernel.h - 1) * dilation + 1, (kernel.w - 1) * dilation + 1};
  }
  /// The explicit padding sides for an input of `in`'s size ('same' resolved against it).
  conv_padding padding_for(const shape4& in) const noexcept {
    const kernel_size e = extent();
    return padding.resolve(in.h, in.w, e.h, e.w, stride);
  }

  std::size_t weight_count() const noexcept { return out_channels * in_channels * kernel.h * kernel.w; }
  /// The bias parameters the layer has in a model: out_channels, or 0 without a bias.
  std::size_t bias_count() const noexcept { return use_bias ? out_channels : 0; }
  std::size_t parameter_count() const noexcept { return weight_count() + bias_count(); }
  std::size_t fan_in() const noexcept { return in_channels * kernel.h * kernel.w; }
  std::size_t fan_out() const noexcept { return out_channels * kernel.h * kernel.w; }

  /// The shape produced from `in`; `who` names the layer in the message of a rejection.
  shape4 output_shape(const shape4& in, const std::string& who = "gpukit::nn::conv2d") const {
    validate();
    detail::require(in.c == in_channels, who.c_str(),
                    "argument 'in_channels' = " + std::to_string(in_channels) + " does not match the input's " +
                        std::to_string(in.c) + " channels (input shape " + sample_string(in) + ")");
    const conv_padding p = padding_for(in);
    const kernel_size e = extent();
    const std::size_t ph = in.h + p.top + p.bottom, pw = in.w + p.left + p.right;
    detail::require(e.h <= ph && e.w <= pw, who.c_str(),
                    "argument 'kernel' = " + to_string(kernel) +
                        (dilation > 1 ? " (dilation " + std::to_string(dilation) + ": it spans " + to_string(e) + ")"
                                      : std::string()) +
                        " is larger than the padded input " + std::to_string(ph) + "x" + std::to_string(pw) +
                        " (input shape " + sample_string(in) + ", padding " + to_string(padding) + ")");
    return {in.n, out_channels, (ph - e.h) / stride + 1, (pw - e.w) / stride + 1};
  }

 private:
  void validate() const {
    detail::require_positive(in_channels, "gpukit::nn::conv2d", "in_channels");
    detail::require_positive(out_channels, "gpukit::nn::conv2d", "out_channels");
    detail::require(kernel.h >= 1 && kernel.w >= 1, "gpukit::nn::conv2d",
                    "argument 'kernel' = " + to_string(kernel) + " must be at least 1x1");
    detail::require_positive(stride, "gpukit::nn::conv2d", "stride");
    detail::require_positive(dilation, "gpukit::nn::conv2d", "dilation");
  }
};

namespace detail {
/// The output of a pooling window over `in` (no padding, floor division); `layer` and `who`
/// name the layer in the messages of a rejection.
inline shape4 pooled_shape(kernel_size window, kernel_size stride, const shape4& in, const std::string& who) {
  require(window.h <= in.h && window.w <= in.w, who.c_str(),
          "argument 'window' = " + to_string(window) + " is larger than the input " + std::to_string(in.h) + "x" +
              std::to_string(in.w) + " (input shape " + sample_string(in) + ")");
  return {in.n, in.c, (in.h - window.h) / stride.h + 1, (in.w - window.w) / stride.w + 1};
}
inline void require_pool_window(kernel_size window, kernel_size stride, const char* layer) {
  require(window.h >= 1 && window.w >= 1, layer, "argument 'window' = " + to_string(window) + " must be at least 1x1");
  require(stride.h >= 1 && stride.w >= 1, layer, "argument 'stride' = " + to_string(stride) + " must be at least 1x1");
}
}  // namespace detail

struct maxpool2d {
  kernel_size window{};
  kernel_size stride{};

  explicit maxpool2d(std::size_t window_) : maxpool2d(kernel_size{window_, window_}, kernel_size{window_, window_}) {}
  maxpool2d(std::size_t window_, std::size_t stride_)
      : maxpool2d(kernel_size{window_, window_}, kernel_size{stride_, stride_}) {}
  maxpool2d(kernel_size window_, kernel_size stride_) : window(window_), stride(stride_) {
    detail::require_pool_window(window, stride, "gpukit::nn::maxpool2d");
  }

  shape4 output_shape(const shape4& in, const std::string& who = "gpukit::nn::maxpool2d") const {
    detail::require_pool_window(window, stride, "gpukit::nn::maxpool2d");
    return detail::pooled_shape(window, stride, in, who);
  }
  /// True when windows never share an input element (each input gets at most one gradient).
  bool disjoint() const noexcept { return window.h <= stride.h && window.w <= stride.w; }
};

/// Average pooling: each output is the mean of its window (every window lies inside the
/// input: no padding, so no count_include_pad question).
struct avgpool2d {
  kernel_size window{};
  kernel_size stride{};

  explicit avgpool2d(std::size_t window_) : avgpool2d(kernel_size{window_, window_}, kernel_size{window_, window_}) {}
  avgpool2d(std::size_t window_, std::size_t stride_)
      : avgpool2d(kernel_size{window_, window_}, kernel_size{stride_, stride_}) {}
  avgpool2d(kernel_size window_, kernel_size stride_) : window(window_), stride(stride_) {
    detail::require_pool_window(window, stride, "gpukit::nn::avgpool2d");
  }

  shape4 output_shape(const shape4& in, const std::string& who = "gpukit::nn::avgpool2d") const {
    detail::require_pool_window(window, stride, "gpukit::nn::avgpool2d");
    return detail::pooled_shape(window, stride, in, who);
  }
};

/// Global average pooling: each plane's mean, a flat (n, c, 1, 1) output.
struct global_avgpool2d {
  shape4 output_shape(const shape4& in, const std::string& = {}) const { return {in.n, in.c, 1, 1}; }
  /// The average pool it is over an input of `in`'s planes.
  avgpool2d as_avgpool(const shape4& in) const {
    return avgpool2d(kernel_size{in.h, in.w}, kernel_size{in.h, in.w});
  }
};

struct dense {
  std::size_t in_features = 0, out_features = 0;
  init weight_init = init::glorot_uniform;
  bool use_bias = true;  ///< false: no bias parameters (the passes add zero)

  dense(std::size_t in, std::size_t out, init weights = init::glorot_uniform)
      : in_features(in), out_features(out), weight_init(weights) {
    validate();
  }

  /// This layer without a bias (torch.nn.Linear's bias=False).
  dense no_bias() const {
    dense d = *this;
    d.use_bias = false;
    return d;
  }

  std::size_t weight_count() const noexcept { return out_features * in_features; }
  /// The bias parameters the layer has in a model: out_features, or 0 without a bias.
  std::size_t bias_count() const noexcept { return use_bias ? out_features : 0; }
  std::size_t parameter_count() const noexcept { return weight_count() + bias_count(); }
  std::size_t fan_in() const noexcept { return in_features; }
  std::size_t fan_out() const noexcept { return out_features; }

  shape4 output_shape(const shape4& in, const std::string& who = "gpukit::nn::dense") const {
    validate();
    detail::require(in.h == 1 && in.w == 1, who.c_str(),
                    "needs a flat input (None, " + std::to_string(in_features) + ", 1, 1), got " + sample_string(in) +
                        ": add a flatten layer before it");
    detail::require(in.c == in_features, who.c_str(),
                    "argument 'in_features' = " + std::to_string(in_features) + " does not match the input's " +
                        std::to_string(in.c) + " features (input shape " + sample_string(in) + ")");
    return {in.n, out_features, 1, 1};
  }

 private:
  void validate() const {
    detail::require_positive(in_features, "gpukit::nn::dense", "in_features");
    detail::require_positive(out_features, "gpukit::nn::dense", "out_features");
  }
};

struct flatten {
  shape4 output_shape(const shape4& in, const std::string& = {}) const { return {in.n, in.features(), 1, 1}; }
};

/// The activation layers: the same shape out as in.
struct relu {
  static constexpr activation kind = activation::relu;
  shape4 output_shape(const shape4& in, const std::string& = {}) const { return in; }
};
struct sigmoid {
  static constexpr activation kind = activation::sigmoid;
  shape4 output_shape(const shape4& in, const std::string& = {}) const { return in; }
};
struct tanh {
  static constexpr activation kind = activation::tanh;
  shape4 output_shape(const shape4& in, const std::string& = {}) const { return in; }
};
/// z for z > 0, negative_slope·z otherwise: torch.nn.LeakyReLU(negative_slope), whose default
/// 0.01 this shares (Keras' LeakyReLU layer defaults to 0.3). negative_slope >= 0 and finite,
/// so that the slope follows from the output and the layer fuses like relu.
struct leaky_relu {
  float negative_slope = 0.01f;

  explicit leaky_relu(float negative_slope_ = 0.01f) : negative_slope(negative_slope_) { validate(); }
  activation kind() const noexcept { return activation::leaky_relu(negative_slope); }
  shape4 output_shape(const shape4& in, const std::string& = {}) const {
    validate();
    return in;
  }

 private:
  void validate() const {
    detail::require(negative_slope >= 0.0f && negative_slope <= 3.4e38f, "gpukit::nn::leaky_relu",
                    "argument 'negative_slope' = " + std::to_string(negative_slope) + " must be non-negative and finite");
  }
};
/// z·Φ(z), Φ the standard normal CDF: torch.nn.GELU(), or with tanh_approximation its
/// approximate='tanh' form (Keras' gelu(approximate=True)). Its slope needs its input, so it
/// is always a pass of its own (never fused into the layer before it).
struct gelu {
  bool tanh_approximation = false;

  explicit gelu(bool tanh_approximation_ = false) : tanh_approximation(tanh_approximation_) {}
  activation kind() const noexcept { return tanh_approximation ? activation::gelu_tanh : activation::gelu; }
  shape4 output_shape(const shape4& in, const std::string& = {}) const { return in; }
};

/// Softmax over the channels of each pixel (softmax.hpp).
struct softmax {
  shape4 output_shape(const shape4& in, const std::string& = {}) const { return in; }
};

/// Dropout (see dropout.hpp for the mask): p in [0, 1).
struct dropout {
  float p = 0.5f;

  explicit dropout(float p_ = 0.5f) : p(p_) { validate(); }
  shape4 output_shape(const shape4& in, const std::string& = {}) const {
    validate();
    return in;
  }

 private:
  void validate() const {
    detail::require(p >= 0.0f && p < 1.0f, "gpukit::nn::dropout",
                    "argument 'p' = " + std::to_string(p) + " must lie in [0, 1)");
  }
};

/// Batch normalisation over the channels (see batchnorm.hpp): `dims` 2 takes any (n, c, h, w)
/// input (BatchNorm2d), 1 a flat (n, f, 1, 1) one (BatchNorm1d). Parameters: weight (c),
/// initialised to one, then bias (c), zero; the running mean and variance are the model's
/// state beside them. momentum as PyTorch's: running = (1 - momentum)·running + momentum·batch.
struct batchnorm {
  std::size_t features = 0;
  float eps = 1e-5f;
  float momentum = 0.1f;
  int dims = 2;

  batchnorm(std::size_t features_, float eps_ = 1e-5f, float momentum_ = 0.1f, int dims_ = 2)
      : features(features_), eps(eps_), momentum(momentum_), dims(dims_) {
    validate();
  }

  std::size_t weight_count() const noexcept { return features; }
  std::size_t bias_count() const noexcept { return features; }
  std::size_t parameter_count() const noexcept { return 2 * features; }
  const char* where() const noexcept { return dims == 1 ? "gpukit::nn::batchnorm1d" : "gpukit::nn::batchnorm2d"; }

  shape4 output_shape(const shape4& in, const std::string& who = {}) const {
    validate();
    const std::string w = who.empty() ? where() : who;
    if (dims == 1)
      detail::require(in.h == 1 && in.w == 1, w.c_str(),
                      "batchnorm1d needs a flat input (None, " + std::to_string(features) + ", 1, 1), got " +
                          sample_string(in) + ": add a flatten layer before it, or use batchnorm2d");
    detail::require(in.c == features, w.c_str(),
                    "argument '" + std::string(dims == 1 ? "features" : "channels") + "' = " + std::to_string(features) +
                        " does not match the input's " + std::to_string(in.c) + " channels (input shape " +
                        sample_string(in) + ")");
    return in;
  }

 private:
  void validate() const {
    detail::require_positive(features, where(), dims == 1 ? "features" : "channels");
    detail::require(eps > 0.0f && eps < 1e30f, where(), "argument 'eps' = " + std::to_string(eps) + " must be positive and finite");
    detail::require(momentum >= 0.0f && momentum <= 1.0f, where(),
                    "argument 'momentum' = " + std::to_string(momentum) + " must lie in [0, 1]");
    detail::require(dims == 1 || dims == 2, "gpukit::nn::batchnorm",
                    "argument 'dims' = " + std::to_string(dims) + " must be 1 or 2");
  }
};

/// torch.nn.BatchNorm2d(channels, eps, momentum).
inline batchnorm batchnorm2d(std::size_t channels, float eps = 1e-5f, float momentum = 0.1f) {
  return batchnorm(channels, eps, momentum, 2);
}
/// torch.nn.BatchNorm1d(features, eps, momentum) on a flat input.
inline batchnorm batchnorm1d(std::size_t features, float eps = 1e-5f, float momentum = 0.1f) {
  return batchnorm(features, eps, momentum, 1);
}

using layer = std::variant<conv2d, maxpool2d, dense, flatten, relu, sigmoid, tanh, avgpool2d, global_avgpool2d, dropout,
                           softmax, batchnorm, leaky_relu, gelu>;

/// Keras' class name of the layer: "Conv2D", "MaxPooling2D", "Dense", "Flatten", "ReLU", ...
inline const char* layer_type_name(const layer& l) noexcept {
  static constexpr const char* names[] = {"Conv2D", "MaxPooling2D", "Dense",           "Flatten",
                                          "ReLU",   "Sigmoid",      "Tanh",            "AveragePooling2D",
                                          "GlobalAveragePooling2D", "Dropout", "Softmax", "BatchNormalization",
                                          "LeakyReLU", "GELU"};
  static_assert(std::size(names) == std::variant_size_v<layer>, "a name for every layer kind");
  return names[l.index()];
}
/// The base of Keras' instance names: "conv2d", "max_pooling2d", "dense", ...
inline const char* layer_base_name(const layer& l) noexcept {
  static constexpr const char* names[] = {"conv2d",  "max_pooling2d", "dense",
                                          "flatten", "relu",          "sigmoid",
                                          "tanh",    "average_pooling2d", "global_average_pooling2d",
                                          "dropout", "softmax", "batch_normalization",
                                          "leaky_re_lu", "gelu"};
  static_assert(std::size(names) == std::variant_size_v<layer>, "a name for every layer kind");
  return names[l.index()];
}

inline std::size_t parameter_count(const layer& l) noexcept {
  if (const auto* c = std::get_if<conv2d>(&l)) return c->parameter_count();
  if (const auto* d = std::get_if<dense>(&l)) return d->parameter_count();
  if (const auto* b = std::get_if<batchnorm>(&l)) return b->parameter_count();
  return 0;
}

/// The activation an activation layer applies; activation::none for the other layers.
inline activation activation_of(const layer& l) noexcept {
  if (std::holds_alternative<relu>(l)) return activation::relu;
  if (std::holds_alternative<sigmoid>(l)) return activation::sigmoid;
  if (std::holds_alternative<tanh>(l)) return activation::tanh;
  if (const auto* a = std::get_if<leaky_relu>(&l)) return a->kind();
  if (const auto* a = std::get_if<gelu>(&l)) return a->kind();
  return activation::none;
}

inline shape4 output_shape(const layer& l, const shape4& in, const std::string& who) {
  return std::visit([&](const auto& x) { return x.output_shape(in, who); }, l);
}

}  // namespace gpukit::nn
