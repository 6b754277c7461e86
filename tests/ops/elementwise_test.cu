// Every named elementwise op on both executors and every element type it takes, against a
// double-precision reference; bad input for each shape of op.
#include "ops/op_harness.hpp"

#include <cmath>

using namespace ops_test;

namespace {

// Correctly rounded ops (IEEE +, -, ·, /, √, and exact ones like negate) must agree with
// the reference to half an ulp and between executors bit for bit. Half/bfloat16 are
// computed in float and rounded once: within one of their ulps, identical on both sides.
template <class T>
constexpr tolerance exact = {1.0, true};
// libm and CUDA's math library differ by a few ulps in exp, log, pow, tanh.
template <class T>
constexpr tolerance transcendental = {gpukit::detail::is_reduced_float_v<T> ? 2.0 : 8.0, false};

// Every float op also runs at 2^28 elements on the GPU (fewer under GPUKIT_TEST_MAX_ELEMENTS).
template <class T>
constexpr bool huge = std::is_same_v<T, float>;

template <class T>
double widen_d(T x) {
  return as_double(x);
}

template <class T>
void check_arithmetic(where w) {
  const double m = gpukit::detail::is_reduced_float_v<T> ? 200 : 1000;  // half's products must stay below 65504
  const double r2[2][2] = {{-m, m}, {-m, m}};
  const double positive_divisor[2][2] = {{-m, m}, {1, 100}};
  const double r1[1][2] = {{-m, m}};
  SECTION("add") {
    check_op<T>(w, [](auto& e, auto& a, auto& b, auto& o) { gpukit::add(e, a, b, o); },
                [](T a, T b) { return widen_d(a) + widen_d(b); }, r2, exact<T>, huge<T>);
  }
  SECTION("subtract") {
    check_op<T>(w, [](auto& e, auto& a, auto& b, auto& o) { gpukit::subtract(e, a, b, o); },
                [](T a, T b) { return widen_d(a) - widen_d(b); }, r2, exact<T>, huge<T>);
  }
  SECTION("multiply") {
    check_op<T>(w, [](auto& e, auto& a, auto& b, auto& o) { gpukit::multiply(e, a, b, o); },
                [](T a, T b) { return widen_d(a) * widen_d(b); }, r2, exact<T>, huge<T>);
  }
  SECTION("divide") {
    check_op<T>(w, [](auto& e, auto& a, auto& b, auto& o) { gpukit::divide(e, a, b, o); },
                [](T a, T b) {
                  if constexpr (std::is_integral_v<T>) return static_cast<double>(a / b);
                  return widen_d(a) / widen_d(b);
                },
                positive_divisor, exact<T>, huge<T>);
  }
  SECTION("minimum and maximum") {
    check_op<T>(w, [](auto& e, auto& a, auto& b, auto& o) { gpukit::minimum(e, a, b, o); },
                [](T a, T b) { return std::min(widen_d(a), widen_d(b)); }, r2, exact<T>, huge<T>);
    check_op<T>(w, [](auto& e, auto& a, auto& b, auto& o) { gpukit::maximum(e, a, b, o); },
                [](T a, T b) { return std::max(widen_d(a), widen_d(b)); }, r2, exact<T>, huge<T>);
  }
  SECTION("negate, abs, relu") {
    check_op<T>(w, [](auto& e, auto& x, auto& o) { gpukit::negate(e, x, o); }, [](T x) { return -widen_d(x); }, r1,
                exact<T>, huge<T>);
    check_op<T>(w, [](auto& e, auto& x, auto& o) { gpukit::abs(e, x, o); }, [](T x) { return std::fabs(widen_d(x)); },
                r1, exact<T>, huge<T>);
    check_op<T>(w, [](auto& e, auto& x, auto& o) { gpukit::relu(e, x, o); },
                [](T x) { return std::max(widen_d(x), 0.0); }, r1, exact<T>, huge<T>);
  }
}

template <class T>
void check_transcendental(where w) {
  const bool narrow = gpukit::detail::is_reduced_float_v<T>;
  SECTION("sqrt") {
    const double r[1][2] = {{0, 1e4}};
    check_op<T>(w, [](auto& e, auto& x, auto& o) { gpukit::sqrt(e, x, o); }, [](T x) { return std::sqrt(widen_d(x)); },
                r, exact<T>, huge<T>);
  }
  SECTION("exp") {
    const double r[1][2] = {{narrow ? -8.0 : -30.0, narrow ? 8.0 : 30.0}};
    check_op<T>(w, [](auto& e, auto& x, auto& o) { gpukit::exp(e, x, o); }, [](T x) { return std::exp(widen_d(x)); },
                r, transcendental<T>, huge<T>);
  }
  SECTION("log") {
    const double r[1][2] = {{1e-3, 1e4}};
    check_op<T>(w, [](auto& e, auto& x, auto& o) { gpukit::log(e, x, o); }, [](T x) { return std::log(widen_d(x)); },
                r, transcendental<T>, huge<T>);
  }
  SECTION("pow") {
    const double r[2][2] = {{0.1, 10}, {-3, 3}};
    check_op<T>(w, [](auto& e, auto& a, auto& b, auto& o) { gpukit::pow(e, a, b, o); },
                [](T a, T b) { return std::pow(widen_d(a), widen_d(b)); }, r, transcendental<T>, huge<T>);
  }
  SECTION("sigmoid and tanh") {
    const double r[1][2] = {{-20, 20}};
    check_op<T>(w, [](auto& e, auto& x, auto& o) { gpukit::sigmoid(e, x, o); },
                [](T x) { return 1.0 / (1.0 + std::exp(-widen_d(x))); }, r, transcendental<T>, huge<T>);
    const double t[1][2] = {{-5, 5}};
    check_op<T>(w, [](auto& e, auto& x, auto& o) { gpukit::tanh(e, x, o); },
                [](T x) { return std::tanh(widen_d(x)); }, t, transcendental<T>, huge<T>);
  }
}

// a·x + y style ops round once on the GPU (fused) and may round twice on the CPU, so they
// are held to a few ulps of the terms' magnitude, not of a possibly cancelled result.
template <class T>
void check_fused(where w) {
  const double r3[3][2] = {{-100, 100}, {-100, 100}, {-100, 100}};
  const double ulps = gpukit::detail::is_reduced_float_v<T> ? 2.0 : 4.0;
  test_stream owner(w);
  const stream_view s = owner.view;
  const auto terms = [](double a, double b, double c) { return std::fabs(a * b) + std::fabs(c); };
  for (std::size_t n : sizes(w, huge<T>)) {
    CAPTURE(n);
    const auto a = gpukit_test::random_values<T>(n, r3[0][0], r3[0][1], 1 + n);
    const auto b = gpukit_test::random_values<T>(n, r3[1][0], r3[1][1], 2 + n);
    const auto c = gpukit_test::random_values<T>(n, r3[2][0], r3[2][1], 3 + n);
    const double alpha = 1.75;
    std::vector<double> fma_ref(n), fma_mag(n), axpy_ref(n), axpy_mag(n), scale_ref(n);
    for (std::size_t i = 0; i < n; ++i) {
      fma_ref[i] = widen_d(a[i]) * widen_d(b[i]) + widen_d(c[i]);
      fma_mag[i] = terms(widen_d(a[i]), widen_d(b[i]), widen_d(c[i]));
      axpy_ref[i] = alpha * widen_d(a[i]) + widen_d(c[i]);
      axpy_mag[i] = terms(alpha, widen_d(a[i]), widen_d(c[i]));
      scale_ref[i] = alpha * widen_d(a[i]);
    }
    auto run = [&](auto& exec, const auto& da, const auto& db, const auto& dc, auto& out, auto& y, auto& scaled) {
      gpukit::fma(exec, da, db, dc, out);
      gpukit::axpy(exec, alpha, da, y);
      gpukit::scale(exec, alpha, da, scaled);
    };
    std::vector<T> out = poisoned<T>(n), y = c, scaled = poisoned<T>(n);
    if (w == where::cpu) {
      const cpu_executor exec;
      run(exec, a, b, c, out, y, scaled);
    } else {
      const cuda_executor exec(s);
      auto da = device_buffer<T>::from_host(a, s), db = device_buffer<T>::from_host(b, s);
      auto dc = device_buffer<T>::from_host(c, s), dy = device_buffer<T>::from_host(c, s);
      auto dout = poisoned_device<T>(n, s), dscaled = poisoned_device<T>(n, s);
      run(exec, da, db, dc, dout, dy, dscaled);
      out = dout.to_host(s);
      y = dy.to_host(s);
      scaled = dscaled.to_host(s);
    }
    gpukit_test::require_close(out, fma_ref, ulps, fma_mag);
    gpukit_test::require_close(y, axpy_ref, ulps, axpy_mag);
    gpukit_test::require_close(scaled, scale_ref, 1.0);
  }
}

template <class T>
void check_generators(where w) {
  test_stream owner(w);
  const stream_view s = owner.view;
  for (std::size_t n : sizes(w, huge<T>)) {
    CAPTURE(n);
    const T start = static_cast<T>(3.0f), step = static_cast<T>(2.0f);
    const auto in = gpukit_test::random_values<T>(n, -100, 100, 5 + n);
    std::vector<T> filled = poisoned<T>(n), seq = poisoned<T>(n), copied = poisoned<T>(n);
    std::vector<double> as_dbl = poisoned<double>(n);
    if (w == where::cpu) {
      const cpu_executor exec;
      gpukit::fill(exec, filled, static_cast<T>(7.0f));
      gpukit::sequence(exec, seq, start, step);
      gpukit::copy(exec, in, copied);
      gpukit::cast(exec, in, as_dbl);
    } else {
      const cuda_executor exec(s);
      auto f = poisoned_device<T>(n, s), q = poisoned_device<T>(n, s), c = poisoned_device<T>(n, s);
      auto d = poisoned_device<double>(n, s);
      auto din = device_buffer<T>::from_host(in, s);
      gpukit::fill(exec, f, static_cast<T>(7.0f));
      gpukit::sequence(exec, q, start, step);
      gpukit::copy(exec, din, c);
      gpukit::cast(exec, din, d);
      filled = f.to_host(s);
      seq = q.to_host(s);
      copied = c.to_host(s);
      as_dbl = d.to_host(s);
    }
    std::vector<double> sevens(n, 7.0), seq_ref(n), in_ref(n);
    for (std::size_t i = 0; i < n; ++i) {
      seq_ref[i] = 3.0 + 2.0 * static_cast<double>(i);
      in_ref[i] = as_double(in[i]);
    }
    gpukit_test::require_close(filled, sevens, 0.0);
    if (!gpukit::detail::is_reduced_float_v<T>) gpukit_test::require_close(seq, seq_ref, 1.0);  // half cannot hold 2e6
    gpukit_test::require_identical(copied, in);
    gpukit_test::require_close(as_dbl, in_ref, 0.0);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("arithmetic ops on the CPU", "[ops][elementwise]", float, double, std::int32_t, std::int64_t,
                   gpukit::half, gpukit::bfloat16) {
  check_arithmetic<TestType>(where::cpu);
}
TEMPLATE_TEST_CASE("arithmetic ops on the GPU", "[gpu][ops][elementwise]", float, double, std::int32_t, std::int64_t,
                   gpukit::half, gpukit::bfloat16) {
  check_arithmetic<TestType>(where::gpu);
}
TEMPLATE_TEST_CASE("transcendental ops on the CPU", "[ops][elementwise]", float, double, gpukit::half,
                   gpukit::bfloat16) {
  check_transcendental<TestType>(where::cpu);
}
TEMPLATE_TEST_CASE("transcendental ops on the GPU", "[gpu][ops][elementwise]", float, double, gpukit::half,
                   gpukit::bfloat16) {
  check_transcendental<TestType>(where::gpu);
}
TEMPLATE_TEST_CASE("fma, axpy and scale on the CPU", "[ops][elementwise]", float, double, gpukit::half) {
  check_fused<TestType>(where::cpu);
}
TEMPLATE_TEST_CASE("fma, axpy and scale on the GPU", "[gpu][ops][elementwise]", float, double, gpukit::half) {
  check_fused<TestType>(where::gpu);
}
TEMPLATE_TEST_CASE("fill, sequence, copy and cast on the CPU", "[ops][elementwise]", float, double, std::int32_t,
                   std::int64_t, gpukit::half) {
  check_generators<TestType>(where::cpu);
}
TEMPLATE_TEST_CASE("fill, sequence, copy and cast on the GPU", "[gpu][ops][elementwise]", float, double, std::int32_t,
                   std::int64_t, gpukit::half) {
  check_generators<TestType>(where::gpu);
}

namespace {
void check_clamp(where w) {
  const double r[1][2] = {{-50, 50}};
  check_op<float>(
      w, [](auto& e, auto& x, auto& o) { gpukit::clamp(e, x, -10.0f, 20.0f, o); },
      [](float x) { return std::min(std::max(static_cast<double>(x), -10.0), 20.0); }, r, {0.0, true}, true);
}

struct axby_plus_c {
  float a, b;
  GPUKIT_HOST_DEVICE float operator()(float x, float y, float c) const { return a * x + b * y + c; }
};

void check_user_functor(where w) {
  const double r[3][2] = {{-1, 1}, {-1, 1}, {-1, 1}};
  const auto call = [](auto& e, auto& x, auto& y, auto& c, auto& o) { gpukit::transform(e, o, axby_plus_c{2.0f, -3.0f}, x, y, c); };
  const auto ref = [](float x, float y, float c) { return 2.0 * x - 3.0 * y + c; };
  // contraction into FMA differs between compilers: a few ulps of the terms' magnitude
  const auto terms = [](float x, float y, float c) { return 2.0 * std::fabs(x) + 3.0 * std::fabs(y) + std::fabs(c); };
  check_op<float>(w, call, ref, r, {4.0, false}, true, terms);
}
}  // namespace

TEST_CASE("clamp on the CPU", "[ops][elementwise]") { check_clamp(where::cpu); }
TEST_CASE("clamp on the GPU", "[gpu][ops][elementwise]") { check_clamp(where::gpu); }
TEST_CASE("a user functor through gpukit::transform on the CPU, three inputs in one pass", "[ops][transform]") {
  check_user_functor(where::cpu);
}
TEST_CASE("a user functor through gpukit::transform on the GPU, three inputs in one pass", "[gpu][ops][transform]") {
  check_user_functor(where::gpu);
}
