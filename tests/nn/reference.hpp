// tests/nn/reference.hpp — the layers' forward passes written the plain way (one loop per
// index, double precision), independent of the library, plus the cases the layer tests
// share: odd sizes, batch 1, strides 1/2/3, padding 0/1, 'same' and per-side padding,
// dilation, disjoint and overlapping pools.
#pragma once

#include "nn/nn_support.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace nn_test {

struct conv_case {
  std::size_t n, ic, h, w, oc;
  nn::kernel_size k;
  std::size_t stride;
  nn::conv_padding pad;
  nn::activation act;
  std::optional<nn::maxpool2d> pool;
  std::size_t dilation = 1;

  nn::conv_block block() const { return {nn::conv2d(ic, oc, k, stride, pad).dilated(dilation), act, pool}; }
  shape4 in() const { return {n, ic, h, w}; }
  std::size_t extent_h() const { return (k.h - 1) * dilation + 1; }
  std::size_t extent_w() const { return (k.w - 1) * dilation + 1; }
  /// The padding's sides, 'same' worked out here as Keras documents it: ceil(in / stride)
  /// outputs, half the padding that needs before, the rest after.
  std::size_t top() const { return pad.is_same() ? same_total(h, extent_h()) / 2 : pad.top; }
  std::size_t bottom() const { return pad.is_same() ? same_total(h, extent_h()) - top() : pad.bottom; }
  std::size_t left() const { return pad.is_same() ? same_total(w, extent_w()) / 2 : pad.left; }
  std::size_t right() const { return pad.is_same() ? same_total(w, extent_w()) - left() : pad.right; }
  std::size_t same_total(std::size_t in, std::size_t extent) const {
    const long long out = static_cast<long long>((in + stride - 1) / stride);
    return static_cast<std::size_t>(std::max(0LL, (out - 1) * static_cast<long long>(stride) +
                                                      static_cast<long long>(extent) - static_cast<long long>(in)));
  }
  shape4 conv_out() const {
    return {n, oc, (h + top() + bottom() - extent_h()) / stride + 1, (w + left() + right() - extent_w()) / stride + 1};
  }
  shape4 out() const {
    const shape4 c = conv_out();
    if (!pool) return c;
    return {n, oc, (c.h - pool->window.h) / pool->stride.h + 1, (c.w - pool->window.w) / pool->stride.w + 1};
  }
  std::size_t weights() const { return oc * ic * k.h * k.w; }
  std::string name() const {
    std::string s = "x" + nn::to_string(in()) + " " + std::to_string(oc) + " filters " + nn::to_string(k) + " stride " +
                    std::to_string(stride) + " pad " + nn::to_string(pad) + " " + nn::activation_name(act);
    if (dilation > 1) s += " dilation " + std::to_string(dilation);
    if (pool) s += " pool " + nn::to_string(pool->window) + "/" + nn::to_string(pool->stride);
    return s;
  }
};

/// The cases every conv test runs.
inline std::vector<conv_case> conv_cases() {
  using nn::activation;
  using nn::maxpool2d;
  return {
      {1, 1, 5, 5, 1, {3, 3}, 1, 0, activation::none, std::nullopt},
      {2, 3, 7, 6, 4, {3, 3}, 1, 1, activation::relu, std::nullopt},
      {3, 2, 9, 8, 3, {2, 3}, 2, 0, activation::tanh, std::nullopt},
      {1, 3, 10, 11, 2, {3, 3}, 3, 1, activation::sigmoid, std::nullopt},
      {2, 3, 9, 9, 5, {3, 3}, 1, 0, activation::relu, maxpool2d(2)},
      {3, 2, 8, 7, 3, {1, 1}, 1, 0, activation::none, maxpool2d(3, 2)},
      {1, 2, 11, 9, 2, {5, 5}, 2, 1, activation::tanh, maxpool2d(nn::kernel_size{2, 1}, nn::kernel_size{1, 1})},
      {2, 1, 6, 6, 2, {3, 3}, 3, 1, activation::sigmoid, maxpool2d(2)},
      {1, 4, 4, 4, 3, {4, 4}, 1, 0, activation::relu, std::nullopt},
      {1, 9, 6, 5, 10, {3, 2}, 1, 1, activation::none, maxpool2d(2, 1)},  // 9 channels x 6 taps: two weight passes
      {2, 3, 7, 8, 4, {3, 3}, 1, 1, activation::leaky_relu(0.2f), maxpool2d(2)},
      // 'same', per-side padding, dilation, and the three together with strides.
      {2, 3, 7, 6, 4, {3, 3}, 1, nn::conv_padding::same, activation::relu, std::nullopt},
      {1, 2, 9, 8, 3, {4, 2}, 2, nn::conv_padding::same, activation::none, std::nullopt},  // odd padding: at the end
      {2, 2, 8, 9, 3, {3, 3}, 1, nn::conv_padding::sides(0, 2, 1, 0), activation::tanh, maxpool2d(2)},
      {2, 3, 9, 10, 4, {3, 3}, 1, 2, activation::relu, std::nullopt, 2},
      {1, 2, 11, 10, 3, {3, 2}, 2, nn::conv_padding::same, activation::sigmoid, std::nullopt, 2},  // tap residues skip
      {1, 3, 12, 11, 2, {2, 3}, 2, nn::conv_padding::sides(1, 0, 2, 1), activation::none, maxpool2d(2, 1), 3},
      // 36 taps: the GPU's input gradient tests bounds instead of a tap mask.
      {1, 2, 14, 13, 2, {6, 6}, 1, nn::conv_padding::same, activation::none, std::nullopt, 2},
  };
}

/// conv (+ bias) -> activation -> pool (when `with_pool`), plainly.
template <class T>
std::vector<double> reference_conv(const conv_case& c, const std::vector<T>& x, const std::vector<T>& w,
                                   const std::vector<T>& b, bool with_pool = true) {
  const shape4 co = c.conv_out();
  std::vector<double> z(co.size());
  for (std::size_t n = 0; n < c.n; ++n)
    for (std::size_t o = 0; o < c.oc; ++o)
      for (std::size_t oy = 0; oy < co.h; ++oy)
        for (std::size_t ox = 0; ox < co.w; ++ox) {
          double s = static_cast<double>(b[o]);
          for (std::size_t i = 0; i < c.ic; ++i)
            for (std::size_t ky = 0; ky < c.k.h; ++ky)
              for (std::size_t kx = 0; kx < c.k.w; ++kx) {
                const long long iy =
                    static_cast<long long>(oy * c.stride + ky * c.dilation) - static_cast<long long>(c.top());
                const long long ix =
                    static_cast<long long>(ox * c.stride + kx * c.dilation) - static_cast<long long>(c.left());
                if (iy < 0 || ix < 0 || iy >= static_cast<long long>(c.h) || ix >= static_cast<long long>(c.w)) continue;
                s += static_cast<double>(w[((o * c.ic + i) * c.k.h + ky) * c.k.w + kx]) *
                     static_cast<double>(x[((n * c.ic + i) * c.h + static_cast<std::size_t>(iy)) * c.w +
                                           static_cast<std::size_t>(ix)]);
              }
          z[((n * c.oc + o) * co.h + oy) * co.w + ox] = reference_activation(c.act, s);
        }
  if (!c.pool || !with_pool) return z;
  const shape4 po = c.out();
  std::vector<double> y(po.size());
  for (std::size_t p = 0; p < c.n * c.oc; ++p)
    for (std::size_t py = 0; py < po.h; ++py)
      for (std::size_t px = 0; px < po.w; ++px) {
        double best = -INFINITY;
        for (std::size_t wy = 0; wy < c.pool->window.h; ++wy)
          for (std::size_t wx = 0; wx < c.pool->window.w; ++wx)
            best = std::max(best, z[(p * co.h + py * c.pool->stride.h + wy) * co.w + px * c.pool->stride.w + wx]);
        y[(p * po.h + py) * po.w + px] = best;
      }
  return y;
}

struct pool_case {
  shape4 in;
  nn::maxpool2d pool;
  shape4 out() const {
    return {in.n, in.c, (in.h - pool.window.h) / pool.stride.h + 1, (in.w - pool.window.w) / pool.stride.w + 1};
  }
};

inline std::vector<pool_case> pool_cases() {
  return {
      {{1, 1, 4, 4}, nn::maxpool2d(2)},
      {{3, 2, 7, 5}, nn::maxpool2d(3, 2)},
      {{2, 3, 6, 7}, nn::maxpool2d(nn::kernel_size{2, 3}, nn::kernel_size{1, 2})},
      {{1, 1, 5, 5}, nn::maxpool2d(5, 1)},
      {{2, 4, 9, 11}, nn::maxpool2d(2, 3)},
  };
}

template <class T>
std::vector<double> reference_pool(const pool_case& c, const std::vector<T>& x) {
  const shape4 o = c.out();
  std::vector<double> y(o.size());
  for (std::size_t p = 0; p < o.n * o.c; ++p)
    for (std::size_t py = 0; py < o.h; ++py)
      for (std::size_t px = 0; px < o.w; ++px) {
        double best = -INFINITY;
        for (std::size_t wy = 0; wy < c.pool.window.h; ++wy)
          for (std::size_t wx = 0; wx < c.pool.window.w; ++wx)
            best = std::max(best, static_cast<double>(x[(p * c.in.h + py * c.pool.stride.h + wy) * c.in.w +
                                                        px * c.pool.stride.w + wx]));
        y[(p * o.h + py) * o.w + px] = best;
      }
  return y;
}

struct avgpool_case {
  shape4 in;
  nn::avgpool2d pool;
  shape4 out() const {
    return {in.n, in.c, (in.h - pool.window.h) / pool.stride.h + 1, (in.w - pool.window.w) / pool.stride.w + 1};
  }
};

/// Overlapping windows, gaps no window reaches, rectangular windows and plane-sized ones
/// (global pooling; 35 and 63 elements take the GPU's warp-per-output path).
inline std::vector<avgpool_case> avgpool_cases() {
  using nn::avgpool2d;
  using nn::kernel_size;
  return {
      {{1, 1, 4, 4}, avgpool2d(2)},
      {{3, 2, 7, 5}, avgpool2d(3, 2)},
      {{2, 3, 6, 7}, avgpool2d(kernel_size{2, 3}, kernel_size{1, 2})},
      {{2, 4, 9, 11}, avgpool2d(2, 3)},
      {{2, 3, 5, 7}, avgpool2d(kernel_size{5, 7}, kernel_size{5, 7})},
      {{1, 2, 9, 7}, avgpool2d(kernel_size{9, 7}, kernel_size{9, 7})},
  };
}

template <class T>
std::vector<double> reference_avgpool(const avgpool_case& c, const std::vector<T>& x) {
  const shape4 o = c.out();
  std::vector<double> y(o.size());
  for (std::size_t p = 0; p < o.n * o.c; ++p)
    for (std::size_t py = 0; py < o.h; ++py)
      for (std::size_t px = 0; px < o.w; ++px) {
        double s = 0;
        for (std::size_t wy = 0; wy < c.pool.window.h; ++wy)
          for (std::size_t wx = 0; wx < c.pool.window.w; ++wx)
            s += static_cast<double>(x[(p * c.in.h + py * c.pool.stride.h + wy) * c.in.w + px * c.pool.stride.w + wx]);
        y[(p * o.h + py) * o.w + px] = s / static_cast<double>(c.pool.window.h * c.pool.window.w);
      }
  return y;
}

struct dense_case {
  std::size_t n, in, out;
  nn::activation act;
};

template <class T>
std::vector<double> reference_dense(const dense_case& c, const std::vector<T>& x, const std::vector<T>& w,
                                    const std::vector<T>& b, bool activate = true) {
  std::vector<double> y(c.n * c.out);
  for (std::size_t n = 0; n < c.n; ++n)
    for (std::size_t o = 0; o < c.out; ++o) {
      double s = static_cast<double>(b[o]);
      for (std::size_t k = 0; k < c.in; ++k) s += static_cast<double>(x[n * c.in + k]) * static_cast<double>(w[o * c.in + k]);
      y[n * c.out + o] = activate ? reference_activation(c.act, s) : s;
    }
  return y;
}

}  // namespace nn_test
