// The model plan and the layers' path selection functions, on the host alone: the plan is
// made for an H200 (132 SMs, sm_90) described by hand, so these run on a machine without a
// GPU. What each selection function answers for the shapes that reach each path, the
// engine's tile and split arithmetic, the fused stages, the parameter layout, the fused
// Adam ranges, and the fast division the implicit-GEMM loaders use.
#include "nn/nn_support.hpp"
#include "support/bad_input.hpp"
#include "gpukit/nn/detail/fast_divmod.hpp"
#include "zoo/zoo.hpp"

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

#include <random>
#include <set>

using namespace nn_test;
namespace detail = gpukit::nn::detail;
using invalid = std::invalid_argument;

namespace {

const nn::path_target h200 = nn::path_target::gpu_with(132, 90);

detail::conv_geometry geometry(const nn::conv_block& block, shape4 in) {
  return detail::make_conv_geometry(block, in, "plan_test");
}

}  // namespace

TEST_CASE("fast_divmod divides like the hardware for every divisor size", "[nn][plan]") {
  std::mt19937_64 rng(12345);
  std::vector<int> divisors = {1, 2, 3, 5, 7, 9, 25, 31, 32, 33, 1000, 65535, 65536, 123457, 1 << 20, 0x7fffffff};
  for (int i = 0; i < 200; ++i) divisors.push_back(static_cast<int>(rng() % 0x7fffffff) + 1);
  for (int d : divisors) {
    const detail::fast_divmod f(d);
    std::vector<int> ns = {0, 1, d - 1, d, d < 0x7fffffff ? d + 1 : d, 0x7fffffff, 0x7ffffffe};
    for (int i = 0; i < 500; ++i) ns.push_back(static_cast<int>(rng() % 0x80000000ull));
    for (int n : ns) {
      if (n < 0) continue;
      int q, r;
      f.divmod(n, q, r);
      INFO("n = " << n << ", d = " << d);
      REQUIRE(q == n / d);
      REQUIRE(r == n % d);
    }
  }
  gpukit_test::bad_input<invalid>("gpukit::nn::detail::fast_divmod", "'d'", "zero",
                                                [] { detail::fast_divmod f(0); }, {"= 0"});
}

TEST_CASE("the pooling paths: lanes for large windows, float4 runs, four inputs per backward thread", "[nn][plan]") {
  const nn::path_target h200 = nn::path_target::gpu_with(132, 90);
  const auto avg = [&](nn::avgpool2d pool, shape4 in) {
    return nn::choose_avgpool_path(detail::make_avgpool_geometry(pool, in, "t"), h200);
  };
  // 2x2 over 32x32: one thread per output, backward four inputs per thread.
  const nn::avgpool_path two = avg(nn::avgpool2d(2), {256, 128, 32, 32});
  CHECK(two.kernel == nn::avgpool_kernel::one_thread_per_output);
  CHECK(two.backward_vector == 4);
  CHECK(two.describe() == "one thread per output, back one thread per 4 inputs");
  // Global pooling of 8x8 planes: one run of 64 values, 8 lanes of two float4 each.
  const nn::avgpool_path global = avg(nn::global_avgpool2d{}.as_avgpool({1, 1, 8, 8}), {256, 256, 8, 8});
  CHECK(global.kernel == nn::avgpool_kernel::lanes_per_output);
  CHECK(global.row_runs);
  CHECK(global.forward_vector == 4);
  CHECK(global.lanes == 8);
  CHECK(global.describe() == "8 lanes per output over whole rows (float4), back one thread per 4 inputs");
  // 70x45 planes: 3150 values, not a multiple of four: a warp, one value per load.
  const nn::avgpool_path odd = avg(nn::global_avgpool2d{}.as_avgpool({1, 1, 70, 45}), {2, 3, 70, 45});
  CHECK(odd.lanes == 32);
  CHECK(odd.row_runs);
  CHECK(odd.forward_vector == 1);
  CHECK(odd.backward_vector == 1);
  // A 4x8 window inside 32-wide rows: lanes over the window's rows, no runs.
  const nn::avgpool_path inner = avg(nn::avgpool2d(nn::kernel_size{4, 8}, nn::kernel_size{4, 8}), {2, 3, 16, 32});
  CHECK(inner.kernel == nn::avgpool_kernel::lanes_per_output);
  CHECK(!inner.row_runs);
  CHECK(inner.lanes == 16);
  // Windows below 32 values stay one thread per output; the CPU has its one loop.
  CHECK(avg(nn::avgpool2d(5), {2, 3, 10, 10}).kernel == nn::avgpool_kernel::one_thread_per_output);
  CHECK(nn::choose_avgpool_path(detail::make_avgpool_geometry(nn::avgpool2d(8), {2, 3, 8, 8}, "t"), nn::path_target::cpu())
            .describe() == "CPU loop over planes");
  // Max pooling: the backward gather takes four inputs per thread where rows allow.
  const auto max = [&](nn::maxpool2d pool, shape4 in) {
    return nn::choose_pool_path(detail::make_pool_geometry(pool, in, "t"), h200);
  };
  CHECK(max(nn::maxpool2d(2), {256, 64, 32, 32}).backward_vector == 4);
  CHECK(max(nn::maxpool2d(3, 2), {2, 3, 17, 18}).backward_vector == 1);
}

TEST_CASE("the implicit GEMM's tile choice: forced tiles, splits that cover k in steps of 8", "[nn][plan]") {
  for (long long m : {1LL, 6LL, 64LL, 256LL, 512LL})
    for (long long n : {10LL, 577LL, 4096LL, 65536LL})
      for (long long k : {0LL, 9LL, 576LL, 30752LL, 262144LL}) {
        const detail::igemm_config c = detail::choose_igemm(m, n, k, h200);
        INFO(m << " x " << n << " x " << k << ": " << c.describe());
        REQUIRE(c.planned());
        REQUIRE(c.k_chunk % detail::igemm_bk == 0);
        REQUIRE(c.k_chunk >= detail::igemm_bk);
        REQUIRE(static_cast<long long>(c.k_chunk) * c.splits >= k);
        REQUIRE(static_cast<long long>(c.k_chunk) * (c.splits - 1) < std::max<long long>(k, 1));
        CHECK(c.math == detail::igemm_math::tf32x3);
        CHECK(c.partial_floats(m, n) == (c.splits > 1 ? static_cast<std::size_t>(c.splits * m * n) : 0u));
      }
  // A product that fills the GPU many times over takes a large tile and no split.
  const detail::igemm_config big = detail::choose_igemm(4096, 4096, 4096, h200);
  CHECK(big.bm * big.bn >= 128 * 128);
  CHECK(big.splits == 1);
  // Every tile's warp grid splits it into whole 16x8 mma tiles, and forced warps are taken.
  for (const auto& tile : detail::igemm_tiles) {
    CAPTURE(tile.bm, tile.bn, tile.wm, tile.wn);
    CHECK(tile.bm % (16 * tile.wm) == 0);
    CHECK(tile.bn % (8 * tile.wn) == 0);
    detail::igemm_request w;
    w.bm = tile.bm, w.bn = tile.bn, w.warps = tile.warps();
    const detail::igemm_config c = detail::choose_igemm(1000, 1000, 1000, h200, w);
    CHECK(c.bm == tile.bm);
    CHECK(c.wm == tile.wm);
    CHECK(c.wn == tile.wn);
  }
  // A long, narrow one (a weight gradient) is split over k.
  CHECK(detail::choose_igemm(64, 577, 262144, h200).splits > 1);
  // Forced tiles and splits are taken as asked.
  detail::igemm_request r;
  r.bm = 32, r.bn = 64, r.splits = 3;
  const detail::igemm_config forced = detail::choose_igemm(100, 100, 1000, h200, r);
  CHECK(forced.bm == 32);
  CHECK(forced.bn == 64);
  CHECK(forced.splits == 3);
  r.force_simt = true;
  CHECK(detail::choose_igemm(100, 100, 1000, h200, r).math == detail::igemm_math::simt);
  // Without tensor cores the math is FP32 FMA, whatever was asked.
  CHECK(detail::choose_igemm(100, 100, 1000, nn::path_target::gpu_with(40, 75)).describe().find("FP32 FMA") !=
        std::string::npos);
}

TEST_CASE("choose_conv2d_path: the article's first layer, general convolutions, stride phases", "[nn][plan]") {
  using nn::activation;
  SECTION("the article's conv: 3x3 quad block and band weight gradient (27 taps)") {
    const auto g = geometry({nn::conv2d(3, 32, 3), activation::relu, nn::maxpool2d(2)}, {256, 3, 64, 64});
    const auto p = nn::choose_conv2d_path(g, h200, false);
    CHECK(p.forward == detail::conv_forward_kind::quad);
    CHECK(p.wgrad == detail::conv_wgrad_kind::band);
    CHECK(p.dgrad.empty());
    CHECK_FALSE(p.needs_dz);
    CHECK(p.describe().find("27 taps") != std::string::npos);
  }
  SECTION("a VGG layer: implicit GEMM everywhere, the pool as a pass, dz made first") {
    const auto g = geometry({nn::conv2d(64, 128, 3, 1, 1), activation::relu, nn::maxpool2d(2)}, {256, 64, 16, 16});
    const auto p = nn::choose_conv2d_path(g, h200, true);
    CHECK(p.forward == detail::conv_forward_kind::igemm);
    CHECK(p.pool_pass);
    CHECK(p.forward_gemm.m == 128);
    CHECK(p.forward_gemm.n == 256LL * 16 * 16);
    CHECK(p.forward_gemm.k == 64 * 9);
    CHECK(p.wgrad == detail::conv_wgrad_kind::igemm);
    CHECK(p.wgrad_gemm.n == 64 * 9 + 1);  // the bias as one more column
    CHECK(p.wgrad_gemm.k == 256LL * 16 * 16);
    CHECK(p.needs_dz);
    REQUIRE(p.dgrad.size() == 1);  // stride 1: one phase, every tap
    CHECK(p.dgrad[0].gemm.k == 128 * 9);
    CHECK_FALSE(p.dgrad_zero_fill);
    CHECK(p.forward_scratch >= 256u * 128 * 16 * 16 * sizeof(float));  // the conv output before the pool
    CHECK(p.backward_scratch >= 256u * 128 * 16 * 16 * sizeof(float));  // dz
    CHECK(p.describe().find("implicit GEMM") != std::string::npos);
  }
  SECTION("stride 2: four phases with 4, 2, 2 and 1 taps of a 3x3 kernel") {
    const auto g = geometry({nn::conv2d(32, 64, 3, 2, 1), activation::relu, std::nullopt}, {32, 32, 32, 32});
    const auto p = nn::choose_conv2d_path(g, h200, true);
    REQUIRE(p.dgrad.size() == 4);
    std::multiset<long long> taps;
    long long pixels = 0;
    for (const auto& s : p.dgrad) taps.insert(s.phase.taps()), pixels += s.phase.pixels(32);
    CHECK(taps == std::multiset<long long>{1, 2, 2, 4});
    CHECK(pixels == 32LL * 32 * 32);  // every input pixel in exactly one phase
    CHECK_FALSE(p.dgrad_zero_fill);
  }
  SECTION("a 1x1 kernel with stride 2 meets a quarter of the pixels: the rest is zero-filled") {
    const auto g = geometry({nn::conv2d(32, 16, 1, 2), activation::none, std::nullopt}, {4, 32, 9, 9});
    const auto p = nn::choose_conv2d_path(g, h200, true);
    REQUIRE(p.dgrad.size() == 1);
    CHECK(p.dgrad[0].phase.pixels(4) == 4 * 5 * 5);
    CHECK(p.dgrad_zero_fill);
    CHECK_FALSE(p.needs_dz);  // no pool, no activation: dy is dz
  }
  SECTION("requests force a kernel where it applies, and fall back where it does not") {
    const auto g = geometry({nn::conv2d(16, 24, 5, 1, 2), activation::tanh, nn::maxpool2d(2)}, {2, 16, 12, 12});
    detail::conv2d_request r;
    r.forward = detail::conv_forward_kind::direct;
    CHECK(nn::choose_conv2d_path(g, h200, true, r).forward == detail::conv_forward_kind::direct);
    r.forward = detail::conv_forward_kind::quad;  // 5x5: the quad block cannot
    CHECK(nn::choose_conv2d_path(g, h200, true, r).forward == detail::conv_forward_kind::igemm);
    r.wgrad = detail::conv_wgrad_kind::band;  // 400 taps: the band kernel cannot
    CHECK(nn::choose_conv2d_path(g, h200, true, r).wgrad == detail::conv_wgrad_kind::igemm);
  }
  SECTION("dilation: the implicit GEMM for every pass, even for the article's first layer") {
    const auto g = geometry({nn::conv2d(3, 32, 3, 1, nn::conv_padding::same).dilated(2), activation::relu,
                             nn::maxpool2d(2)},
                            {256, 3, 64, 64});
    CHECK(g.dil == 2);
    CHECK(g.pad_h == 2);
    CHECK(g.oh == 64);
    detail::conv2d_request r;
    r.forward = detail::conv_forward_kind::direct;  // its tile holds adjacent taps: not taken
    r.wgrad = detail::conv_wgrad_kind::band;
    for (const detail::conv2d_request& q : {detail::conv2d_request{}, r}) {
      const auto p = nn::choose_conv2d_path(g, h200, true, q);
      CHECK(p.forward == detail::conv_forward_kind::igemm);
      CHECK(p.wgrad == detail::conv_wgrad_kind::igemm);
      REQUIRE(p.dgrad.size() == 1);  // stride 1: one phase, every tap
      CHECK(p.dgrad[0].phase.taps() == 9);
      CHECK(p.dgrad[0].phase.dz_step == 2);
    }
  }
  SECTION("stride 2 with dilation 2: only even tap offsets, so odd rows and columns are zero-filled") {
    const auto g = geometry({nn::conv2d(8, 8, 3, 2, 2).dilated(2), activation::none, std::nullopt}, {2, 8, 11, 11});
    const auto p = nn::choose_conv2d_path(g, h200, true);
    REQUIRE(p.dgrad.size() == 1);
    CHECK(p.dgrad[0].phase.taps() == 9);
    CHECK(p.dgrad[0].phase.tap_step == 1);
    CHECK(p.dgrad[0].phase.pixels(2) == 2 * 6 * 6);  // (iy + 2) even: rows 0, 2, ..., 10
    CHECK(p.dgrad_zero_fill);
  }
  SECTION("stride 2 with dilation 3: four phases over every pixel, taps 0 and 2 against 1") {
    const auto g = geometry({nn::conv2d(4, 4, 3, 2, nn::conv_padding::sides(1, 0, 2, 1)).dilated(3), activation::none,
                             std::nullopt},
                            {1, 4, 12, 11});
    const auto p = nn::choose_conv2d_path(g, h200, true);
    REQUIRE(p.dgrad.size() == 4);
    std::multiset<long long> taps;
    long long pixels = 0;
    for (const auto& s : p.dgrad) taps.insert(s.phase.taps()), pixels += s.phase.pixels(1);
    CHECK(taps == std::multiset<long long>{1, 2, 2, 4});
    CHECK(pixels == 12LL * 11);
    CHECK_FALSE(p.dgrad_zero_fill);
  }
  SECTION("a GELU has no epilogue form: the implicit GEMM, then a pass of it, then the pool") {
    const auto g = geometry({nn::conv2d(3, 32, 3), activation::gelu, nn::maxpool2d(2)}, {256, 3, 64, 64});
    detail::conv2d_request r;
    r.forward = detail::conv_forward_kind::direct;
    for (const detail::conv2d_request& q : {detail::conv2d_request{}, r}) {
      const auto p = nn::choose_conv2d_path(g, h200, false, q);  // the quad block otherwise (27 taps)
      CHECK(p.forward == detail::conv_forward_kind::igemm);
      CHECK(p.activation_pass == activation::gelu);
      CHECK(p.pool_pass);
      CHECK(p.describe().find(", then a gelu pass, then a pool pass") != std::string::npos);
    }
    const auto relu = geometry({nn::conv2d(64, 64, 3, 1, 1), activation::leaky_relu(0.1f), std::nullopt}, {8, 64, 8, 8});
    CHECK(nn::choose_conv2d_path(relu, h200, false).activation_pass == activation::none);
    const auto tanh = geometry({nn::conv2d(64, 64, 3, 1, 1), activation::gelu_tanh, std::nullopt}, {8, 64, 8, 8});
    CHECK(nn::choose_conv2d_path(tanh, h200, false).describe().find("then a gelu_tanh pass |") != std::string::npos);
  }
  SECTION("the CPU has one path") {
    const auto g = geometry({nn::conv2d(3, 8, 3), activation::none, std::nullopt}, {2, 3, 8, 8});
    CHECK(nn::choose_conv2d_path(g, nn::path_target::cpu(), true).describe() == "CPU blocked GEMM (implicit im2col, OpenMP)");
  }
}

TEST_CASE("choose_dense_path: one block, split-K, the fused backward with Adam, the implicit GEMM", "[nn][plan]") {
  const auto path = [](int n, int in, int out, detail::dense_context c = {}) {
    return nn::choose_dense_path({n, in, out}, h200, c);
  };
  CHECK(path(32, 128, 1).forward == detail::dense_forward_kind::small);
  CHECK(path(32, 128, 1).backward == detail::dense_backward_kind::small);
  detail::dense_context gelu;
  gelu.act = nn::activation::gelu;
  CHECK(path(256, 1024, 1024, gelu).describe().find(", then a gelu pass |") != std::string::npos);
  CHECK(path(32, 128, 1, gelu).describe().find("pass") == std::string::npos);  // the block applies it
  CHECK(path(256, 30752, 128).forward == detail::dense_forward_kind::splitk);
  detail::dense_context adam;
  adam.adam_available = true;
  const auto fused = path(256, 30752, 128, adam);
  CHECK(fused.backward == detail::dense_backward_kind::fused);
  CHECK(fused.adam_fused);
  // A layer too narrow to fill the GPU with the fused kernel's blocks takes the engine.
  CHECK(path(256, 1024, 10, adam).backward == detail::dense_backward_kind::igemm);
  CHECK(path(256, 8448, 10, adam).backward == detail::dense_backward_kind::fused);  // 66 blocks: half of 132 SMs
  const auto general = path(256, 1024, 1024, adam);
  CHECK(general.forward == detail::dense_forward_kind::igemm);
  CHECK(general.backward == detail::dense_backward_kind::igemm);
  CHECK_FALSE(general.adam_fused);
  CHECK(general.dw_gemm.n == 1025);  // the bias gradient as one more column
  detail::dense_context unaligned;
  unaligned.aligned16 = false;
  CHECK(path(256, 30752, 128, unaligned).forward == detail::dense_forward_kind::igemm);
  CHECK(path(256, 30752, 128, unaligned).backward == detail::dense_backward_kind::igemm);
  detail::dense_context head;
  head.loss_head = true;
  CHECK(path(32, 128, 1, head).head_fused);
  CHECK_FALSE(path(256, 4096, 256, head).head_fused);
  gpukit_test::bad_input<invalid>("gpukit::nn::choose_dense_path", "weight matrix", "past 2^31 elements",
                                                [&] { (void)path(2, 70000, 70000); }, {"70000 x 70000"});
}

TEST_CASE("the plan of the article's model on an H200: four stages, fused head, Adam in dense1", "[nn][plan]") {
  const zoo::model& m = zoo::find("article");
  std::vector<std::string> names = {"conv2d", "relu", "max_pooling2d", "flatten", "dense", "relu_1", "dense_1", "sigmoid"};
  const nn::model_plan plan(m.input, m.layers, names, 256, m.loss, nn::adam{}, h200);
  CHECK(plan.describe(names) == "conv2d+relu+max_pooling2d | flatten | dense+relu_1 | dense_1+sigmoid (loss on logits)");
  REQUIRE(plan.stages().size() == 4);
  for (std::size_t batch : {std::size_t{1}, std::size_t{32}, std::size_t{256}}) {
    const nn::batch_plan& bp = plan.for_batch(batch);
    INFO("batch " << batch);
    CHECK(bp.stages[0].conv.forward == detail::conv_forward_kind::quad);
    CHECK(bp.stages[2].adam_fused);  // dense1 applies Adam itself
    CHECK(bp.fused_head);            // dense_1 + loss: one launch
    CHECK(bp.loss.kernel == nn::loss_kernel::fused_with_last_dense);
    // The optimizer launch covers everything but dense1's [w_off, b_off).
    const auto& dense1 = plan.stages()[2];
    long long covered = 0;
    for (int r = 0; r < bp.optimizer_ranges.size; ++r) {
      const long long b = bp.optimizer_ranges.begin[r], e = b + bp.optimizer_ranges.count[r];
      CHECK((e <= static_cast<long long>(dense1.w_off) || b >= static_cast<long long>(dense1.b_off)));
      covered += bp.optimizer_ranges.count[r];
    }
    CHECK(covered == static_cast<long long>(plan.parameter_total() - (dense1.b_off - dense1.w_off)));
  }
  // Parameters: weights then bias per layer, every slice 256-byte aligned.
  for (const auto& st : plan.stages()) {
    if (!st.has_params) continue;
    CHECK(st.w_off % 64 == 0);
    CHECK(st.b_off % 64 == 0);
    CHECK(st.b_off >= st.w_off + st.w_count);
  }
  CHECK(plan.scratch_bytes() >= 256);
  // The relu of the conv block is folded into dense1's dx.
  CHECK(plan.stages()[0].act_done_downstream);
  CHECK(plan.stages()[2].dx_act == nn::activation::relu);
}

TEST_CASE("clipping by global norm keeps Adam out of the layers' kernels", "[nn][plan][optimizer]") {
  const zoo::model& m = zoo::find("article");
  std::vector<std::string> names = {"conv2d", "relu", "max_pooling2d", "flatten", "dense", "relu_1", "dense_1", "sigmoid"};
  nn::adam clipped = nn::adamw(1e-3f, 1e-2f);
  clipped.max_grad_norm = 1.0f;
  const nn::model_plan plan(m.input, m.layers, names, 32, m.loss, clipped, h200);
  CHECK_FALSE(plan.optimizer_route().fuses_into_layers);
  CHECK(plan.optimizer_route().clips);
  CHECK_FALSE(plan.for_batch(32).stages[2].adam_fused);
  CHECK(plan.optimizer_route().describe(clipped) ==
        "adamw: one launch over every parameter, after a pass for the gradient's global norm (clipping)");
  const nn::model_plan decayed(m.input, m.layers, names, 32, m.loss, nn::adamw(), h200);
  CHECK(decayed.optimizer_route().fuses_into_layers);  // AdamW alone still fuses
  CHECK(decayed.for_batch(32).stages[2].adam_fused);
}

TEST_CASE("the plans of every zoo model: each conv and dense stage has a GPU path, the CPU one each", "[nn][plan]") {
  for (const zoo::model& m : zoo::models()) {
    INFO(m.name);
    std::vector<std::string> names;
    for (std::size_t i = 0; i < m.layers.size(); ++i) names.push_back("layer" + std::to_string(i));
    for (const nn::path_target& t : {h200, nn::path_target::cpu()}) {
      const nn::model_plan plan(m.input, m.layers, names, 256, m.loss, nn::adam{}, t);
      for (std::size_t i = 0; i < plan.stages().size(); ++i) {
        const std::string text = plan.path_text(i);
        INFO("stage " << i << ": " << text);
        CHECK(!text.empty());
        if (!t.gpu) continue;
        if (plan.stages()[i].kind == nn::stage_kind::conv && i > 0) {  // past the first layer: the implicit GEMM
          CHECK(plan.for_batch(256).stages[i].conv.forward == detail::conv_forward_kind::igemm);
        }
      }
      // A conv or dense stage after another with an activation folds it into its dx.
      for (std::size_t i = 1; i < plan.stages().size(); ++i) {
        const auto& st = plan.stages()[i];
        if (st.kind == nn::stage_kind::conv && st.needs_dx && plan.stages()[i - 1].kind == nn::stage_kind::conv)
          CHECK(st.dx_act == plan.stages()[i - 1].act);
      }
    }
  }
}
