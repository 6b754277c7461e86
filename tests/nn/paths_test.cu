// Every GPU kernel path of the conv and dense layers, forced through the layers' selection
// functions on shapes that reach it, against the CPU path in double. Each case asserts the
// path the selection function returned (the request is honoured, or falls back where the
// kernel cannot take the shape), then runs the layer's GPU implementation with exactly that
// path. The implicit GEMM runs every tile, with and without a split of k, in both of its
// maths (FP32 FMA and 3xTF32; this program defines GPUKIT_NN_IGEMM_SIMT).
//
// Tolerance: max |gpu - ref| / max |ref| <= 1e-4 for every output (the products are
// FP32-accurate: FP32 FMA, or 3xTF32 whose dropped small·small term is below 2^-22 of each
// product; float rounding of sums over up to a few thousand terms stays far below 1e-4).
// Where a pool decides between near-equal values, the reference backward pass is given the
// GPU's own forward results (y and argmax), as in gpu_test.cu.
#include "nn/reference.hpp"

#include <cmath>

using namespace nn_test;
using gpukit::cuda_executor;
using gpukit::memory_space;
namespace detail = gpukit::nn::detail;

namespace {

constexpr double tolerance = 1e-4;
const gpukit::cpu_executor cpu{};

struct gpu {
  gpukit::stream stream;
  cuda_executor exec{stream.view()};
  template <class T>
  gpukit::device_buffer<T> upload(const std::vector<T>& v) const {
    auto b = gpukit::device_buffer<T>::from_host(v, stream.view());
    stream.synchronize();
    return b;
  }
  template <class T>
  std::vector<double> download(const gpukit::device_buffer<T>& b) const {
    const std::vector<T> host = b.to_host(stream.view());
    return std::vector<double>(host.begin(), host.end());
  }
};

/// A request per igemm variant: every tile, a split of k, both maths.
std::vector<detail::igemm_request> igemm_variants() {
  std::vector<detail::igemm_request> out;
  for (const auto tile : detail::igemm_tiles)
    for (bool simt : {false, true}) {
      if (simt && !tile.has_simt()) continue;
      detail::igemm_request r;
      r.bm = tile.bm, r.bn = tile.bn, r.warps = tile.warps(), r.force_simt = simt;
      out.push_back(r);
    }
  detail::igemm_request split;
  split.bm = 64, split.bn = 64, split.splits = 3;
  out.push_back(split);
  split.force_simt = true;
  out.push_back(split);
  out.push_back(detail::igemm_request{});  // the automatic choice
  return out;
}

std::string describe(const detail::igemm_request& r) {
  return "tile " + std::to_string(r.bm) + "x" + std::to_string(r.bn) + " on " + std::to_string(r.warps) + " warps splits " +
         std::to_string(r.splits) +
         (r.force_simt ? " FP32 FMA" : " 3xTF32");
}

/// Runs one conv case on the GPU with the path `request` gives and checks forward and
/// backward against the CPU in double; returns the path taken.
detail::conv2d_path check_conv(const gpu& g, const conv_case& c, const detail::conv2d_request& request,
                               nn::activation dx_act = nn::activation::none) {
  const nn::conv_block block = c.block();
  const detail::conv_geometry geo = detail::make_conv_geometry(block, c.in(), "paths_test");
  const detail::conv2d_path path = nn::choose_conv2d_path(geo, nn::path_target::current_gpu(), true, request);
  INFO(path.describe());
  const std::vector<float> x = random_vector<float>(c.in().size(), -1, 1, 301);
  const std::vector<float> w = random_vector<float>(c.weights(), -0.5, 0.5, 302);
  const std::vector<float> b = random_vector<float>(c.oc, -0.2, 0.2, 303);
  const std::vector<float> dy = random_vector<float>(c.out().size(), -1, 1, 304);
  const std::vector<float> act_in = random_vector<float>(c.in().size(), -1, 1, 305);  // the producer's output
  const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);

  auto gx = g.upload(x), gw = g.upload(w), gb = g.upload(b), gdy = g.upload(dy), gact = g.upload(act_in);
  auto gy = g.upload(std::vector<float>(c.out().size(), 7.0f));  // poisoned: every element must be written
  auto ga = g.upload(std::vector<std::int32_t>(c.out().size(), -1));
  detail::conv_forward_impl(g.exec, geo, path, gx.data(), gw.data(), gb.data(), gy.data(), c.pool ? ga.data() : nullptr);
  const std::vector<double> y = g.download(gy);
  std::vector<double> y_ref(c.out().size());
  std::vector<std::int32_t> a_ref(c.out().size());
  detail::conv_forward_cpu(cpu, geo, xd.data(), wd.data(), bd.data(), y_ref.data(), c.pool ? a_ref.data() : nullptr);
  require_relative(y, y_ref, tolerance, "y");
  std::vector<std::int32_t> argmax(c.out().size());
  if (c.pool) {
    const std::vector<double> a = g.download(ga);
    for (std::size_t i = 0; i < a.size(); ++i) argmax[i] = static_cast<std::int32_t>(a[i]);
  }

  detail::conv_backward_extras<double> extra_ref;
  extra_ref.accumulate = false;
  const std::vector<double> act_d = to_double(act_in);
  if (dx_act != nn::activation::none) extra_ref.dx_act = dx_act, extra_ref.dx_act_y = act_d.data();
  std::vector<double> dw_ref(w.size()), db_ref(b.size()), dx_ref(x.size());
  detail::conv_backward_cpu(cpu, geo, xd.data(), wd.data(), y.data(), c.pool ? argmax.data() : nullptr, dyd.data(),
                            dw_ref.data(), db_ref.data(), dx_ref.data(), extra_ref);
  auto gdw = g.upload(std::vector<float>(w.size(), 5.0f)), gdb = g.upload(std::vector<float>(b.size(), 5.0f));
  auto gdx = g.upload(std::vector<float>(x.size(), 9.0f));
  detail::conv_backward_extras<float> extra;
  extra.accumulate = false;
  if (dx_act != nn::activation::none) extra.dx_act = dx_act, extra.dx_act_y = gact.data();
  detail::conv_backward_impl(g.exec, geo, path, gx.data(), gw.data(), gy.data(), c.pool ? ga.data() : nullptr,
                             gdy.data(), gdw.data(), gdb.data(), gdx.data(), extra);
  require_relative(g.download(gdx), dx_ref, tolerance, "dx");
  require_relative(g.download(gdw), dw_ref, tolerance, "dw");
  require_relative(g.download(gdb), db_ref, tolerance, "db");
  // Accumulating: the same gradients again on top.
  extra.accumulate = true;
  detail::conv_backward_impl(g.exec, geo, path, gx.data(), gw.data(), gy.data(), c.pool ? ga.data() : nullptr,
                             gdy.data(), gdw.data(), gdb.data(), nullptr, extra);
  std::vector<double> twice = dw_ref;
  for (double& v : twice) v *= 2;
  require_relative(g.download(gdw), twice, tolerance, "dw accumulated");
  return path;
}

}  // namespace

TEST_CASE("conv: the implicit GEMM at every tile and math, forward, weight and input gradients", "[gpu][nn][paths]") {
  gpu g;
  using nn::activation;
  const conv_case cases[] = {
      {3, 16, 13, 11, 24, {3, 3}, 1, 1, activation::relu, std::nullopt},     // one phase, no pool
      {2, 7, 19, 17, 40, {5, 5}, 2, 2, activation::tanh, nn::maxpool2d(2)},  // four phases, pool pass
  };
  for (const conv_case& c : cases) {
    for (const detail::igemm_request& r : igemm_variants()) {
      CAPTURE(c.name(), describe(r));
      detail::conv2d_request req;
      req.gemm = r;
      const detail::conv2d_path p = check_conv(g, c, req, activation::relu);
      CHECK(p.forward == detail::conv_forward_kind::igemm);
      CHECK(p.wgrad == detail::conv_wgrad_kind::igemm);
      if (r.bm != 0) {
        CHECK(p.forward_gemm.bm == r.bm);
        CHECK(p.forward_gemm.bn == r.bn);
        if (r.warps != 0) CHECK(p.forward_gemm.wm * p.forward_gemm.wn == r.warps);
        CHECK(p.wgrad_gemm.bm == r.bm);
        CHECK(p.forward_gemm.math == (r.force_simt ? detail::igemm_math::simt : detail::igemm_math::tf32x3));
      }
      if (r.splits > 1) CHECK(p.wgrad_gemm.splits == r.splits);
      CHECK(p.dgrad.size() == (c.stride == 1 ? 1u : 4u));
      CHECK(p.pool_pass == c.pool.has_value());
    }
  }
}

TEST_CASE("conv: strides, zero fill, overlapping pools, wide kernels, the dedicated kernels", "[gpu][nn][paths]") {
  gpu g;
  using nn::activation;
  struct forced {
    conv_case c;
    std::optional<detail::conv_forward_kind> forward;
    std::optional<detail::conv_wgrad_kind> wgrad;
  };
  const forced cases[] = {
      {{2, 32, 9, 9, 16, {1, 1}, 2, 0, activation::none, std::nullopt}, {}, {}},  // phases without taps: zero fill
      {{2, 5, 11, 13, 6, {2, 2}, 3, 1, activation::sigmoid, std::nullopt}, {}, {}},  // stride above the kernel
      {{2, 3, 23, 21, 64, {7, 7}, 1, 3, activation::relu, nn::maxpool2d(3, 2)}, {}, {}},  // overlapping pool windows
      {{1, 8, 20, 20, 12, {3, 3}, 4, 1, activation::relu, std::nullopt}, {}, {}},  // stride 4
      {{3, 2, 12, 16, 33, {1, 5}, 1, 0, activation::tanh, std::nullopt}, {}, {}},  // a non-square kernel
      {{2, 3, 20, 18, 32, {3, 3}, 1, 0, activation::relu, nn::maxpool2d(2)},
       detail::conv_forward_kind::quad, detail::conv_wgrad_kind::band},  // the article's first-layer kernels
      {{2, 3, 17, 16, 20, {3, 3}, 1, 1, activation::none, std::nullopt},
       detail::conv_forward_kind::quad, detail::conv_wgrad_kind::band},  // quad without a pool, odd output
      {{2, 4, 15, 14, 6, {5, 5}, 1, 2, activation::relu, nn::maxpool2d(2)},
       detail::conv_forward_kind::direct, detail::conv_wgrad_kind::igemm},  // the direct tiled forward
      {{2, 6, 14, 14, 10, {3, 3}, 2, 1, activation::tanh, nn::maxpool2d(3, 1)},
       detail::conv_forward_kind::direct, detail::conv_wgrad_kind::igemm},
  };
  for (const forced& f : cases) {
    for (auto dx_act : {activation::none, activation::tanh}) {
      CAPTURE(f.c.name(), nn::activation_name(dx_act));
      detail::conv2d_request req;
      req.forward = f.forward, req.wgrad = f.wgrad;
      const detail::conv2d_path p = check_conv(g, f.c, req, dx_act);
      CHECK(p.forward == f.forward.value_or(detail::conv_forward_kind::igemm));
      if (f.wgrad) CHECK(p.wgrad == *f.wgrad);
      if (f.c.stride > f.c.k.h || f.c.stride > f.c.k.w) CHECK(p.dgrad_zero_fill);
    }
  }
}

namespace {

detail::dense_path check_dense(const gpu& g, const dense_case& c, const detail::dense_request& r, bool fold_act) {
  const detail::dense_geometry geo{static_cast<int>(c.n), static_cast<int>(c.in), static_cast<int>(c.out)};
  detail::dense_context ctx;
  ctx.act = c.act;
  const detail::dense_path path = nn::choose_dense_path(geo, nn::path_target::current_gpu(), ctx, r);
  INFO(path.describe());
  const std::vector<float> x = random_vector<float>(c.n * c.in, -1, 1, 311), w = random_vector<float>(c.in * c.out, -0.1, 0.1, 312);
  const std::vector<float> b = random_vector<float>(c.out, -0.3, 0.3, 313), dy = random_vector<float>(c.n * c.out, -1, 1, 314);
  const std::vector<float> prev = random_vector<float>(c.n * c.in, 0, 1, 315);  // a sigmoid's output before x
  const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy), pd = to_double(prev);
  auto gx = g.upload(x), gw = g.upload(w), gb = g.upload(b), gdy = g.upload(dy), gprev = g.upload(prev);
  auto gy = g.upload(std::vector<float>(c.n * c.out, 7.0f)), gpre = g.upload(std::vector<float>(c.n * c.out, 7.0f));
  detail::dense_forward_impl(g.exec, geo, path, gx.data(), gw.data(), gb.data(), gy.data(), c.act, gpre.data());
  std::vector<double> y_ref(c.n * c.out), pre_ref(c.n * c.out);
  detail::dense_forward_cpu(cpu, geo, xd.data(), wd.data(), bd.data(), y_ref.data(), c.act, pre_ref.data());
  const std::vector<double> y = g.download(gy);
  require_relative(y, y_ref, tolerance, "y");
  require_relative(g.download(gpre), pre_ref, tolerance, "pre-activation");

  detail::dense_backward_extras<double> e_ref;
  e_ref.accumulate = false;
  detail::dense_backward_extras<float> e;
  e.accumulate = false;
  if (fold_act) {
    e_ref.dx_act = e.dx_act = nn::activation::sigmoid;
    e_ref.dx_act_y = pd.data(), e.dx_act_y = gprev.data();
  }
  std::vector<double> dw_ref(w.size()), db_ref(b.size()), dx_ref(x.size());
  detail::dense_backward_cpu(cpu, geo, xd.data(), wd.data(), y.data(), dyd.data(), dw_ref.data(), db_ref.data(),
                             dx_ref.data(), c.act, e_ref);
  auto gdw = g.upload(std::vector<float>(w.size(), 5.0f)), gdb = g.upload(std::vector<float>(b.size(), 5.0f));
  auto gdx = g.upload(std::vector<float>(x.size(), 9.0f));
  detail::dense_backward_impl(g.exec, geo, path, gx.data(), gw.data(), gy.data(), gdy.data(), gdw.data(), gdb.data(),
                              gdx.data(), c.act, e);
  require_relative(g.download(gdx), dx_ref, tolerance, "dx");
  require_relative(g.download(gdw), dw_ref, tolerance, "dw");
  require_relative(g.download(gdb), db_ref, tolerance, "db");
  e.accumulate = true;
  detail::dense_backward_impl(g.exec, geo, path, gx.data(), gw.data(), gy.data(), gdy.data(), gdw.data(), gdb.data(),
                              nullptr, c.act, e);
  std::vector<double> twice = db_ref;
  for (double& v : twice) v *= 2;
  require_relative(g.download(gdb), twice, tolerance, "db accumulated");
  return path;
}

}  // namespace

TEST_CASE("dense: one block, split-K, the fused backward and the implicit GEMM at every tile", "[gpu][nn][paths]") {
  gpu g;
  using nn::activation;
  using fk = detail::dense_forward_kind;
  using bk = detail::dense_backward_kind;
  struct forced {
    dense_case c;
    std::optional<fk> forward;
    std::optional<bk> backward;
    fk want_forward;
    bk want_backward;
  };
  const forced cases[] = {
      {{4, 30, 7, activation::relu}, {}, {}, fk::small, bk::small},
      {{32, 4096, 200, activation::tanh}, {}, {}, fk::splitk, bk::igemm},
      {{64, 1024, 100, activation::relu}, fk::splitk, bk::fused, fk::splitk, bk::fused},  // asked: 8 blocks
      {{64, 1024, 100, activation::tanh}, fk::splitk, {}, fk::splitk, bk::igemm},  // too few blocks to fuse by default
      {{16, 16384, 20, activation::relu}, {}, {}, fk::splitk, bk::fused},          // 128 blocks: fused by default
      {{48, 333, 77, activation::sigmoid}, fk::splitk, bk::fused, fk::igemm, bk::igemm},  // in not a multiple of 4: no fast path
      {{300, 513, 130, activation::none}, {}, {}, fk::igemm, bk::igemm},
      {{7, 2048, 129, activation::relu}, fk::igemm, bk::igemm, fk::igemm, bk::igemm},
  };
  for (const forced& f : cases) {
    for (bool fold : {false, true}) {
      CAPTURE(f.c.n, f.c.in, f.c.out, nn::activation_name(f.c.act), fold);
      detail::dense_request r;
      r.forward = f.forward, r.backward = f.backward;
      const detail::dense_path p = check_dense(g, f.c, r, fold);
      CHECK(p.forward == f.want_forward);
      CHECK(p.backward == f.want_backward);
    }
  }
  for (const detail::igemm_request& v : igemm_variants()) {
    CAPTURE(describe(v));
    detail::dense_request r;
    r.forward = fk::igemm, r.backward = bk::igemm, r.gemm = v;
    const detail::dense_path p = check_dense(g, {37, 300, 90, activation::relu}, r, true);
    CHECK(p.forward == fk::igemm);
    if (v.bm != 0) {
      CHECK(p.dw_gemm.bn == v.bn);
      if (v.warps != 0) CHECK(p.dw_gemm.wm * p.dw_gemm.wn == v.warps);
    }
  }
}
