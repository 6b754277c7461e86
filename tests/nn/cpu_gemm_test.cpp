// The CPU GEMM (nn/detail/cpu_gemm.hpp) against a plain triple loop in double, and the conv
// and dense layers on it (nn/detail/conv_cpu.hpp) against the direct loops of conv2d.hpp and
// dense.hpp, with every kernel this CPU runs (portable, AVX2, AVX-512). Sizes are odd and
// cross every blocking boundary (kc, mc, nc and the register tile); the layer cases add
// strides, padding, disjoint and overlapping pools, every activation, accumulated and
// assigned parameter gradients and the folded dx activation. Results must not depend on
// the thread count, to the bit. Built by the host compiler alone.
#include "nn/reference.hpp"

#include "gpukit/nn/detail/conv_cpu.hpp"

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

#include <cstring>
#include <limits>
#include <stdexcept>

using namespace nn_test;

namespace {

namespace detail = gpukit::nn::detail;
using detail::cpu_isa;

/// The kernels this build and CPU can run, portable first.
std::vector<cpu_isa> isas() {
  std::vector<cpu_isa> out;
  for (cpu_isa isa : {cpu_isa::portable, cpu_isa::avx2, cpu_isa::avx512})
    if (detail::cpu_isa_supported(isa)) out.push_back(isa);
  return out;
}

template <class T>
constexpr double eps() {
  return std::numeric_limits<T>::epsilon();
}

// ---- the GEMM ----------------------------------------------------------------------------------

/// An m x n operand stored in a larger buffer with the given strides (possibly transposed,
/// possibly with gaps between elements), filled with random values; unused slots hold NaN
/// so that a read outside the operand shows.
template <class T>
struct strided_matrix {
  std::vector<T> data;
  long long row = 0, col = 0;
  double at(long long i, long long j) const { return static_cast<double>(data[i * row + j * col]); }
};

enum class layout { row_major, transposed, gapped };

template <class T>
strided_matrix<T> make_matrix(long long rows, long long cols, layout l, std::uint64_t salt) {
  strided_matrix<T> a;
  switch (l) {
    case layout::row_major: a.row = cols + 3, a.col = 1; break;   // leading dimension larger than the width
    case layout::transposed: a.row = 1, a.col = rows + 1; break;  // column-major: Aᵀ stored row-major
    case layout::gapped: a.row = 2 * cols + 1, a.col = 2; break;  // every other element
  }
  const long long size = (rows - 1) * a.row + (cols - 1) * a.col + 1;
  a.data.assign(static_cast<std::size_t>(std::max<long long>(size, 1)), std::numeric_limits<T>::quiet_NaN());
  const std::vector<T> v = random_vector<T>(static_cast<std::size_t>(rows * cols), -1, 1, salt);
  for (long long i = 0; i < rows; ++i)
    for (long long j = 0; j < cols; ++j) a.data[static_cast<std::size_t>(i * a.row + j * a.col)] = v[i * cols + j];
  return a;
}

struct gemm_case {
  long long m, n, k;
};

/// Runs cpu_gemm on one case and compares every element with the triple loop: the error of
/// a k-term sum is at most about k·ε times the sum of the magnitudes of its terms.
template <class T>
void check_gemm(const gemm_case& g, layout la, layout lb, double alpha, double beta, int threads, cpu_isa isa,
                std::uint64_t salt) {
  CAPTURE(g.m, g.n, g.k, static_cast<int>(la), static_cast<int>(lb), alpha, beta, threads, detail::cpu_isa_name(isa));
  const strided_matrix<T> a = make_matrix<T>(g.m, g.k, la, salt), b = make_matrix<T>(g.k, g.n, lb, salt + 1);
  const long long ldc = g.n + 5;
  std::vector<T> c = random_vector<T>(static_cast<std::size_t>(g.m * ldc), -1, 1, salt + 2);
  if (beta == 0)  // C is not read: NaNs there must not show up in the result
    for (long long i = 0; i < g.m; ++i)
      for (long long j = 0; j < g.n; ++j) c[static_cast<std::size_t>(i * ldc + j)] = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> c0 = c;
  detail::cpu_gemm<T>(threads, g.m, g.n, g.k, static_cast<T>(alpha), a.data.data(), a.row, a.col, b.data.data(), b.row,
                      b.col, static_cast<T>(beta), c.data(), ldc, isa);
  std::size_t bad = 0;
  for (long long i = 0; i < g.m; ++i)
    for (long long j = 0; j < ldc; ++j) {
      const std::size_t at = static_cast<std::size_t>(i * ldc + j);
      if (j >= g.n) {  // outside the n columns: untouched
        if (std::memcmp(&c[at], &c0[at], sizeof(T)) != 0) ++bad;
        continue;
      }
      double ref = 0, mag = 0;
      for (long long p = 0; p < g.k; ++p) {
        ref += a.at(i, p) * b.at(p, j);
        mag += std::fabs(a.at(i, p) * b.at(p, j));
      }
      const double old = beta == 0 ? 0.0 : static_cast<double>(c0[at]);
      ref = alpha * ref + beta * old;
      const double bound = 2 * (static_cast<double>(g.k) + 2) * eps<T>() * (std::fabs(alpha) * mag + std::fabs(beta * old)) +
                           std::numeric_limits<T>::min();
      const double got = static_cast<double>(c[at]);
      if (!(std::fabs(got - ref) <= bound)) {
        if (++bad <= 3) UNSCOPED_INFO("C(" << i << ", " << j << ") = " << got << ", want " << ref << " +- " << bound);
      }
    }
  REQUIRE(bad == 0);
}

TEST_CASE("cpu_gemm matches the triple loop: odd sizes, strides and transposes, alpha and beta", "[nn][cpu_gemm]") {
  // Sizes around the register tiles (6, 12 rows; 8, 16, 32 columns), past kc (256), mc
  // (96, 144) and nc (1024).
  const gemm_case small[] = {{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {7, 13, 5}, {13, 33, 17}, {25, 31, 2}, {12, 32, 1}};
  const gemm_case large[] = {{37, 70, 300}, {150, 45, 37}, {3, 1100, 6}, {97, 65, 520}};
  const layout layouts[] = {layout::row_major, layout::transposed, layout::gapped};
  const double scalars[][2] = {{1, 0}, {1, 1}, {-0.5, 0.75}, {2, 0}};
  std::uint64_t salt = 100;
  for (cpu_isa isa : isas()) {
    int pick = 0;
    for (const gemm_case& g : small)
      for (layout la : layouts)
        for (layout lb : layouts) {
          const double* ab = scalars[pick++ % 4];
          check_gemm<double>(g, la, lb, ab[0], ab[1], 1, isa, salt += 3);
          check_gemm<float>(g, la, lb, ab[0], ab[1], 2, isa, salt += 3);
        }
    for (const gemm_case& g : large) {
      const double* ab = scalars[pick++ % 4];
      check_gemm<double>(g, layout::row_major, layout::row_major, ab[0], ab[1], 2, isa, salt += 3);
      check_gemm<float>(g, layout::transposed, layout::gapped, ab[1] == 0 ? 1.0 : ab[0], 1, 1, isa, salt += 3);
      check_gemm<float>(g, layout::gapped, layout::transposed, ab[0], 0, 2, isa, salt += 3);
    }
  }
}

TEST_CASE("cpu_gemm gives the same bits for every thread count", "[nn][cpu_gemm]") {
  const long long m = 203, n = 301, k = 517;  // big enough to be split on every thread count below
  const std::vector<float> a = random_vector<float>(m * k, -1, 1, 51), b = random_vector<float>(k * n, -1, 1, 52);
  const std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end());
  for (cpu_isa isa : isas()) {
    CAPTURE(detail::cpu_isa_name(isa));
    std::vector<float> one(m * n), other(m * n);
    std::vector<double> one_d(m * n), other_d(m * n);
    detail::cpu_gemm<float>(1, m, n, k, 1.0f, a.data(), k, 1, b.data(), n, 1, 0.0f, one.data(), n, isa);
    detail::cpu_gemm<double>(1, m, n, k, 1.0, ad.data(), 1, m, bd.data(), n, 1, 0.0, one_d.data(), n, isa);
    for (int threads : {2, 3, 4, 7}) {
      CAPTURE(threads);
      detail::cpu_gemm<float>(threads, m, n, k, 1.0f, a.data(), k, 1, b.data(), n, 1, 0.0f, other.data(), n, isa);
      REQUIRE(std::memcmp(one.data(), other.data(), one.size() * sizeof(float)) == 0);
      detail::cpu_gemm<double>(threads, m, n, k, 1.0, ad.data(), 1, m, bd.data(), n, 1, 0.0, other_d.data(), n, isa);
      REQUIRE(std::memcmp(one_d.data(), other_d.data(), one_d.size() * sizeof(double)) == 0);
    }
  }
}

TEST_CASE("cpu_gemm: empty products, k = 0 and alpha = 0 only scale C; bad sizes are refused", "[nn][cpu_gemm]") {
  std::vector<double> c{1, 2, 3, 4, 5, 6};
  detail::cpu_gemm<double>(2, 2, 3, 0, 1.0, nullptr, 0, 0, nullptr, 0, 0, 0.5, c.data(), 3);
  REQUIRE(c == std::vector<double>{0.5, 1, 1.5, 2, 2.5, 3});
  detail::cpu_gemm<double>(2, 2, 3, 4, 0.0, nullptr, 0, 0, nullptr, 0, 0, 2.0, c.data(), 3);
  REQUIRE(c == std::vector<double>{1, 2, 3, 4, 5, 6});
  c.assign(6, std::numeric_limits<double>::quiet_NaN());
  detail::cpu_gemm<double>(1, 2, 3, 0, 1.0, nullptr, 0, 0, nullptr, 0, 0, 0.0, c.data(), 3);
  REQUIRE(c == std::vector<double>(6, 0.0));  // beta = 0 assigns: the NaNs are not read
  detail::cpu_gemm<double>(1, 0, 3, 5, 1.0, nullptr, 0, 0, nullptr, 0, 0, 0.0, nullptr, 3);  // nothing to do
  // A zero stride is a broadcast: every row of A is the same row.
  const std::vector<float> row{1, 2, 3}, bm{1, 0, 0, 1, 1, 1};
  std::vector<float> out(4);
  detail::cpu_gemm<float>(1, 2, 2, 3, 1.0f, row.data(), 0, 1, bm.data(), 2, 1, 0.0f, out.data(), 2);
  REQUIRE(out == std::vector<float>{4, 5, 4, 5});
  gpukit_test::require_throws_naming<std::invalid_argument>(
      [&] { detail::cpu_gemm<float>(1, 2, 4, 3, 1.0f, row.data(), 0, 1, bm.data(), 2, 1, 0.0f, out.data(), 2); },
      {"cpu_gemm", "ldc = 2"});
  gpukit_test::require_throws_naming<std::invalid_argument>(
      [&] { detail::cpu_gemm<float>(1, -1, 2, 3, 1.0f, row.data(), 0, 1, bm.data(), 2, 1, 0.0f, out.data(), 2); },
      {"cpu_gemm", "m = -1"});
  CHECK(std::string(detail::cpu_isa_name(detail::best_cpu_isa())).size() > 0);
  CHECK(detail::cpu_isa_supported(cpu_isa::portable));
}

// ---- the conv layer on the GEMM ------------------------------------------------------------------

/// conv_cases() (reference.hpp) and shapes that cross the GEMM's blocks: more channels than
/// one register tile, several parts of k in the weight gradient, tap counts past kc,
/// strides larger than the kernel (input pixels no tap reaches).
std::vector<conv_case> gemm_conv_cases() {
  using nn::activation;
  using nn::maxpool2d;
  std::vector<conv_case> cases = conv_cases();
  const std::vector<conv_case> more = {
      {5, 20, 13, 11, 27, {3, 3}, 1, 1, activation::relu, maxpool2d(2)},
      {3, 33, 9, 10, 14, {3, 3}, 1, 1, activation::tanh, maxpool2d(3, 2)},  // 297 taps: two k steps
      {2, 6, 12, 9, 13, {5, 5}, 2, 2, activation::sigmoid, std::nullopt},
      {4, 7, 10, 10, 9, {2, 2}, 3, 0, activation::none, std::nullopt},  // stride > kernel
      {1, 17, 8, 8, 40, {3, 3}, 1, 1, activation::relu, std::nullopt},
      {9, 3, 6, 7, 5, {1, 3}, 2, 1, activation::relu, maxpool2d(nn::kernel_size{2, 3}, nn::kernel_size{1, 2})},
      // Stride 2 on rows wider than a panel: gathered runs cut by the padding at both ends,
      // and the weight gradient's parts of k starting mid-image.
      {3, 9, 36, 37, 13, {3, 3}, 2, 1, activation::relu, std::nullopt},
  };
  cases.insert(cases.end(), more.begin(), more.end());
  return cases;
}

template <class T>
std::vector<double> as_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, double> ? 1e-12 : 3e-5;
}

/// The GEMM path of one conv case against the direct path, for one kernel and element type.
template <class T>
void check_conv(const conv_case& c, cpu_isa isa, const gpukit::cpu_executor& exec, std::uint64_t salt) {
  const nn::conv_block block = c.block();
  const detail::conv_geometry g = detail::make_conv_geometry(block, c.in(), "test");
  const std::vector<T> x = random_vector<T>(c.in().size(), -1, 1, salt), w = random_vector<T>(c.weights(), -0.5, 0.5, salt + 1);
  // A negative bias makes most relu outputs exactly zero: pool windows full of ties, where
  // both paths must pick the first maximum.
  const double bias_lo = c.act == nn::activation::relu ? -0.6 : -0.3;
  const std::vector<T> b = random_vector<T>(c.oc, bias_lo, 0.3, salt + 2);
  const std::size_t out = c.out().size();

  std::vector<T> y0(out), y1(out, std::numeric_limits<T>::quiet_NaN());
  std::vector<std::int32_t> a0(out, -1), a1(out, -1);
  detail::conv_forward_cpu(exec, g, x.data(), w.data(), b.data(), y0.data(), g.pooled ? a0.data() : nullptr);
  detail::conv_forward_gemm_cpu_isa(isa, exec, g, x.data(), w.data(), b.data(), y1.data(), g.pooled ? a1.data() : nullptr);
  require_relative(as_double(y1), as_double(y0), tolerance<T>(), "forward");
  if (g.pooled) {
    // Every argmax lies in its window and holds the window's maximum of the (direct) conv
    // output: in float, near-ties may round either way between the paths.
    detail::conv_geometry gz = g;
    gz.pooled = false, gz.ph = g.oh, gz.pw = g.ow;
    std::vector<T> z(static_cast<std::size_t>(g.conv_size()));
    detail::conv_forward_cpu(exec, gz, x.data(), w.data(), b.data(), z.data(), static_cast<std::int32_t*>(nullptr));
    double scale = 1e-30;
    for (const T v : z) scale = std::max(scale, std::fabs(static_cast<double>(v)));
    const long long conv_plane = static_cast<long long>(g.oh) * g.ow, out_plane = static_cast<long long>(g.ph) * g.pw;
    for (std::size_t i = 0; i < out; ++i) {
      const long long p = static_cast<long long>(i) / out_plane, q = static_cast<long long>(i) % out_plane;
      const int py = static_cast<int>(q / g.pw), px = static_cast<int>(q % g.pw);
      const int row = static_cast<int>(static_cast<std::uint32_t>(a1[i]) >> 16), col = a1[i] & 0xffff;
      REQUIRE(row >= py * g.psh);
      REQUIRE(row < py * g.psh + g.pkh);
      REQUIRE(col >= px * g.psw);
      REQUIRE(col < px * g.psw + g.pkw);
      const T* zp = z.data() + p * conv_plane;
      double best = -INFINITY;
      for (int wy = 0; wy < g.pkh; ++wy)
        for (int wx = 0; wx < g.pkw; ++wx)
          best = std::max(best, static_cast<double>(zp[(py * g.psh + wy) * g.ow + px * g.psw + wx]));
      REQUIRE(static_cast<double>(zp[row * g.ow + col]) >= best - tolerance<T>() * scale);
    }
    // In double the paths agree to far below any gap between two values of a window; exact
    // ties (the relu zeros) must go to the first maximum in row-major order in either type.
    if (std::is_same_v<T, double>) REQUIRE(a1 == a0);
    for (std::size_t i = 0; i < out; ++i)
      if (y0[i] == T(0) && c.act == nn::activation::relu) REQUIRE(a1[i] == a0[i]);
  }

  const std::vector<T> dy = random_vector<T>(out, -1, 1, salt + 3);
  for (const nn::activation fold :
       {nn::activation(nn::activation::none), nn::activation(nn::activation::relu), nn::activation(nn::activation::sigmoid),
        nn::activation(nn::activation::tanh), nn::activation::leaky_relu(0.3f)}) {
    for (const bool accumulate : {true, false}) {
      for (const bool want_dx : {true, false}) {
        CAPTURE(nn::activation_name(fold), accumulate, want_dx);
        // The producing layer's output: relu outputs include exact zeros, sigmoid lies in (0, 1).
        std::vector<T> fold_y = random_vector<T>(x.size(), fold == nn::activation::relu ? -0.5 : 0.01, 0.99, salt + 4);
        for (T& v : fold_y) v = std::max(v, T(0));
        detail::conv_backward_extras<T> e;
        e.accumulate = accumulate;
        e.dx_act = fold;
        e.dx_act_y = fold == nn::activation::none ? nullptr : fold_y.data();
        std::vector<T> dw0 = random_vector<T>(w.size(), -1, 1, salt + 5), db0 = random_vector<T>(b.size(), -1, 1, salt + 6);
        std::vector<T> dw1 = dw0, db1 = db0;
        std::vector<T> dx0(x.size(), T(3)), dx1(x.size(), std::numeric_limits<T>::quiet_NaN());
        detail::conv_backward_cpu(exec, g, x.data(), w.data(), y0.data(), a0.data(), dy.data(), dw0.data(), db0.data(),
                                  want_dx ? dx0.data() : nullptr, e);
        detail::conv_backward_gemm_cpu_isa(isa, exec, g, x.data(), w.data(), y0.data(), a0.data(), dy.data(), dw1.data(),
                                           db1.data(), want_dx ? dx1.data() : nullptr, e);
        require_relative(as_double(dw1), as_double(dw0), tolerance<T>(), "dw");
        require_relative(as_double(db1), as_double(db0), tolerance<T>(), "db");
        if (want_dx) {
          require_relative(as_double(dx1), as_double(dx0), tolerance<T>(), "dx");
        } else {
          for (const T v : dx1) REQUIRE(std::isnan(v));  // skipped: not written
        }
      }
      if (fold != nn::activation::none) break;  // accumulate x want_dx once is enough per fold
    }
  }
}

TEST_CASE("conv on the GEMM matches the direct loops: strides, padding, pools, activations", "[nn][conv2d][cpu_gemm]") {
  const gpukit::cpu_executor exec(2);
  std::uint64_t salt = 1000;
  for (const conv_case& c : gemm_conv_cases()) {
    CAPTURE(c.name());
    for (cpu_isa isa : isas()) {
      CAPTURE(detail::cpu_isa_name(isa));
      check_conv<double>(c, isa, exec, salt += 10);
      check_conv<float>(c, isa, exec, salt += 10);
    }
  }
}

TEST_CASE("conv on the GEMM: the default entry points and the extras-free backward", "[nn][conv2d][cpu_gemm]") {
  const conv_case c{3, 5, 9, 8, 6, {3, 3}, 1, 1, nn::activation::relu, nn::maxpool2d(2)};
  const gpukit::cpu_executor exec{};
  const detail::conv_geometry g = detail::make_conv_geometry(c.block(), c.in(), "test");
  const std::vector<double> x = random_vector(c.in().size(), -1, 1, 61), w = random_vector(c.weights(), -1, 1, 62),
                            b = random_vector(c.oc, -0.2, 0.2, 63), dy = random_vector(c.out().size(), -1, 1, 64);
  std::vector<double> y0(c.out().size()), y1(y0.size());
  std::vector<std::int32_t> a0(y0.size()), a1(y0.size());
  detail::conv_forward_cpu(exec, g, x.data(), w.data(), b.data(), y0.data(), a0.data());
  detail::conv_forward_gemm_cpu(exec, g, x.data(), w.data(), b.data(), y1.data(), a1.data());
  require_relative(y1, y0, 1e-12, "forward");
  REQUIRE(a1 == a0);
  std::vector<double> dw0(w.size(), 0.5), db0(b.size(), 0.5), dx0(x.size()), dw1 = dw0, db1 = db0, dx1(x.size());
  detail::conv_backward_cpu(exec, g, x.data(), w.data(), y0.data(), a0.data(), dy.data(), dw0.data(), db0.data(), dx0.data());
  detail::conv_backward_gemm_cpu(exec, g, x.data(), w.data(), y0.data(), a0.data(), dy.data(), dw1.data(), db1.data(),
                                 dx1.data());
  require_relative(dw1, dw0, 1e-12, "dw");
  require_relative(db1, db0, 1e-12, "db");
  require_relative(dx1, dx0, 1e-12, "dx");
}

TEST_CASE("conv on the GEMM: planes too large for one task's scratch go in row blocks", "[nn][conv2d][cpu_gemm]") {
  // 40 channels of 200 x 200: every channel block of one task is past 2^20 elements.
  const conv_case c{1, 2, 200, 200, 40, {3, 3}, 1, 1, nn::activation::relu, nn::maxpool2d(2)};
  const conv_case strided{2, 50, 160, 160, 3, {3, 3}, 2, 1, nn::activation::none, std::nullopt};
  const gpukit::cpu_executor exec(2);
  for (const conv_case& k : {c, strided}) {
    CAPTURE(k.name());
    const detail::conv_geometry g = detail::make_conv_geometry(k.block(), k.in(), "test");
    const std::vector<float> x = random_vector<float>(k.in().size(), -1, 1, 91),
                             w = random_vector<float>(k.weights(), -0.5, 0.5, 92), b = random_vector<float>(k.oc, -0.2, 0.2, 93),
                             dy = random_vector<float>(k.out().size(), -1, 1, 94);
    std::vector<float> y0(k.out().size()), y1(y0.size());
    std::vector<std::int32_t> a0(y0.size()), a1(y0.size());
    detail::conv_forward_cpu(exec, g, x.data(), w.data(), b.data(), y0.data(), a0.data());
    std::vector<float> dw0(w.size()), db0(b.size()), dx0(x.size());
    detail::conv_backward_cpu(exec, g, x.data(), w.data(), y0.data(), a0.data(), dy.data(), dw0.data(), db0.data(),
                              dx0.data());
    for (cpu_isa isa : isas()) {
      CAPTURE(detail::cpu_isa_name(isa));
      detail::conv_forward_gemm_cpu_isa(isa, exec, g, x.data(), w.data(), b.data(), y1.data(), a1.data());
      require_relative(as_double(y1), as_double(y0), tolerance<float>(), "forward");
      std::vector<float> dw1(w.size()), db1(b.size()), dx1(x.size());
      detail::conv_backward_gemm_cpu_isa(isa, exec, g, x.data(), w.data(), y0.data(), a0.data(), dy.data(), dw1.data(),
                                         db1.data(), dx1.data(), detail::conv_backward_extras<float>{});
      require_relative(as_double(dw1), as_double(dw0), tolerance<float>(), "dw");
      require_relative(as_double(db1), as_double(db0), tolerance<float>(), "db");
      require_relative(as_double(dx1), as_double(dx0), tolerance<float>(), "dx");
    }
  }
}

// ---- the dense layer on the GEMM --------------------------------------------------------------

template <class T>
void check_dense(const dense_case& c, cpu_isa isa, const gpukit::cpu_executor& exec, std::uint64_t salt) {
  const detail::dense_geometry g{static_cast<int>(c.n), static_cast<int>(c.in), static_cast<int>(c.out)};
  const std::vector<T> x = random_vector<T>(c.n * c.in, -1, 1, salt), w = random_vector<T>(c.in * c.out, -0.5, 0.5, salt + 1),
                       b = random_vector<T>(c.out, -0.3, 0.3, salt + 2), dy = random_vector<T>(c.n * c.out, -1, 1, salt + 3);
  for (const bool with_pre : {true, false}) {
    CAPTURE(with_pre);
    std::vector<T> y0(c.n * c.out), p0(y0.size()), y1(y0.size(), std::numeric_limits<T>::quiet_NaN()), p1 = y1;
    detail::dense_forward_cpu(exec, g, x.data(), w.data(), b.data(), y0.data(), c.act, with_pre ? p0.data() : nullptr);
    detail::dense_forward_gemm_cpu_isa(isa, exec, g, x.data(), w.data(), b.data(), y1.data(), c.act,
                                       with_pre ? p1.data() : nullptr);
    require_relative(as_double(y1), as_double(y0), tolerance<T>(), "y");
    if (with_pre) require_relative(as_double(p1), as_double(p0), tolerance<T>(), "pre");
  }
  std::vector<T> y(c.n * c.out);
  detail::dense_forward_cpu(exec, g, x.data(), w.data(), b.data(), y.data(), c.act, static_cast<T*>(nullptr));
  for (const nn::activation fold :
       {nn::activation(nn::activation::none), nn::activation(nn::activation::relu), nn::activation(nn::activation::sigmoid),
        nn::activation(nn::activation::tanh), nn::activation::leaky_relu(0.3f)}) {
    for (const bool accumulate : {true, false}) {
      for (const bool want_dx : {true, false}) {
        CAPTURE(nn::activation_name(fold), accumulate, want_dx);
        std::vector<T> fold_y = random_vector<T>(x.size(), fold == nn::activation::relu ? -0.5 : 0.01, 0.99, salt + 4);
        for (T& v : fold_y) v = std::max(v, T(0));
        detail::dense_backward_extras<T> e;
        e.accumulate = accumulate;
        e.dx_act = fold;
        e.dx_act_y = fold == nn::activation::none ? nullptr : fold_y.data();
        std::vector<T> dw0 = random_vector<T>(w.size(), -1, 1, salt + 5), db0 = random_vector<T>(b.size(), -1, 1, salt + 6);
        std::vector<T> dw1 = dw0, db1 = db0;
        std::vector<T> dx0(x.size(), T(3)), dx1(x.size(), std::numeric_limits<T>::quiet_NaN());
        detail::dense_backward_cpu(exec, g, x.data(), w.data(), y.data(), dy.data(), dw0.data(), db0.data(),
                                   want_dx ? dx0.data() : nullptr, c.act, e);
        detail::dense_backward_gemm_cpu_isa(isa, exec, g, x.data(), w.data(), y.data(), dy.data(), dw1.data(), db1.data(),
                                            want_dx ? dx1.data() : nullptr, c.act, e);
        require_relative(as_double(dw1), as_double(dw0), tolerance<T>(), "dw");
        require_relative(as_double(db1), as_double(db0), tolerance<T>(), "db");
        if (want_dx) {
          require_relative(as_double(dx1), as_double(dx0), tolerance<T>(), "dx");
        } else {
          for (const T v : dx1) REQUIRE(std::isnan(v));
        }
      }
      if (fold != nn::activation::none) break;
    }
  }
}

TEST_CASE("dense on the GEMM matches the direct loops: odd shapes, activations, pre, extras", "[nn][dense][cpu_gemm]") {
  const dense_case cases[] = {{1, 1, 1, nn::activation::none},      {3, 7, 5, nn::activation::relu},
                              {2, 5, 3, nn::activation::sigmoid},   {13, 6, 33, nn::activation::tanh},
                              {37, 300, 19, nn::activation::relu},  {130, 65, 97, nn::activation::none},
                              {5, 1030, 40, nn::activation::sigmoid}};
  const gpukit::cpu_executor exec(2);
  std::uint64_t salt = 5000;
  for (const dense_case& c : cases) {
    CAPTURE(c.n, c.in, c.out, nn::activation_name(c.act));
    for (cpu_isa isa : isas()) {
      CAPTURE(detail::cpu_isa_name(isa));
      check_dense<double>(c, isa, exec, salt += 10);
      check_dense<float>(c, isa, exec, salt += 10);
    }
  }
  // The default entry points.
  const detail::dense_geometry g{4, 9, 6};
  const std::vector<double> x = random_vector(36, -1, 1, 71), w = random_vector(54, -1, 1, 72), b = random_vector(6, -1, 1, 73),
                            dy = random_vector(24, -1, 1, 74);
  std::vector<double> y0(24), y1(24), dw0(54, 1.0), dw1 = dw0, db0(6, 1.0), db1 = db0, dx0(36), dx1(36);
  detail::dense_forward_cpu(exec, g, x.data(), w.data(), b.data(), y0.data(), nn::activation::tanh, static_cast<double*>(nullptr));
  detail::dense_forward_gemm_cpu(exec, g, x.data(), w.data(), b.data(), y1.data(), nn::activation::tanh,
                                 static_cast<double*>(nullptr));
  require_relative(y1, y0, 1e-12, "y");
  detail::dense_backward_cpu(exec, g, x.data(), w.data(), y0.data(), dy.data(), dw0.data(), db0.data(), dx0.data(),
                             nn::activation::tanh);
  detail::dense_backward_gemm_cpu(exec, g, x.data(), w.data(), y0.data(), dy.data(), dw1.data(), db1.data(), dx1.data(),
                                  nn::activation::tanh);
  require_relative(dw1, dw0, 1e-12, "dw");
  require_relative(db1, db0, 1e-12, "db");
  require_relative(dx1, dx0, 1e-12, "dx");
}

// ---- thread-count independence of the layers ---------------------------------------------------

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

TEST_CASE("conv and dense on the GEMM give the same bits on 1, 2 and 3 threads", "[nn][conv2d][dense][cpu_gemm]") {
  const conv_case c{6, 24, 16, 14, 40, {3, 3}, 1, 1, nn::activation::relu, nn::maxpool2d(2)};
  const detail::conv_geometry g = detail::make_conv_geometry(c.block(), c.in(), "test");
  const std::vector<float> x = random_vector<float>(c.in().size(), -1, 1, 81), w = random_vector<float>(c.weights(), -0.3, 0.3, 82),
                           b = random_vector<float>(c.oc, -0.1, 0.1, 83), dy = random_vector<float>(c.out().size(), -1, 1, 84);
  const detail::dense_geometry dg{67, 400, 150};
  const std::vector<float> dx_in = random_vector<float>(67 * 400, -1, 1, 85), dw_in = random_vector<float>(400 * 150, -0.1, 0.1, 86),
                           db_in = random_vector<float>(150, -0.1, 0.1, 87), ddy = random_vector<float>(67 * 150, -1, 1, 88);
  struct results {
    std::vector<float> y, dw, db, dx, dy_dense, dw_dense, db_dense, dx_dense;
    std::vector<std::int32_t> argmax;
  };
  const auto run = [&](int threads) {
    const gpukit::cpu_executor exec(threads);
    results r;
    r.y.resize(c.out().size());
    r.argmax.resize(r.y.size());
    r.dw.assign(w.size(), 0.25f);
    r.db.assign(b.size(), 0.25f);
    r.dx.resize(x.size());
    detail::conv_forward_gemm_cpu(exec, g, x.data(), w.data(), b.data(), r.y.data(), r.argmax.data());
    detail::conv_backward_gemm_cpu(exec, g, x.data(), w.data(), r.y.data(), r.argmax.data(), dy.data(), r.dw.data(),
                                   r.db.data(), r.dx.data());
    r.dy_dense.resize(67 * 150);
    r.dw_dense.assign(dw_in.size(), 0.5f);
    r.db_dense.assign(150, 0.5f);
    r.dx_dense.resize(dx_in.size());
    detail::dense_forward_gemm_cpu(exec, dg, dx_in.data(), dw_in.data(), db_in.data(), r.dy_dense.data(),
                                   nn::activation::sigmoid, static_cast<float*>(nullptr));
    detail::dense_backward_gemm_cpu(exec, dg, dx_in.data(), dw_in.data(), r.dy_dense.data(), ddy.data(), r.dw_dense.data(),
                                    r.db_dense.data(), r.dx_dense.data(), nn::activation::sigmoid);
    return r;
  };
  const results one = run(1);
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    const results other = run(threads);
    CHECK(same_bits(one.y, other.y));
    CHECK(one.argmax == other.argmax);
    CHECK(same_bits(one.dw, other.dw));
    CHECK(same_bits(one.db, other.db));
    CHECK(same_bits(one.dx, other.dx));
    CHECK(same_bits(one.dy_dense, other.dy_dense));
    CHECK(same_bits(one.dw_dense, other.dw_dense));
    CHECK(same_bits(one.db_dense, other.db_dense));
    CHECK(same_bits(one.dx_dense, other.dx_dense));
  }
}

TEST_CASE("strided conv on the GEMM gives the same bits on 1, 2 and 3 threads", "[nn][conv2d][cpu_gemm]") {
  // Stride 2 with padding: gathered im2col runs, the input gradient's phases stored through
  // scratch and folded with an activation, the weight gradient cut into parts of k.
  const conv_case c{5, 7, 23, 30, 19, {3, 3}, 2, 1, nn::activation::tanh, std::nullopt};
  const detail::conv_geometry g = detail::make_conv_geometry(c.block(), c.in(), "test");
  const std::vector<float> x = random_vector<float>(c.in().size(), -1, 1, 91), w = random_vector<float>(c.weights(), -0.3, 0.3, 92),
                           b = random_vector<float>(c.oc, -0.1, 0.1, 93), dy = random_vector<float>(c.out().size(), -1, 1, 94),
                           act_y = random_vector<float>(c.in().size(), 0.01, 0.99, 95);
  struct results {
    std::vector<float> y, dw, db, dx;
  };
  const auto run = [&](int threads) {
    const gpukit::cpu_executor exec(threads);
    results r;
    r.y.resize(c.out().size());
    r.dw.assign(w.size(), 0.25f);
    r.db.assign(b.size(), 0.25f);
    r.dx.resize(x.size());
    detail::conv_backward_extras<float> e;
    e.dx_act = nn::activation::sigmoid;
    e.dx_act_y = act_y.data();
    detail::conv_forward_gemm_cpu(exec, g, x.data(), w.data(), b.data(), r.y.data(), static_cast<std::int32_t*>(nullptr));
    detail::conv_backward_gemm_cpu(exec, g, x.data(), w.data(), r.y.data(), static_cast<const std::int32_t*>(nullptr),
                                   dy.data(), r.dw.data(), r.db.data(), r.dx.data(), e);
    return r;
  };
  const results one = run(1);
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    const results other = run(threads);
    CHECK(same_bits(one.y, other.y));
    CHECK(same_bits(one.dw, other.dw));
    CHECK(same_bits(one.db, other.db));
    CHECK(same_bits(one.dx, other.dx));
  }
}

}  // namespace
