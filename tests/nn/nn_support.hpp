// tests/nn/nn_support.hpp — what the nn tests share: random tensors, norm-wise relative
// error, and the central-difference gradient every analytic gradient is checked against.
//
// Gradient checks run the CPU path in double: L = Σ r·y for a random r, so ∂L/∂input is
// exactly what backward computes from dy = r; each input element is moved by ±h and
// (L(+h) - L(-h)) / 2h must match within 1e-6 of the gradient's scale (truncation error
// O(h²), rounding O(ε·|L|/h), both far below that).
#pragma once

#include "gpukit/core.hpp"
#include "gpukit/nn.hpp"
#include "support/catch.hpp"
#include "support/numeric_checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace nn_test {

namespace nn = gpukit::nn;
using nn::shape4;

template <class T = double>
std::vector<T> random_vector(std::size_t n, double lo, double hi, std::uint64_t salt) {
  return gpukit_test::random_values<T>(n, lo, hi, salt);
}

template <class T>
nn::host_tensor_view<T> view(std::vector<T>& v, shape4 s) {
  return nn::make_tensor_view(gpukit::make_host_span(v), s);
}
template <class T>
nn::host_tensor_view<const T> view(const std::vector<T>& v, shape4 s) {
  return nn::make_tensor_view(gpukit::make_host_span(v), s);
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}
template <class T>
std::vector<float> to_float(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i]);
  return out;
}

/// max |got - ref| / max |ref| (the scale floored at `floor`): the error relative to the
/// tensor's magnitude, the measure that means something for sums with cancellation.
inline double relative_error(const std::vector<double>& got, const std::vector<double>& ref, double floor = 1e-30) {
  REQUIRE(got.size() == ref.size());
  double worst = 0, scale = floor;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(ref[i]));
    worst = std::max(worst, std::fabs(got[i] - ref[i]));
  }
  return worst / scale;
}

/// Requires relative_error(got, ref) <= tol; on failure names the worst element. The scale
/// is the largest |ref|, at least `min_scale` (where the values are sums that cancel, the
/// size of their terms).
inline void require_relative(const std::vector<double>& got, const std::vector<double>& ref, double tol,
                             const std::string& what, double min_scale = 1e-30) {
  REQUIRE(got.size() == ref.size());
  std::size_t worst_i = 0;
  double worst = -1, scale = min_scale;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(ref[i]));
    const double d = std::isnan(got[i]) ? INFINITY : std::fabs(got[i] - ref[i]);
    if (d > worst) worst = d, worst_i = i;
  }
  INFO(what << ": relative error " << (ref.empty() ? 0.0 : worst / scale) << " (tolerance " << tol << ") at index "
            << worst_i << ": got " << (ref.empty() ? 0.0 : got[worst_i]) << ", want "
            << (ref.empty() ? 0.0 : ref[worst_i]) << ", scale " << scale);
  REQUIRE((ref.empty() || worst / scale <= tol));
}

/// ∂objective/∂v by central differences, each element of v moved by ±h and restored.
template <class F>
std::vector<double> numeric_gradient(std::vector<double>& v, F objective, double h = 1e-6) {
  std::vector<double> g(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + h;
    const double up = objective();
    v[i] = keep - h;
    const double down = objective();
    v[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/// Central differences of `objective` over v at step 1e-6, or false when steps 1e-6 and 1e-5
/// disagree by more than 1e-7 of the largest: a relu input or a pool window's two largest
/// values within a step of a kink make the difference wrong, not the analytic gradient
/// (smooth, the two agree to about 1e-10), and the caller draws another input.
template <class F>
bool smooth_numeric_gradient(std::vector<double>& v, F objective, std::vector<double>& numeric) {
  numeric = numeric_gradient(v, objective);
  const std::vector<double> coarse = numeric_gradient(v, objective, 1e-5);
  double scale = 1.0, spread = 0.0;
  for (std::size_t i = 0; i < numeric.size(); ++i)
    scale = std::max(scale, std::fabs(numeric[i])), spread = std::max(spread, std::fabs(numeric[i] - coarse[i]));
  return spread <= 1e-7 * scale;
}

/// Analytic against numeric gradient: every element within 1e-6 of max(1, max |numeric|).
inline void require_gradient(const std::vector<double>& analytic, const std::vector<double>& numeric,
                             const std::string& what) {
  REQUIRE(analytic.size() == numeric.size());
  double scale = 1.0;
  for (double v : numeric) scale = std::max(scale, std::fabs(v));
  std::size_t bad = 0;
  std::string report;
  for (std::size_t i = 0; i < numeric.size(); ++i) {
    if (std::fabs(analytic[i] - numeric[i]) <= 1e-6 * scale) continue;
    if (++bad <= 5) {
      char line[160];
      std::snprintf(line, sizeof line, "  [%zu] analytic %.12g, numeric %.12g\n", i, analytic[i], numeric[i]);
      report += line;
    }
  }
  INFO(what << ": " << bad << " of " << numeric.size() << " gradient elements differ\n" << report);
  REQUIRE(bad == 0);
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// The activations, written out independently of the library.
inline double reference_activation(nn::activation a, double z) {
  switch (a) {
    case nn::activation::relu: return z > 0 ? z : 0;
    case nn::activation::sigmoid: return 1 / (1 + std::exp(-z));
    case nn::activation::tanh: return std::tanh(z);
    case nn::activation_kind::leaky_relu: return z > 0 ? z : static_cast<double>(a.negative_slope) * z;
    case nn::activation::gelu: return 0.5 * z * (1 + std::erf(z / std::sqrt(2.0)));
    case nn::activation::gelu_tanh:
      return 0.5 * z * (1 + std::tanh(std::sqrt(2 / 3.14159265358979323846) * (z + 0.044715 * z * z * z)));
    default: return z;
  }
}

}  // namespace nn_test
