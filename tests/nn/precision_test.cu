// The tf32 and bf16 precisions (nn/precision.hpp): the roundings themselves, bit for bit;
// the CPU path's emulation against double sums of the rounded operands; the GPU's
// tensor-core products against that emulation; and whole models on both executors.
//
// Bounds. With both operands rounded to TF32 (11 significant bits) or bf16 (8), every
// product is exact in FP32 (22 or 16 bits), so two computations of Σ ã·b̃ over k terms
// differ only by how each rounds its FP32 sums. The worst case, k·2^-24·Σ|ã·b̃|, grows past
// the effect of the operand rounding itself (up to 2^-11 per operand for TF32, errors of
// random sign: about 2^-11·√k·|ã·b̃|) once k passes a few hundred, so it could not tell a
// path that forgot to round from one that did. The checks use the probabilistic bound instead (rounding errors
// of independent sign grow as √k: Higham and Mary, SIAM J. Sci. Comput. 41(5), 2019) with a
// margin of 8: max |got - ref| <= 8·(√k + 2)·2^-24·max Σ|ã·b̃| (the 2: a bias, an
// epilogue). Each check also shows that the FP32 (unrounded) result lies outside the bound,
// so a path that forgot to round fails it.
#include "nn/reference.hpp"

#include <cmath>
#include <cstring>
#include <limits>

using namespace nn_test;
namespace detail = gpukit::nn::detail;
using nn::precision;

namespace {

const gpukit::cpu_executor cpu{};

std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
float float_of(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// The tensor-core precisions, each checked the same way.
constexpr precision rounded_precisions[] = {precision::tf32, precision::bf16};

/// The igemm math a model in `p` multiplies with.
detail::igemm_math math_of(precision p) { return p == precision::bf16 ? detail::igemm_math::bf16 : detail::igemm_math::tf32; }

template <class T>
std::vector<double> rounded_double(const std::vector<T>& v, precision p) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<double>(nn::round_operand(p, static_cast<float>(v[i])));
  return out;
}
std::vector<double> absolute(const std::vector<double>& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = std::fabs(v[i]);
  return out;
}
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double e : v) m = std::max(m, std::fabs(e));
  return m;
}
double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
/// The bound of the header comment for sums of k terms whose largest Σ|ã·b̃| is `scale`.
double sum_bound(double k, double scale) { return 8.0 * (std::sqrt(k) + 2.0) * 0x1p-24 * scale; }

/// got within `bound` of ref, and (when `unrounded` is given) the unrounded result outside it.
void require_within(const std::vector<double>& got, const std::vector<double>& ref, double bound, const char* what,
                    const std::vector<double>* unrounded = nullptr) {
  const double err = max_difference(got, ref);
  INFO(what << ": max |difference| " << err << ", bound " << bound);
  REQUIRE(err <= bound);
  if (unrounded != nullptr) {
    const double fp32 = max_difference(*unrounded, ref);
    INFO(what << ": the unrounded result differs by " << fp32);
    REQUIRE(fp32 > bound);
  }
}

struct conv_results {
  std::vector<double> y, dw, db, dx;
};

/// The CPU GEMM path of `c` in `numbers`, in float: forward, then backward from dy
/// (gradients assigned).
conv_results cpu_conv(const conv_case& c, precision numbers, const std::vector<float>& x, const std::vector<float>& w,
                      const std::vector<float>& b, const std::vector<float>& dy) {
  const detail::conv_geometry geo = detail::make_conv_geometry(c.block(), c.in(), "precision_test");
  std::vector<float> y(c.out().size()), dw(w.size()), db(b.size()), dx(x.size());
  std::vector<std::int32_t> argmax(c.out().size());
  detail::conv_forward_gemm_cpu(cpu, geo, x.data(), w.data(), b.data(), y.data(), c.pool ? argmax.data() : nullptr,
                                numbers);
  detail::conv_backward_extras<float> extra;
  extra.accumulate = false;
  detail::conv_backward_gemm_cpu(cpu, geo, x.data(), w.data(), y.data(), c.pool ? argmax.data() : nullptr, dy.data(),
                                 dw.data(), db.data(), dx.data(), extra, numbers);
  return {to_double(y), to_double(dw), to_double(db), to_double(dx)};
}

/// The CPU GEMM path of a dense layer without activation in `numbers`: y = x·wᵀ + b, then
/// dw, db and dx from dy (assigned).
conv_results cpu_dense(const detail::dense_geometry& geo, precision numbers, const std::vector<float>& x,
                       const std::vector<float>& w, const std::vector<float>& b, const std::vector<float>& dy) {
  const std::size_t n = static_cast<std::size_t>(geo.n), outs = static_cast<std::size_t>(geo.out);
  std::vector<float> y(n * outs), dw(w.size()), db(b.size()), dx(x.size());
  detail::dense_forward_gemm_cpu(cpu, geo, x.data(), w.data(), b.data(), y.data(), nn::activation::none,
                                 static_cast<float*>(nullptr), numbers);
  detail::dense_backward_extras<float> extra;
  extra.accumulate = false;
  detail::dense_backward_gemm_cpu(cpu, geo, x.data(), w.data(), y.data(), dy.data(), dw.data(), db.data(), dx.data(),
                                  nn::activation::none, extra, numbers);
  return {to_double(y), to_double(dw), to_double(db), to_double(dx)};
}

/// The same in double, directly, from operands already rounded (the reference).
conv_results reference_conv_pass(const conv_case& c, const std::vector<double>& xr, const std::vector<double>& wr,
                                 const std::vector<double>& b, const std::vector<double>& dyr) {
  const detail::conv_geometry geo = detail::make_conv_geometry(c.block(), c.in(), "precision_test");
  conv_results r{std::vector<double>(c.out().size()), std::vector<double>(wr.size()), std::vector<double>(b.size()),
                 std::vector<double>(xr.size())};
  detail::conv_forward_cpu(cpu, geo, xr.data(), wr.data(), b.data(), r.y.data(), nullptr);
  detail::conv_backward_extras<double> extra;
  extra.accumulate = false;
  detail::conv_backward_cpu(cpu, geo, xr.data(), wr.data(), r.y.data(), nullptr, dyr.data(), r.dw.data(), r.db.data(),
                            r.dx.data(), extra);
  return r;
}

/// The bounds of one conv case: forward k = taps; dw k = batch pixels (and db the same
/// sums of dz alone); dx k = out channels x taps. Each scale, Σ|ã·b̃| of the output with
/// the largest one, is the same pass run on the operands' absolute values (no
/// cancellation), the bias added to y's.
struct conv_bounds {
  double y, dw, db, dx;
};
conv_bounds bounds_of(const conv_case& c, const std::vector<double>& xr, const std::vector<double>& wr,
                      const std::vector<double>& dyr) {
  const conv_results scale =
      reference_conv_pass(c, absolute(xr), absolute(wr), std::vector<double>(c.oc, 0.2), absolute(dyr));
  const double taps = static_cast<double>(c.ic * c.k.h * c.k.w);
  const double pixels = static_cast<double>(c.conv_out().size() / c.oc);
  return {sum_bound(taps, max_abs(scale.y)), sum_bound(pixels, max_abs(scale.dw)), sum_bound(pixels, max_abs(scale.db)),
          sum_bound(static_cast<double>(c.oc * c.k.h * c.k.w), max_abs(scale.dx))};
}

/// Conv cases without activation or pool (the backward operand is dy itself): stride 1 and
/// 2, padding, enough taps for rounding to show.
std::vector<conv_case> rounded_conv_cases() {
  using nn::activation;
  return {
      {2, 16, 9, 8, 24, {3, 3}, 1, 1, activation::none, std::nullopt},
      {3, 7, 13, 11, 40, {5, 5}, 2, 2, activation::none, std::nullopt},
      {2, 33, 6, 7, 10, {1, 1}, 1, 0, activation::none, std::nullopt},
  };
}

struct conv_inputs {
  std::vector<float> x, w, b, dy;
  explicit conv_inputs(const conv_case& c)
      : x(random_vector<float>(c.in().size(), -1, 1, 701)),
        w(random_vector<float>(c.weights(), -0.5, 0.5, 702)),
        b(random_vector<float>(c.oc, -0.2, 0.2, 703)),
        dy(random_vector<float>(c.out().size(), -1, 1, 704)) {}
};

}  // namespace

TEST_CASE("round_to_tf32 rounds to nearest, ties away from zero, as cvt.rna.tf32.f32", "[nn][precision]") {
  CHECK(bits_of(nn::round_to_tf32(1.0f)) == 0x3f800000u);
  CHECK(bits_of(nn::round_to_tf32(float_of(0x3f800fffu))) == 0x3f800000u);  // below half: down
  CHECK(bits_of(nn::round_to_tf32(float_of(0x3f801000u))) == 0x3f802000u);  // a tie: away from zero
  CHECK(bits_of(nn::round_to_tf32(float_of(0xbf801000u))) == 0xbf802000u);  // negative tie: away from zero
  CHECK(bits_of(nn::round_to_tf32(float_of(0x3f801001u))) == 0x3f802000u);  // above half: up
  CHECK(bits_of(nn::round_to_tf32(float_of(0x3f803000u))) == 0x3f804000u);  // odd kept bit, tie: still away
  CHECK(bits_of(nn::round_to_tf32(float_of(0x3fffffffu))) == 0x40000000u);  // carries into the exponent
  CHECK(bits_of(nn::round_to_tf32(float_of(0x00001000u))) == 0x00002000u);  // subnormal tie
  CHECK(bits_of(nn::round_to_tf32(-0.0f)) == 0x80000000u);
  CHECK(std::isinf(nn::round_to_tf32(std::numeric_limits<float>::max())));  // past the largest TF32
  CHECK(nn::round_to_tf32(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
  CHECK(std::isnan(nn::round_to_tf32(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(nn::round_to_tf32(float_of(0x7f800001u))));  // a NaN whose payload lies in the dropped bits
  CHECK(nn::round_to_tf32(0.1) == static_cast<double>(nn::round_to_tf32(0.1f)));
  // Every result is a TF32 number, within half a TF32 unit of x.
  for (const float x : random_vector<float>(10000, -1e6, 1e6, 77)) {
    const float r = nn::round_to_tf32(x);
    CHECK((bits_of(r) & 0x1fffu) == 0u);
    CHECK(std::fabs(static_cast<double>(r) - x) <= std::ldexp(std::fabs(static_cast<double>(x)), -11));
  }
}

TEST_CASE("round_to_bf16 rounds to nearest, ties to even, as cvt.rn.bf16x2.f32", "[nn][precision]") {
  CHECK(bits_of(nn::round_to_bf16(1.0f)) == 0x3f800000u);
  CHECK(bits_of(nn::round_to_bf16(float_of(0x3f807fffu))) == 0x3f800000u);  // below half: down
  CHECK(bits_of(nn::round_to_bf16(float_of(0x3f808000u))) == 0x3f800000u);  // a tie, even kept part: down
  CHECK(bits_of(nn::round_to_bf16(float_of(0x3f818000u))) == 0x3f820000u);  // a tie, odd kept part: up
  CHECK(bits_of(nn::round_to_bf16(float_of(0xbf818000u))) == 0xbf820000u);  // negative: the same magnitude
  CHECK(bits_of(nn::round_to_bf16(float_of(0x3f808001u))) == 0x3f810000u);  // above half: up
  CHECK(bits_of(nn::round_to_bf16(float_of(0x3fffffffu))) == 0x40000000u);  // carries into the exponent
  CHECK(bits_of(nn::round_to_bf16(float_of(0x00018000u))) == 0x00020000u);  // subnormal tie, odd: up
  CHECK(bits_of(nn::round_to_bf16(-0.0f)) == 0x80000000u);
  CHECK(std::isinf(nn::round_to_bf16(std::numeric_limits<float>::max())));  // past the largest bf16
  CHECK(nn::round_to_bf16(-std::numeric_limits<float>::infinity()) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(nn::round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(nn::round_to_bf16(float_of(0x7f800001u))));  // a NaN whose payload lies in the dropped bits
  CHECK(nn::round_to_bf16(0.1) == static_cast<double>(nn::round_to_bf16(0.1f)));
  CHECK(nn::round_operand(precision::bf16, 0.1f) == nn::round_to_bf16(0.1f));
  CHECK(nn::round_operand(precision::tf32, 0.1f) == nn::round_to_tf32(0.1f));
  CHECK(nn::round_operand(precision::fp32, 0.1f) == 0.1f);
  // Every result is a bf16 number, within half a bf16 unit of x.
  for (const float x : random_vector<float>(10000, -1e6, 1e6, 78)) {
    const float r = nn::round_to_bf16(x);
    CHECK((bits_of(r) & 0xffffu) == 0u);
    CHECK(std::fabs(static_cast<double>(r) - x) <= std::ldexp(std::fabs(static_cast<double>(x)), -8));
  }
}

TEST_CASE("the CPU path in tf32 and bf16 sums the rounded operands", "[nn][precision]") {
  for (const precision p : rounded_precisions) {
    for (const conv_case& c : rounded_conv_cases()) {
      CAPTURE(nn::precision_name(p), c.name());
      const conv_inputs in(c);
      const std::vector<double> xr = rounded_double(in.x, p), wr = rounded_double(in.w, p),
                                dyr = rounded_double(in.dy, p);
      const conv_results ref = reference_conv_pass(c, xr, wr, to_double(in.b), dyr);
      const conv_results got = cpu_conv(c, p, in.x, in.w, in.b, in.dy);
      const conv_results fp32 = cpu_conv(c, precision::fp32, in.x, in.w, in.b, in.dy);
      const conv_bounds bound = bounds_of(c, xr, wr, dyr);
      require_within(got.y, ref.y, bound.y, "y", &fp32.y);
      require_within(got.dw, ref.dw, bound.dw, "dw", &fp32.dw);
      require_within(got.db, ref.db, bound.db, "db");
      require_within(got.dx, ref.dx, bound.dx, "dx", &fp32.dx);
    }
  }

  // Dense: y = x·wᵀ + b (k = in), dw = dzᵀ·x and db = Σ dz (k = batch), dx = dz·w (k = out).
  const dense_case d{37, 300, 45, nn::activation::none};
  const detail::dense_geometry geo{static_cast<int>(d.n), static_cast<int>(d.in), static_cast<int>(d.out)};
  const auto x = random_vector<float>(d.n * d.in, -1, 1, 711), w = random_vector<float>(d.out * d.in, -0.5, 0.5, 712);
  const auto b = random_vector<float>(d.out, -0.2, 0.2, 713), dy = random_vector<float>(d.n * d.out, -1, 1, 714);
  const auto reference = [&](const std::vector<double>& xs, const std::vector<double>& ws,
                             const std::vector<double>& bs, const std::vector<double>& dys) {
    conv_results r{std::vector<double>(d.n * d.out), std::vector<double>(ws.size()), std::vector<double>(bs.size()),
                   std::vector<double>(xs.size())};
    detail::dense_forward_cpu(cpu, geo, xs.data(), ws.data(), bs.data(), r.y.data(), nn::activation::none,
                              static_cast<double*>(nullptr));
    detail::dense_backward_extras<double> extra;
    extra.accumulate = false;
    detail::dense_backward_cpu(cpu, geo, xs.data(), ws.data(), r.y.data(), dys.data(), r.dw.data(), r.db.data(),
                               r.dx.data(), nn::activation::none, extra);
    return r;
  };
  const conv_results fp32 = cpu_dense(geo, precision::fp32, x, w, b, dy);
  for (const precision p : rounded_precisions) {
    CAPTURE(nn::precision_name(p));
    const std::vector<double> xr = rounded_double(x, p), wr = rounded_double(w, p), dyr = rounded_double(dy, p);
    const conv_results ref = reference(xr, wr, to_double(b), dyr);
    const conv_results scale = reference(absolute(xr), absolute(wr), std::vector<double>(d.out, 0.2), absolute(dyr));
    const conv_results got = cpu_dense(geo, p, x, w, b, dy);
    require_within(got.y, ref.y, sum_bound(d.in, max_abs(scale.y)), "dense y", &fp32.y);
    require_within(got.dw, ref.dw, sum_bound(d.n, max_abs(scale.dw)), "dense dw", &fp32.dw);
    require_within(got.db, ref.db, sum_bound(d.n, max_abs(scale.db)), "dense db");
    require_within(got.dx, ref.dx, sum_bound(d.out, max_abs(scale.dx)), "dense dx", &fp32.dx);
  }
}

namespace {

/// A small CNN of every kind of stage, for whole-model checks.
template <class Exec>
nn::sequential<Exec> small_cnn(const Exec& exec, precision p) {
  nn::sequential<Exec> m(exec, 3, 12, 12);
  m.add(nn::conv2d(3, 16, 3, 1, 1)).add(nn::relu{}).add(nn::conv2d(16, 24, 3, 1, 1)).add(nn::relu{});
  m.add(nn::maxpool2d(2)).add(nn::conv2d(24, 32, 3, 2, 1)).add(nn::relu{}).add(nn::flatten{});
  m.add(nn::dense(32 * 3 * 3, 64)).add(nn::relu{}).add(nn::dense(64, 10));
  m.set_precision(p);
  m.compile(16, nn::softmax_crossentropy{}, nn::adam{}, 5);
  return m;
}

std::vector<float> class_labels(std::size_t n, std::size_t classes) {
  std::vector<float> y(n * classes, 0.0f);
  for (std::size_t i = 0; i < n; ++i) y[i * classes + (i * 7) % classes] = 1.0f;
  return y;
}

}  // namespace

/// How far small_cnn's loss in `p` may lie from fp32's over a few steps, relative: about ten
/// times what the CPU shows (2.0e-4 in tf32, 3.9e-4 in bf16: the operand rounding, 2^-11 or
/// 2^-8 relative, averaged over many products).
double loss_tolerance(precision p) { return p == precision::bf16 ? 4e-3 : 2e-3; }

TEST_CASE("a model in tf32 or bf16: set before compile, shown by summary, trains like fp32 on the CPU",
          "[nn][precision]") {
  nn::sequential<gpukit::cpu_executor> late(cpu, 1, 4, 4);
  late.add(nn::flatten{}).add(nn::dense(16, 1));
  late.compile(2, nn::mean_squared_error{}, nn::sgd{});
  CHECK_THROWS_AS(late.set_precision(precision::tf32), std::invalid_argument);
  CHECK_THROWS_AS(nn::sequential<gpukit::cpu_executor>(cpu, 1, 4, 4).set_precision(static_cast<precision>(7)),
                  std::invalid_argument);

  const std::size_t n = 16;
  const auto x = nn::host_tensor<float>::from_host({n, 3, 12, 12}, random_vector<float>(n * 3 * 144, 0, 1, 721));
  const auto y = nn::host_tensor<float>::from_host({n, 10, 1, 1}, class_labels(n, 10));
  for (const precision p : rounded_precisions) {
    const std::string format = p == precision::bf16 ? "BF16" : "TF32";
    CAPTURE(format);
    auto f32 = small_cnn(cpu, precision::fp32);
    auto rounded = small_cnn(cpu, p);
    CHECK(rounded.current_precision() == p);
    CHECK(rounded.summary().find(format + " products") != std::string::npos);
    CHECK(rounded.summary().find("operands rounded to " + format) != std::string::npos);
    CHECK(f32.summary().find(format) == std::string::npos);
    float first = 0, last_f32 = 0, last_rounded = 0, largest = 0;
    bool differ = false;
    for (int step = 0; step < 6; ++step) {
      const float a = f32.train_step(x, y), b = rounded.train_step(x, y);
      if (step == 0) first = a;
      differ = differ || a != b;
      CHECK(std::isfinite(b));
      largest = std::max(largest, std::fabs(a - b) / std::fabs(a));
      last_f32 = a, last_rounded = b;
    }
    INFO("largest relative difference from fp32: " << largest);
    CHECK(largest <= loss_tolerance(p));
    CHECK(differ);  // the rounding took effect
    CHECK(last_f32 < first);
    CHECK(last_rounded < first);
  }
}

// ---- the GPU ----------------------------------------------------------------------------------

namespace {

struct gpu {
  gpukit::stream stream;
  gpukit::cuda_executor exec{stream.view()};
  template <class T>
  gpukit::device_buffer<T> upload(const std::vector<T>& v) const {
    auto b = gpukit::device_buffer<T>::from_host(v, stream.view());
    stream.synchronize();
    return b;
  }
  std::vector<double> download(const gpukit::device_buffer<float>& b) const { return to_double(b.to_host(stream.view())); }
};

conv_results gpu_conv(const gpu& g, const conv_case& c, const detail::conv2d_path& path, const conv_inputs& in) {
  const detail::conv_geometry geo = detail::make_conv_geometry(c.block(), c.in(), "precision_test");
  auto gx = g.upload(in.x), gw = g.upload(in.w), gb = g.upload(in.b), gdy = g.upload(in.dy);
  auto gy = g.upload(std::vector<float>(c.out().size(), 7.0f));
  auto gdw = g.upload(std::vector<float>(in.w.size(), 5.0f)), gdb = g.upload(std::vector<float>(in.b.size(), 5.0f));
  auto gdx = g.upload(std::vector<float>(in.x.size(), 9.0f));
  detail::conv_forward_impl(g.exec, geo, path, gx.data(), gw.data(), gb.data(), gy.data(), nullptr);
  detail::conv_backward_extras<float> extra;
  extra.accumulate = false;
  detail::conv_backward_impl(g.exec, geo, path, gx.data(), gw.data(), gy.data(), nullptr, gdy.data(), gdw.data(),
                             gdb.data(), gdx.data(), extra);
  return {g.download(gy), g.download(gdw), g.download(gdb), g.download(gdx)};
}

}  // namespace

TEST_CASE("conv on the GPU in tf32 and bf16: every tile and a split of k against the CPU's emulation",
          "[gpu][nn][precision]") {
  gpu g;
  const nn::path_target target = nn::path_target::current_gpu();
  for (const precision p : rounded_precisions) {
    for (const conv_case& c : rounded_conv_cases()) {
      const conv_inputs in(c);
      const std::vector<double> xr = rounded_double(in.x, p), wr = rounded_double(in.w, p),
                                dyr = rounded_double(in.dy, p);
      const conv_results ref = cpu_conv(c, p, in.x, in.w, in.b, in.dy);
      const conv_bounds bound = bounds_of(c, xr, wr, dyr);
      const detail::conv_geometry geo = detail::make_conv_geometry(c.block(), c.in(), "precision_test");
      std::vector<detail::igemm_request> requests;
      for (const auto tile : detail::igemm_tiles) {
        detail::igemm_request r;
        r.bm = tile.bm, r.bn = tile.bn, r.warps = tile.warps();
        requests.push_back(r);
      }
      detail::igemm_request split;
      split.bm = 64, split.bn = 64, split.splits = 3;
      requests.push_back(split);
      requests.push_back({});
      for (const detail::igemm_request& r : requests) {
        detail::conv2d_request req;
        req.gemm = r;
        req.forward = detail::conv_forward_kind::igemm;
        req.wgrad = detail::conv_wgrad_kind::igemm;
        const detail::conv2d_path path = nn::choose_conv2d_path(geo, target.with_precision(p), true, req);
        CAPTURE(nn::precision_name(p), c.name(), path.describe());
        REQUIRE(path.forward == detail::conv_forward_kind::igemm);
        REQUIRE(path.wgrad == detail::conv_wgrad_kind::igemm);
        CHECK(path.forward_gemm.math == math_of(p));
        CHECK(path.wgrad_gemm.math == math_of(p));
        for (const auto& step : path.dgrad) CHECK(step.gemm.math == math_of(p));
        CHECK(path.describe().find(p == precision::bf16 ? "BF16" : "TF32") != std::string::npos);
        const conv_results got = gpu_conv(g, c, path, in);
        require_within(got.y, ref.y, bound.y, "y");
        require_within(got.dw, ref.dw, bound.dw, "dw");
        require_within(got.db, ref.db, bound.db, "db");
        require_within(got.dx, ref.dx, bound.dx, "dx");
      }
      // The same product in fp32 (3xTF32) is outside the bound: the check sees the rounding.
      detail::conv2d_request req;
      req.forward = detail::conv_forward_kind::igemm;
      const conv_results fp32 = gpu_conv(g, c, nn::choose_conv2d_path(geo, target, true, req), in);
      CHECK(max_difference(fp32.y, ref.y) > bound.y);
    }
  }
}

TEST_CASE("dense on the GPU in tf32 and bf16: the implicit GEMM's products against the CPU's emulation",
          "[gpu][nn][precision]") {
  gpu g;
  for (const precision p : rounded_precisions) {
    for (const dense_case d : {dense_case{37, 300, 45, nn::activation::none}, dense_case{256, 512, 130, nn::activation::none}}) {
      CAPTURE(nn::precision_name(p), d.n, d.in, d.out);
      const detail::dense_geometry geo{static_cast<int>(d.n), static_cast<int>(d.in), static_cast<int>(d.out)};
      const auto x = random_vector<float>(d.n * d.in, -1, 1, 731), w = random_vector<float>(d.out * d.in, -0.5, 0.5, 732);
      const auto b = random_vector<float>(d.out, -0.2, 0.2, 733), dy = random_vector<float>(d.n * d.out, -1, 1, 734);
      const conv_results ref = cpu_dense(geo, p, x, w, b, dy);
      detail::dense_request r;
      r.forward = detail::dense_forward_kind::igemm;
      r.backward = detail::dense_backward_kind::igemm;
      const detail::dense_path path =
          nn::choose_dense_path(geo, nn::path_target::current_gpu().with_precision(p), {}, r);
      INFO(path.describe());
      CHECK(path.forward_gemm.math == math_of(p));
      CHECK(path.dw_gemm.math == math_of(p));
      CHECK(path.dx_gemm.math == math_of(p));
      auto gx = g.upload(x), gw = g.upload(w), gb = g.upload(b), gdy = g.upload(dy);
      auto gy = g.upload(std::vector<float>(ref.y.size(), 7.0f)), gdw = g.upload(std::vector<float>(w.size(), 5.0f));
      auto gdb = g.upload(std::vector<float>(b.size(), 5.0f)), gdx = g.upload(std::vector<float>(x.size(), 9.0f));
      detail::dense_forward_impl(g.exec, geo, path, gx.data(), gw.data(), gb.data(), gy.data(), nn::activation::none,
                                 static_cast<float*>(nullptr));
      detail::dense_backward_extras<float> extra;
      extra.accumulate = false;
      detail::dense_backward_impl(g.exec, geo, path, gx.data(), gw.data(), gy.data(), gdy.data(), gdw.data(), gdb.data(),
                                  gdx.data(), nn::activation::none, extra);
      require_within(g.download(gy), ref.y, sum_bound(d.in, d.in * 0.5 + 0.2), "dense y");
      require_within(g.download(gdw), ref.dw, sum_bound(d.n, d.n * 1.0), "dense dw");
      require_within(g.download(gdb), ref.db, sum_bound(d.n, d.n * 1.0), "dense db");
      require_within(g.download(gdx), ref.dx, sum_bound(d.out, d.out * 0.5), "dense dx");
    }
  }
}

TEST_CASE("a model in tf32 or bf16 trains on the GPU as on the CPU", "[gpu][nn][precision]") {
  gpu g;
  for (const precision p : rounded_precisions) {
    auto on_gpu = small_cnn(g.exec, p);
    auto on_cpu = small_cnn(cpu, p);
    INFO(on_gpu.summary());
    CHECK(on_gpu.summary().find(p == precision::bf16 ? ", BF16" : ", TF32") != std::string::npos);
    const std::size_t n = 16;
    const auto xs = random_vector<float>(n * 3 * 144, 0, 1, 741);
    const auto ys = class_labels(n, 10);
    const auto x_cpu = nn::host_tensor<float>::from_host({n, 3, 12, 12}, xs);
    const auto y_cpu = nn::host_tensor<float>::from_host({n, 10, 1, 1}, ys);
    const auto x_gpu = nn::device_tensor::from_host({n, 3, 12, 12}, xs, g.stream.view());
    const auto y_gpu = nn::device_tensor::from_host({n, 10, 1, 1}, ys, g.stream.view());
    for (int step = 0; step < 5; ++step) {
      const float a = on_cpu.train_step(x_cpu, y_cpu), b = on_gpu.train_step(x_gpu, y_gpu);
      CAPTURE(step);
      CHECK(std::isfinite(b));
      // Not closer: the CPU rounds every product's operands, while on the GPU the paths outside
      // the implicit GEMM (this model's first conv, its small dense layers) stay FP32.
      CHECK(std::fabs(a - b) <= (p == precision::bf16 ? 4e-3 : 1e-3) * std::fabs(a));
    }
  }
}
