// Reductions and scans on both executors against double-precision (for floats) or exact
// (for integers) references, host-returning and *_async forms, empty inputs.
#include "ops/op_harness.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace ops_test;

namespace {

// Both executors' sums of random reals sit within c·ε·Σ|x| of the exact sum: the GPU's
// tree grows c with log2(n), the CPU's blocked lanes with block/lanes + blocks per thread;
// on random data both stay well under 64. (Lost or doubled elements are caught by the
// exact whole-number sums below, which no tolerance could.)
constexpr double sum_ulps = 64.0;

template <class T>
struct reference {
  double sum = 0, abs_sum = 0, sum_sq = 0;
  double min = 0, max = 0;
  std::int64_t argmin = 0, argmax = 0, positives = 0;
};

template <class T>
reference<T> make_reference(const std::vector<T>& x) {
  reference<T> r;
  long double s = 0, a = 0, q = 0;  // wider than double on x86: a compensated-quality reference
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = as_double(x[i]);
    s += v;
    a += std::fabs(v);
    q += static_cast<long double>(v) * v;
    r.positives += v > 0;
    if (i == 0 || v < r.min) r.min = v, r.argmin = static_cast<std::int64_t>(i);
    if (i == 0 || v > r.max) r.max = v, r.argmax = static_cast<std::int64_t>(i);
  }
  r.sum = static_cast<double>(s);
  r.abs_sum = static_cast<double>(a);
  r.sum_sq = static_cast<double>(q);
  return r;
}

template <class T>
void require_near(double got, double want, double scale) {
  if constexpr (std::is_integral_v<T>) {
    REQUIRE(got == want);
  } else {
    const double tol = sum_ulps * gpukit_test::epsilon<T>() * std::max(scale, 1e-30);
    INFO("got " << got << ", want " << want << ", tolerance " << tol);
    REQUIRE(std::fabs(got - want) <= tol);
  }
}

struct is_positive {
  template <class T>
  GPUKIT_HOST_DEVICE bool operator()(T x) const {
    return static_cast<double>(gpukit::detail::widen(x)) > 0.0;
  }
};

template <class T, class Exec, class X>
void check_reductions_with(const Exec& exec, const X& x, const std::vector<T>& host, std::size_t n) {
  const reference<T> r = make_reference(host);
  require_near<T>(static_cast<double>(gpukit::sum(exec, x)), r.sum, r.abs_sum);
  require_near<T>(static_cast<double>(gpukit::dot(exec, x, x)), r.sum_sq, r.sum_sq);
  REQUIRE(gpukit::count_if(exec, x, is_positive{}) == r.positives);
  REQUIRE(gpukit::any(exec, x, is_positive{}) == (r.positives > 0));
  REQUIRE(gpukit::all(exec, x, is_positive{}) == (r.positives == static_cast<std::int64_t>(n)));
  if (n == 0) {
    CHECK_THROWS_AS(gpukit::min(exec, x), std::invalid_argument);
    CHECK_THROWS_AS(gpukit::mean(exec, x), std::invalid_argument);
    return;
  }
  REQUIRE(static_cast<double>(gpukit::min(exec, x)) == r.min);
  REQUIRE(static_cast<double>(gpukit::max(exec, x)) == r.max);
  if constexpr (std::is_integral_v<T>) {
    REQUIRE(gpukit::mean(exec, x) == r.sum / static_cast<double>(n));  // exact int64 sum, one division
  } else {
    require_near<T>(static_cast<double>(gpukit::mean(exec, x)) * static_cast<double>(n), r.sum, r.abs_sum);
  }
  if constexpr (std::is_floating_point_v<T>) {
    const double norm = static_cast<double>(gpukit::norm2(exec, x));
    require_near<T>(norm * norm, r.sum_sq, r.sum_sq);
  }
  if constexpr (std::is_arithmetic_v<T>) {
    const auto lo = gpukit::argmin(exec, x);
    const auto hi = gpukit::argmax(exec, x);
    CHECK(static_cast<double>(lo.value) == r.min);
    CHECK(lo.index == r.argmin);
    CHECK(static_cast<double>(hi.value) == r.max);
    CHECK(hi.index == r.argmax);
  }
  // max via the general transform_reduce
  const double via_general = static_cast<double>(gpukit::transform_reduce(
      exec, x, std::numeric_limits<gpukit::detail::compute_t<T>>::lowest(), gpukit::fn::maximum{},
      gpukit::fn::widened{}));
  REQUIRE(via_general == r.max);
}

template <class T>
void check_reductions(where w) {
  test_stream owner(w);
  const stream_view s = owner.view;
  for (std::size_t n : sizes(w, std::is_same_v<T, float> || std::is_same_v<T, std::int32_t>)) {
    CAPTURE(n);
    // integers small enough that int64 sums stay exact; floats of both signs
    const auto x = gpukit_test::random_values<T>(n, -100, 100, 31 + n);
    if (w == where::cpu) {
      check_reductions_with<T>(cpu_executor{}, x, x, n);
    } else {
      const cuda_executor exec(s);
      const auto d = device_buffer<T>::from_host(x, s);
      check_reductions_with<T>(exec, d, x, n);
    }
  }
}

// Small whole numbers make every partial sum exact in float and double, whatever the
// grouping: the sums must then be exact, so a lost or doubled element cannot hide inside a
// rounding tolerance.
template <class T>
void check_exact_sums(where w) {
  test_stream owner(w);
  for (std::size_t n : sizes(w)) {  // up to 1e6·3² < 2^24: every partial sum exact in float
    CAPTURE(n);
    const auto whole = gpukit_test::random_values<int>(n, -3, 4, 57 + n);  // integers in [-3, 3]
    const std::vector<T> x(whole.begin(), whole.end());
    long double s = 0, q = 0;
    for (const T v : x) s += v, q += static_cast<long double>(v) * v;
    double got_sum = 0, got_dot = 0;
    if (w == where::cpu) {
      got_sum = gpukit::sum(cpu_executor{}, x);
      got_dot = gpukit::dot(cpu_executor{}, x, x);
    } else {
      const cuda_executor exec(owner.view);
      const auto d = device_buffer<T>::from_host(x, owner.view);
      got_sum = gpukit::sum(exec, d);
      got_dot = gpukit::dot(exec, d, d);
    }
    REQUIRE(got_sum == static_cast<double>(s));
    REQUIRE(got_dot == static_cast<double>(q));
  }
}

template <class T>
void check_product(where w) {
  // ±1 for integers and values near 1 for floats, so the product neither overflows nor
  // underflows; the float tolerance is relative to the product (n·ε growth in the worst case).
  const std::size_t n = 100003;
  std::vector<T> x = std::is_integral_v<T> ? gpukit_test::random_values<T>(n, 0, 2, 7)
                                           : gpukit_test::random_values<T>(n, 0.999, 1.001, 7);
  long double ref = 1;
  for (auto& v : x) {
    if constexpr (std::is_integral_v<T>) v = v == 0 ? T(-1) : T(1);
    ref *= as_double(v);
  }
  double got = 0;
  if (w == where::cpu) {
    got = static_cast<double>(gpukit::product(cpu_executor{}, x));
  } else {
    stream s;
    got = static_cast<double>(gpukit::product(cuda_executor(s.view()), device_buffer<T>::from_host(x, s)));
  }
  if constexpr (std::is_integral_v<T>) {
    REQUIRE(got == static_cast<double>(ref));
  } else {
    REQUIRE(std::fabs(got - static_cast<double>(ref)) <= 1e-3 * std::fabs(static_cast<double>(ref)));
  }
  // the product of nothing is 1
  std::vector<T> none;
  REQUIRE(static_cast<double>(gpukit::product(cpu_executor{}, none)) == 1.0);
}

template <class T>
void check_scans(where w) {
  test_stream owner(w);
  const stream_view s = owner.view;
  for (std::size_t n : sizes(w, std::is_same_v<T, std::int32_t> || std::is_same_v<T, float>)) {
    CAPTURE(n);
    const auto x = gpukit_test::random_values<T>(n, -100, 100, 91 + n);
    std::vector<double> inc(n), exc(n), mag(n), running_max(n);
    long double acc = 0, a = 0;
    double m = -1e300;
    for (std::size_t i = 0; i < n; ++i) {
      exc[i] = static_cast<double>(acc) + 5.0;
      acc += as_double(x[i]);
      a += std::fabs(as_double(x[i]));
      inc[i] = static_cast<double>(acc);
      mag[i] = static_cast<double>(a) + 5.0;
      m = std::max(m, as_double(x[i]));
      running_max[i] = m;
    }
    std::vector<T> got_inc = poisoned<T>(n), got_exc = poisoned<T>(n), got_max = poisoned<T>(n), in_place = x;
    const auto max_op = gpukit::fn::maximum{};
    if (w == where::cpu) {
      const cpu_executor exec;
      gpukit::inclusive_scan(exec, x, got_inc);
      gpukit::exclusive_scan(exec, x, got_exc, T(5));
      gpukit::inclusive_scan(exec, x, got_max, max_op);
      gpukit::inclusive_scan(exec, in_place, in_place);
    } else {
      const cuda_executor exec(s);
      auto dx = device_buffer<T>::from_host(x, s);
      auto di = poisoned_device<T>(n, s), de = poisoned_device<T>(n, s), dm = poisoned_device<T>(n, s);
      auto dp = device_buffer<T>::from_host(x, s);
      gpukit::inclusive_scan(exec, dx, di);
      gpukit::exclusive_scan(exec, dx, de, T(5));
      gpukit::inclusive_scan(exec, dx, dm, max_op);
      gpukit::inclusive_scan(exec, dp, dp);
      got_inc = di.to_host(s);
      got_exc = de.to_host(s);
      got_max = dm.to_host(s);
      in_place = dp.to_host(s);
    }
    gpukit_test::require_close(got_inc, inc, sum_ulps, mag);
    gpukit_test::require_close(got_exc, exc, sum_ulps, mag);
    gpukit_test::require_close(got_max, running_max, 0.0);
    // CUB's float scans are not bit-reproducible from run to run (the look-back combines
    // prefixes in timing-dependent order), so in place is held to the same tolerance.
    gpukit_test::require_close(in_place, inc, sum_ulps, mag);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("reductions on the CPU", "[ops][reduce]", float, double, std::int32_t, std::int64_t) {
  check_reductions<TestType>(where::cpu);
}
TEMPLATE_TEST_CASE("reductions on the GPU", "[gpu][ops][reduce]", float, double, std::int32_t, std::int64_t) {
  check_reductions<TestType>(where::gpu);
}
TEMPLATE_TEST_CASE("sums of whole numbers are exact on the CPU", "[ops][reduce]", float, double) {
  check_exact_sums<TestType>(where::cpu);
}
TEMPLATE_TEST_CASE("sums of whole numbers are exact on the GPU", "[gpu][ops][reduce]", float, double) {
  check_exact_sums<TestType>(where::gpu);
}
TEMPLATE_TEST_CASE("product on the CPU", "[ops][reduce]", float, double, std::int32_t, std::int64_t) {
  check_product<TestType>(where::cpu);
}
TEMPLATE_TEST_CASE("product on the GPU", "[gpu][ops][reduce]", float, double, std::int32_t, std::int64_t) {
  check_product<TestType>(where::gpu);
}
TEMPLATE_TEST_CASE("scans on the CPU", "[ops][scan]", float, double, std::int32_t, std::int64_t) {
  check_scans<TestType>(where::cpu);
}
TEMPLATE_TEST_CASE("scans on the GPU", "[gpu][ops][scan]", float, double, std::int32_t, std::int64_t) {
  check_scans<TestType>(where::gpu);
}

TEST_CASE("sums of half and bfloat16 accumulate in float", "[ops][reduce]") {
  const auto h = gpukit_test::random_values<gpukit::half>(4097, -2, 2, 3);
  const auto r = make_reference(h);
  const float got = gpukit::sum(cpu_executor{}, h);
  REQUIRE(std::fabs(got - r.sum) <= sum_ulps * 0x1p-23 * r.abs_sum);
}

TEST_CASE("async reductions leave the result on the device", "[gpu][ops][reduce]") {
  stream s;
  const cuda_executor exec(s.view());
  const auto x = gpukit_test::random_values<float>(1000003, -1, 1, 17);
  const auto r = make_reference(x);
  const auto d = device_buffer<float>::from_host(x, s);
  device_buffer<float> total(1, s), smallest(1, s);
  device_buffer<std::int64_t> positives(1, s);
  device_buffer<gpukit::value_index<float>> where_max(1, s);
  gpukit::sum_async(exec, d, total);
  gpukit::min_async(exec, d, smallest);
  gpukit::count_if_async(exec, d, is_positive{}, positives);
  gpukit::argmax_async(exec, d, where_max);
  require_near<float>(total.to_host(s)[0], r.sum, r.abs_sum);
  REQUIRE(smallest.to_host(s)[0] == static_cast<float>(r.min));
  REQUIRE(positives.to_host(s)[0] == r.positives);
  const auto vi = where_max.to_host(s)[0];
  REQUIRE(vi.index == r.argmax);
  // a wrong-sized result is refused before anything runs
  device_buffer<float> two(2, s);
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { gpukit::sum_async(exec, d, two); },
                                                            {"gpukit::sum_async", "'result'", "2"});
}

TEST_CASE("a workspace is reused by reductions and scans on its stream", "[gpu][ops][reduce]") {
  stream s;
  workspace ws(s);
  const cuda_executor exec(s.view(), ws);
  CHECK(exec.scratch() == &ws);
  for (std::size_t n : {std::size_t{31}, std::size_t{1000003}, std::size_t{4000037}, std::size_t{17}}) {
    CAPTURE(n);
    const auto whole = gpukit_test::random_values<int>(n, -3, 4, 5 + n);
    const std::vector<float> x(whole.begin(), whole.end());
    const auto d = device_buffer<float>::from_host(x, s);
    double expected = 0;
    for (float v : x) expected += v;
    REQUIRE(gpukit::sum(exec, d) == expected);  // whole numbers: exact
    device_buffer<float> scanned(n, s);
    gpukit::inclusive_scan(exec, d, scanned);
    REQUIRE(scanned.to_host(s).back() == expected);
    CHECK(ws.capacity() > 0);
  }
  const std::size_t grown = ws.capacity();
  const auto d = device_buffer<float>::from_host(std::vector<float>(100, 1.0f), s);
  REQUIRE(gpukit::sum(exec, d) == 100.0f);
  CHECK(ws.capacity() == grown);  // a smaller job reuses the block
  stream other;
  gpukit_test::require_throws_naming<std::invalid_argument>([&] { cuda_executor bad(other.view(), ws); },
                                                            {"'ws'", "another stream"});
}

TEST_CASE("argmin and argmax report the first of equal extremes", "[ops][reduce]") {
  const std::vector<int> x{5, 1, 9, 1, 9, 3};
  CHECK(gpukit::argmin(cpu_executor{}, x).index == 1);
  CHECK(gpukit::argmax(cpu_executor{}, x).index == 2);
}
