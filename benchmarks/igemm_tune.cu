// gpukit_igemm_tune — every implicit-GEMM product the model zoo's plans contain, timed at
// every tile and math the engine is compiled for (with the split the cost model picks for
// that tile, and without a split), next to the configuration choose_igemm picks. This is
// the data the cost model in nn/detail/igemm_plan.hpp is calibrated against; it makes no
// claim of its own (the zoo's end-to-end figures are gpukit_bench's).
//
//   gpukit_igemm_tune [--csv FILE] [--models vgg,allconv] [--batches 32,256] [--precision tf32|bf16]
//
// --precision tf32 (bf16) plans and times the products of models in nn::precision::tf32
// (bf16): TF32 (BF16) tensor-core products; the default is fp32: 3xTF32 and FP32 FMA tiles.
//
// Each time is the median of 15 back-to-back calls (events around each, no L2 flush: in a
// training step a product's operands mostly come warm from the layer before). One line per
// product: what was chosen and its time, the fastest candidate and its time.
#include "gpukit/gpukit.cuh"
#include "zoo/zoo.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

namespace nn = gpukit::nn;
namespace detail = gpukit::nn::detail;

namespace {

struct arena {
  gpukit::stream& s;
  std::vector<gpukit::device_buffer<float>> keep;
  float* make(std::size_t n) {
    std::vector<float> v(std::max<std::size_t>(n, 1));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    keep.push_back(gpukit::device_buffer<float>::from_host(v, s.view()));
    return keep.back().data();
  }
};

double time_us(gpukit::stream& s, const std::function<void()>& call) {
  call();
  call();
  s.synchronize();
  gpukit::event a, b;
  std::vector<double> t;
  for (int r = 0; r < 15; ++r) {
    a.record(s);
    call();
    b.record(s);
    b.synchronize();
    t.push_back(gpukit::event::elapsed_ms(a, b) * 1e3);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct candidate {
  detail::igemm_config c;
  double us = 0;
};

std::ofstream csv;

/// run_igemm with another pipeline (k per stage BK, stages S) than the library's default.
template <int BK, int S, class Map>
void run_pipeline(const Map& map, const detail::igemm_config& c, float* partial, gpukit::stream_view s) {
  if (!detail::with_igemm_tile(c, detail::igemm_tile_launcher<Map, BK, S>{map, c, partial, s}))
    throw std::logic_error("gpukit_igemm_tune: no kernel for tile " + c.describe());
  detail::reduce_igemm_splits(map, c, partial, s);
}

/// The pipelines compared with the default on the chosen tile (in the chosen math). Stages
/// of 32 of k (measured in 3xTF32 in results/h100-2026-12-06/igemm_tune_first_tiles.log:
/// up to 10% faster on some products, up to 33% slower on others) are no longer compiled
/// here: each variant is every tile of every product again, in every math, and with the
/// TF32 tiles this file became the build's longest (11 minutes on one core).
template <class Map>
std::vector<std::pair<std::string, std::function<void(const detail::igemm_config&, float*, gpukit::stream_view)>>>
pipelines(const Map& map) {
  return {{"k16x3", [map](const detail::igemm_config& c, float* p, gpukit::stream_view s) { run_pipeline<16, 3>(map, c, p, s); }},
          {"k16x4", [map](const detail::igemm_config& c, float* p, gpukit::stream_view s) { run_pipeline<16, 4>(map, c, p, s); }},
          {"k16x5", [map](const detail::igemm_config& c, float* p, gpukit::stream_view s) { run_pipeline<16, 5>(map, c, p, s); }}};
}

using runner = std::function<void(const detail::igemm_config&, float* partial)>;
using pipeline_list =
    std::vector<std::pair<std::string, std::function<void(const detail::igemm_config&, float*, gpukit::stream_view)>>>;

/// Times `run(config, partial)` for the chosen config and every tile x math x {cost-model
/// split, 1}; `partial` holds what the config's split needs.
void tune(gpukit::stream& s, const std::string& name, long long m, long long n, long long k,
          const nn::path_target& t, const runner& run_with, const pipeline_list& variants,
          detail::igemm_operands ops = {}) {
  gpukit::device_buffer<float> partial(1, s.view());
  const auto run = [&](const detail::igemm_config& c) {
    if (partial.size() < c.partial_floats(m, n)) partial = gpukit::device_buffer<float>(c.partial_floats(m, n), s.view());
    run_with(c, partial.data());
  };
  const detail::igemm_config chosen = detail::choose_igemm(m, n, k, t, {}, ops);
  const double chosen_us = time_us(s, [&] { run(chosen); });
  candidate best{chosen, chosen_us};
  for (const auto tile : detail::igemm_tiles)
    for (bool simt : {false, true})
      for (bool no_split : {false, true}) {
        detail::igemm_request r;
        if (simt && (!tile.has_simt() || t.numbers != nn::precision::fp32)) continue;  // tf32, bf16: one math
        r.bm = tile.bm, r.bn = tile.bn, r.warps = tile.warps(), r.force_simt = simt;
        const int model_splits = detail::choose_igemm(m, n, k, t, r, ops).splits;
        if (no_split) {
          if (model_splits == 1) continue;  // the same as the cost-model split
          r.splits = 1;
        }
        const detail::igemm_config c = detail::choose_igemm(m, n, k, t, r, ops);
        const double us = time_us(s, [&] { run(c); });
        if (csv) csv << name << "," << m << "," << n << "," << k << "," << c.bm << "x" << c.bn << "w" << c.wm * c.wn << ","
                     << detail::igemm_math_name(c.math) << "," << c.splits << "," << us << "\n";
        if (us < best.us) best = {c, us};
      }
  std::string pipes;
  for (const auto& variant : variants) {
    const std::string& label = variant.first;
    const auto& fn = variant.second;
    if (partial.size() < chosen.partial_floats(m, n)) partial = gpukit::device_buffer<float>(chosen.partial_floats(m, n), s.view());
    const double us = time_us(s, [&] { fn(chosen, partial.data(), s.view()); });
    char text[64];
    std::snprintf(text, sizeof text, " %s %.1f", label.c_str(), us);
    pipes += text;
    if (csv) csv << name << "," << m << "," << n << "," << k << "," << chosen.bm << "x" << chosen.bn << ","
                 << detail::igemm_math_name(chosen.math) << "-" << label
                 << "," << chosen.splits << "," << us << "\n";
  }
  const double flops = 2.0 * m * n * k;
  std::printf("%-34s %6lld x %7lld x %7lld | chosen %-40s %8.1f us %6.1f TF | best %-40s %8.1f us (%.2fx)\n",
              name.c_str(), m, n, k, chosen.describe().substr(chosen.describe().find(':') + 2).c_str(), chosen_us,
              flops / chosen_us / 1e6, best.c.describe().substr(best.c.describe().find(':') + 2).c_str(), best.us,
              chosen_us / best.us);
  std::printf("    pipelines (chosen tile, us):%s\n", pipes.c_str());
  std::fflush(stdout);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t a = 0;
  while (a < s.size()) {
    const std::size_t b = s.find(',', a);
    out.push_back(s.substr(a, b == std::string::npos ? std::string::npos : b - a));
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  std::vector<std::string> models;
  std::vector<std::size_t> batches = zoo::batches();
  nn::precision numbers = nn::precision::fp32;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) csv.open(argv[++i]);
    else if (std::strcmp(argv[i], "--models") == 0 && i + 1 < argc) models = split_list(argv[++i]);
    else if (std::strcmp(argv[i], "--precision") == 0 && i + 1 < argc) {
      const std::string p = argv[++i];
      if (p != "fp32" && p != "tf32" && p != "bf16")
        throw std::invalid_argument("--precision takes fp32, tf32 or bf16, not '" + p + "'");
      numbers = p == "tf32" ? nn::precision::tf32 : p == "bf16" ? nn::precision::bf16 : nn::precision::fp32;
    }
    else if (std::strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
      batches.clear();
      for (const auto& b : split_list(argv[++i])) batches.push_back(std::stoul(b));
    }
  }
  if (!gpukit::is_cuda_available()) {
    std::printf("gpukit_igemm_tune: no usable CUDA device\n");
    return 0;
  }
  if (csv) csv << "product,m,n,k,tile,math,splits,us\n";
  const nn::path_target t = nn::path_target::current_gpu().with_precision(numbers);
  gpukit::stream s;
  for (const zoo::model& zm : zoo::models()) {
    if (!models.empty() && std::find(models.begin(), models.end(), zm.name) == models.end()) continue;
    for (std::size_t batch : batches) {
      std::vector<std::string> names(zm.layers.size(), "l");
      const nn::model_plan plan(zm.input, zm.layers, names, batch, zm.loss, nn::adam{}, t);
      for (std::size_t i = 0; i < plan.stages().size(); ++i) {
        const nn::stage_plan& st = plan.stages()[i];
        const std::string tag = zm.name + "/" + std::to_string(batch) + " stage " + std::to_string(i) + " ";
        arena mem{s, {}};
        if (st.kind == nn::stage_kind::conv) {
          const detail::conv_geometry g = st.conv_backward_geometry(batch);
          float* x = mem.make(static_cast<std::size_t>(g.input_size()));
          float* w = mem.make(static_cast<std::size_t>(g.oc * g.kdim()));
          float* b = mem.make(static_cast<std::size_t>(g.oc));
          float* y = mem.make(static_cast<std::size_t>(g.conv_size()));
          float* dx = mem.make(static_cast<std::size_t>(g.input_size()));
          float* db = mem.make(static_cast<std::size_t>(g.oc));
          float* dw = mem.make(static_cast<std::size_t>(g.oc * g.kdim()));
          const long long pixels = static_cast<long long>(g.n) * g.oh * g.ow;
          const auto fprop = detail::make_fprop_map(g, x, w, b, y);
          tune(s, tag + "conv fprop", g.oc, pixels, g.kdim(), t,
               [&](const detail::igemm_config& c, float* partial) { detail::run_igemm(fprop, c, partial, s.view()); }, pipelines(fprop),
               detail::igemm_operands{std::decay_t<decltype(fprop)>::b_k_fast});
          const auto wgrad = detail::make_wgrad_map(g, y, x, dw, db, false);
          tune(s, tag + "conv wgrad", g.oc, g.kdim() + 1, pixels, t,
               [&](const detail::igemm_config& c, float* partial) { detail::run_igemm(wgrad, c, partial, s.view()); }, pipelines(wgrad),
               detail::igemm_operands{std::decay_t<decltype(wgrad)>::b_k_fast});
          if (st.needs_dx) {
            const detail::dgrad_phase ph = detail::make_dgrad_phase(g, 0, 0);
            detail::with_dgrad_map(g, ph, w, y, dx, nn::activation::none, nullptr, [&](const auto& dgrad) {
              tune(s, tag + "conv dgrad (phase 0)", g.ic, ph.pixels(g.n), static_cast<long long>(g.oc) * ph.taps(), t,
                   [&](const detail::igemm_config& c, float* partial) { detail::run_igemm(dgrad, c, partial, s.view()); },
                   pipelines(dgrad), detail::igemm_operands{std::decay_t<decltype(dgrad)>::b_k_fast});
            });
          }
        } else if (st.kind == nn::stage_kind::dense) {
          const detail::dense_geometry g = st.dense_geometry(batch);
          float* x = mem.make(static_cast<std::size_t>(g.n) * g.in);
          float* w = mem.make(static_cast<std::size_t>(g.in) * g.out);
          float* b = mem.make(static_cast<std::size_t>(g.out));
          float* y = mem.make(static_cast<std::size_t>(g.n) * g.out);
          float* dx = mem.make(static_cast<std::size_t>(g.n) * g.in);
          float* dw = mem.make(static_cast<std::size_t>(g.in) * g.out);
          float* db = mem.make(static_cast<std::size_t>(g.out));
          detail::dense_forward_map f;
          f.m = g.n, f.n = g.out, f.k = g.in, f.a = x, f.a_m = g.in, f.a_k = 1, f.b = w, f.b_k = 1, f.b_n = g.in;
          f.c = y, f.c_m = g.out, f.bias = b;
          tune(s, tag + "dense forward", g.n, g.out, g.in, t,
               [&](const detail::igemm_config& c, float* partial) { detail::run_igemm(f, c, partial, s.view()); }, pipelines(f),
               detail::igemm_operands{std::decay_t<decltype(f)>::b_k_fast});
          detail::dense_wgrad_map mw;
          mw.m = g.out, mw.n = g.in + 1, mw.k = g.n, mw.a = y, mw.a_m = 1, mw.a_k = g.out, mw.b = x, mw.b_k = g.in,
          mw.b_n = 1, mw.ones_column = g.in, mw.c = dw, mw.c_m = g.in, mw.row_sum = db;
          tune(s, tag + "dense dw", g.out, g.in + 1LL, g.n, t,
               [&](const detail::igemm_config& c, float* partial) { detail::run_igemm(mw, c, partial, s.view()); }, pipelines(mw),
               detail::igemm_operands{std::decay_t<decltype(mw)>::b_k_fast});
          if (st.needs_dx) {
            detail::dense_dgrad_map mx;
            mx.m = g.n, mx.n = g.in, mx.k = g.out, mx.a = y, mx.a_m = g.out, mx.a_k = 1, mx.b = w, mx.b_k = g.in,
            mx.b_n = 1, mx.c = dx, mx.c_m = g.in;
            tune(s, tag + "dense dx", g.n, g.in, g.out, t,
                 [&](const detail::igemm_config& c, float* partial) { detail::run_igemm(mx, c, partial, s.view()); }, pipelines(mx),
               detail::igemm_operands{std::decay_t<decltype(mx)>::b_k_fast});
          }
        }
        s.synchronize();
      }
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpukit_igemm_tune: %s\n", e.what());
  return 1;
}
