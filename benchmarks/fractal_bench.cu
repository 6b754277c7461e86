// Fractal cases: the seed article's scene and four harder ones, each rendered by gpukit's
// GPU path ("gpu", the automatic strategy), by each GPU strategy forced ("gpu_simple" = one
// thread per pixel, "gpu_ilp2" = two pixels per thread interleaved, "gpu_refill" = lane
// refill), by the article's algorithm as a plain one-thread-per-pixel kernel ("plain") and
// by the CPU fallback ("cpu") in the same run; and, with gpu and the strategies only,
// smaller scenes at a few iteration limits, where the automatic rule's thresholds lie.
//
//   mandelbrot_seed       1536 x 1024, [-2, 1] x [-1, 1], 20 iterations, double, uint8
//   mandelbrot_full_f64   8192 x 8192, [-2, 1] x [-1.5, 1.5], 4096 iterations, double
//   mandelbrot_full_f32   the same in float
//   mandelbrot_boundary   4096 x 4096 of seahorse valley (no cardioid interior), 4096 iterations
//   mandelbrot_deep_dd    1024 x 1024 at pixel size 1e-14, 20000 iterations, double-double
//                         (the plain kernel runs it in double: a speed reference only)
//   mandelbrot_full_iN    2048 x 2048 of the whole set, N = 64, 256, 1024 iterations, double
//   mandelbrot_boundary_iN  2048 x 2048 of seahorse valley, N = 256, 1024 iterations, double
//   mandelbrot_zoom_1e-14    1024 x 1024 at pixel size 1e-14, 20000 iterations (the deep_dd view)
//   mandelbrot_zoom_1e-100   1920 x 1080 at 1e-100, 50000 iterations  } around the Misiurewicz
//   mandelbrot_zoom_1e-1000  1920 x 1080 at 1e-1000, 50000 iterations } point M_{30,4}
//                         deep zooms (deep_fractal_bench.hpp, with MPFR): variants named by
//                         the zoom strategy (gpu_perturbation, cpu_double-double, ...)
//
// The CPU renders the big scenes downscaled (same view, fewer pixels: a 2-core CI machine
// finishes the whole program in a few minutes), so compare per-iteration rates there.
//
// Every GPU strategy is checked once at registration: its counts must equal the CPU's on
// the CPU's (downscaled) scene, and the automatic path's on the full scene. A strategy that
// differs is reported as an error instead of being timed.
//
// items = iterations actually iterated: for gpu and cpu, what the work-saving algorithm
// performs (count_iterations: interior tests and periodicity skip the rest); for plain, what
// the article's loop performs, min(count + 1, max_iters) per pixel. They are counted once at
// registration, for the GPU cases on the GPU (every strategy performs the same iterations).
//
// The floating-point ceiling, in iterations per second:
//   SMs x SM clock x FP lanes per SM per clock / FP instructions per iteration
// with 64 FP64 lanes per SM on H100/H200 (compute capability 9.0; 128 for FP32), and the
// FP instructions of each inner loop counted in its PTX: gpukit 7 for float and double
// (3 mul, 3 add/sub, 1 fma), 63 for double-double; the plain kernel (the article's numba-cuda
// arithmetic) 8: 2 mul, 2 add, 3 fma and the DSETP of its |z|² test (gpukit tests the high
// word on the integer pipe instead).
// H200: 132 x 1.98 GHz x 64 / 7 = 2.39 Titer/s in double. At exit the program prints each
// case's Mpixel/s, Giter/s and fraction of that ceiling.
#include "gpukit/fractal/mandelbrot.cuh"
#include "support/harness.hpp"
#if defined(GPUKIT_HAVE_MPFR)
#include "deep_fractal_bench.hpp"
#endif

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace gpukit_bench {
namespace {

namespace fr = gpukit::fractal;

struct scene_case {
  std::string family;
  fr::scene gpu;           ///< the full-size scene
  fr::scene cpu;           ///< the CPU's (possibly downscaled) version of it
  double bounds[4];        ///< the view as bounds, for the plain kernel
  int fp_ops_gpu;          ///< FP instructions per iteration of gpukit's loop
  bool fp32;               ///< which FP pipe bounds the loop
  bool yardsticks;         ///< also time the plain kernel and the CPU
};

/// The strategies timed next to the automatic one, with their variant names.
const std::pair<fr::gpu_strategy, const char*> strategies[] = {
    {fr::gpu_strategy::per_pixel, "gpu_simple"},
    {fr::gpu_strategy::pixel_pairs, "gpu_ilp2"},
    {fr::gpu_strategy::lane_refill, "gpu_refill"},
};

fr::scene with_size(fr::scene s, std::size_t width, std::size_t height) {
  // Same region, other pixel count: rescale the steps so the view's extent is unchanged.
  const double sx = static_cast<double>(s.view.width) / width, sy = static_cast<double>(s.view.height) / height;
  s.view.step_x = s.view.step_x * sx;
  s.view.step_y = s.view.step_y * sy;
  s.view.offset_x = s.view.offset_x == 0.0 ? 0.0 : static_cast<double>(width / 2) + (width % 2 ? 0.5 : 0.0);
  s.view.offset_y = s.view.offset_y == 0.0 ? 0.0 : static_cast<double>(height / 2) + (height % 2 ? 0.5 : 0.0);
  s.view.width = width;
  s.view.height = height;
  return s;
}

std::vector<scene_case> scenes() {
  std::vector<scene_case> out;
  auto add = [&](const std::string& family, fr::scene s, std::size_t cpu_size, int ops, bool fp32,
                 bool yardsticks = true) {
    scene_case c{family, s, s, {}, ops, fp32, yardsticks};
    if (cpu_size != 0) c.cpu = with_size(s, cpu_size, cpu_size * s.view.height / s.view.width);
    const auto& v = s.view;
    c.bounds[0] = v.origin_x.hi - v.offset_x * v.step_x.hi;
    c.bounds[1] = c.bounds[0] + static_cast<double>(v.width) * v.step_x.hi;
    c.bounds[2] = v.origin_y.hi - v.offset_y * v.step_y.hi;
    c.bounds[3] = c.bounds[2] + static_cast<double>(v.height) * v.step_y.hi;
    out.push_back(c);
  };
  fr::scene seed;  // the article's defaults
  add("mandelbrot_seed", seed, 0, 7, false);

  fr::scene full;
  full.view = fr::bounds_view(-2.0, 1.0, -1.5, 1.5, 8192, 8192);
  full.max_iters = 4096;
  add("mandelbrot_full_f64", full, 512, 7, false);
  full.prec = fr::precision::f32;
  add("mandelbrot_full_f32", full, 512, 7, true);

  fr::scene valley;
  valley.view = fr::centered_view(fr::dd_from(-0.743643887037151), fr::dd_from(0.131825904205330), 0.004 / 4096, 4096,
                                  4096);
  valley.max_iters = 4096;
  add("mandelbrot_boundary", valley, 256, 7, false);

  fr::scene deep;
  deep.view = fr::centered_view(fr::parse_dd("-0.743643887037158704752191506114774"),
                                fr::parse_dd("0.131825904205311970493132056385139"), 1e-14, 1024, 1024);
  deep.max_iters = 20000;
  deep.prec = fr::precision::dd;
  add("mandelbrot_deep_dd", deep, 64, 63, false);

  // Where the automatic rule's thresholds lie: the whole set and a zoom at a few limits.
  fr::scene sweep;
  sweep.view = fr::bounds_view(-2.0, 1.0, -1.5, 1.5, 2048, 2048);
  for (std::uint32_t iters : {64u, 256u, 1024u}) {
    sweep.max_iters = iters;
    add("mandelbrot_full_i" + std::to_string(iters), sweep, 256, 7, false, false);
  }
  sweep.view = fr::centered_view(fr::dd_from(-0.743643887037151), fr::dd_from(0.131825904205330), 0.004 / 2048, 2048,
                                 2048);
  for (std::uint32_t iters : {256u, 1024u}) {
    sweep.max_iters = iters;
    add("mandelbrot_boundary_i" + std::to_string(iters), sweep, 128, 7, false, false);
  }
  return out;
}

/// Per case: what the exit summary needs besides the harness's record.
struct case_info {
  double pixels = 0;
  int fp_ops = 0;  ///< 0: no FP ceiling (CPU)
  bool fp32 = false;
};
std::map<std::string, case_info>& infos() {
  static std::map<std::string, case_info> m;
  return m;
}
std::string key(const std::string& family, const std::string& variant, std::size_t n) {
  return family + "/" + variant + "/" + size_label(n);
}

/// FP lanes of the whole chip per second (SMs x clock x lanes per SM), 0 without a GPU.
/// FP64 lanes per SM: 64 on the data-centre chips (compute capability x.0: A100, H100/H200,
/// B200), 2 on the others; FP32: 128 (64 on A100, counted as 128 here would overstate, so
/// 64 for 8.0).
double fp_lanes_per_second(bool fp32) {
  if (!gpukit::is_cuda_available()) return 0;
  const auto info = gpukit::device_properties(gpukit::current_device());
  const bool datacentre = info.compute_capability_major >= 8 && info.compute_capability_minor == 0;
  const double fp64_lanes = datacentre ? 64.0 : 2.0;
  const double fp32_lanes = info.compute_capability() == 80 ? 64.0 : 128.0;
  return static_cast<double>(info.sm_count) * info.clock_rate_khz * 1e3 * (fp32 ? fp32_lanes : fp64_lanes);
}

struct work_counts {
  double performed = 0;  ///< iterations the work-saving algorithm performs
  double article = 0;    ///< iterations the article's loop performs
  std::vector<std::uint32_t> counts;
};

template <class Exec>
work_counts count_work(const Exec& exec, const fr::scene& s) {
  const std::size_t n = s.view.width * s.view.height;
  std::vector<std::uint32_t> counts, work;
  if constexpr (gpukit::is_gpu_executor_v<Exec>) {
    gpukit::device_buffer<std::uint32_t> c(n, exec.stream()), w(n, exec.stream());
    fr::escape_time(exec, s, c.span());
    fr::count_iterations(exec, s, w.span());
    counts = c.to_host(exec.stream());
    work = w.to_host(exec.stream());
  } else {
    counts.resize(n);
    work.resize(n);
    fr::escape_time(exec, s, gpukit::make_host_span(counts));
    fr::count_iterations(exec, s, gpukit::make_host_span(work));
  }
  work_counts r;
  for (std::size_t i = 0; i < n; ++i) {
    r.performed += work[i];
    r.article += std::min<double>(counts[i] + 1.0, s.max_iters);
  }
  r.counts = std::move(counts);
  return r;
}

std::vector<std::uint32_t> gpu_counts(const fr::scene& s, fr::gpu_strategy g) {
  gpukit::stream st;
  gpukit::device_buffer<std::uint32_t> c(s.view.width * s.view.height, st);
  fr::escape_time(gpukit::cuda_executor(st.view()), s, c.span(), g);
  return c.to_host(st);
}

/// Empty when `got` equals `want`; otherwise where and how they first differ.
std::string first_difference(const std::vector<std::uint32_t>& got, const std::vector<std::uint32_t>& want,
                             const fr::scene& s, const char* against) {
  std::size_t differing = 0, first = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i] && differing++ == 0) first = i;
  if (differing == 0) return "";
  return std::to_string(differing) + " counts differ from the " + against + "'s on the " +
         std::to_string(s.view.width) + " x " + std::to_string(s.view.height) + " scene, first at pixel (" +
         std::to_string(first % s.view.width) + ", " + std::to_string(first / s.view.width) + "): " +
         std::to_string(got[first]) + " instead of " + std::to_string(want[first]);
}

/// A case that reports `why` instead of running.
void add_failed_case(const std::string& name, const std::string& why) {
  benchmark::RegisterBenchmark(name.c_str(), [why](benchmark::State& state) { state.SkipWithError(why.c_str()); });
}

void register_scene(const scene_case& c) {
  const bool gpu = gpukit::is_cuda_available();
  const std::size_t n = c.gpu.view.width * c.gpu.view.height;
  const std::size_t cn = c.cpu.view.width * c.cpu.view.height;
  const double bytes = 0;  // compute-bound: no bandwidth figure
  const work_counts cw = count_work(gpukit::cpu_executor{}, c.cpu);
  work_counts w;
  if (gpu) {
    gpukit::stream st;
    w = count_work(gpukit::cuda_executor(st.view()), c.gpu);
  }
  const fr::scene s = c.gpu;
  const auto add_gpu_variant = [&](const char* variant, fr::gpu_strategy g) {
    const std::string name = key(c.family, variant, n);
    if (gpu) {
      std::string wrong = first_difference(gpu_counts(c.cpu, g), cw.counts, c.cpu, "CPU");
      if (wrong.empty() && cn != n) wrong = first_difference(gpu_counts(s, g), w.counts, s, "automatic GPU path");
      if (!wrong.empty()) {
        add_failed_case(name, std::string(variant) + ": " + wrong);
        return;
      }
    }
    infos()[name] = {static_cast<double>(n), c.fp_ops_gpu, c.fp32};
    add_gpu_case(c.family, variant, n, bytes, w.performed, [=](gpukit::stream_view st) {
      auto img = std::make_shared<gpukit::device_buffer<std::uint8_t>>(n, st);
      return [=](gpukit::stream_view call_stream) {
        fr::escape_time(gpukit::cuda_executor(call_stream), s, img->span(), g);
      };
    });
  };
  add_gpu_variant("gpu", fr::gpu_strategy::automatic);
  for (const auto& [g, variant] : strategies) add_gpu_variant(variant, g);
  if (!c.yardsticks) return;

  infos()[key(c.family, "plain", n)] = {static_cast<double>(n), 8, c.fp32};
  const std::vector<double> b(c.bounds, c.bounds + 4);
  const bool fp32 = c.fp32;
  add_gpu_case(c.family, "plain", n, bytes, w.article, [=](gpukit::stream_view st) {
    auto img = std::make_shared<gpukit::device_buffer<std::uint8_t>>(n, st);
    return [=](gpukit::stream_view call_stream) {
      const gpukit::cuda_executor exec(call_stream);
      const auto width = s.view.width, height = s.view.height;
      if (fp32)
        fr::plain_escape_time<float, std::uint8_t>(exec, b[0], b[1], b[2], b[3], s.max_iters, width, height, img->span());
      else
        fr::plain_escape_time<double, std::uint8_t>(exec, b[0], b[1], b[2], b[3], s.max_iters, width, height, img->span());
    };
  });
  infos()[key(c.family, "cpu", cn)] = {static_cast<double>(cn), 0, c.fp32};
  const fr::scene cs = c.cpu;
  add_cpu_case(c.family, "cpu", cn, 0, cw.performed, [=] {
    auto img = std::make_shared<gpukit::host_buffer<std::uint8_t>>(cn);
    return [=] { fr::escape_time(gpukit::cpu_executor{}, cs, img->span()); };
  });
}

void print_fractal_summary() {
  bool any = false;
  for (const auto& r : results()) any = any || infos().count(r.family + "/" + r.variant + "/" + r.size) != 0;
  if (!any) return;
  const double fp64 = fp_lanes_per_second(false), fp32 = fp_lanes_per_second(true);
  std::printf("\nFractal cases (Giter/s = iterations actually iterated; ceiling = SMs x clock x FP lanes/SM/clk / FP "
              "instructions per iteration)\n");
  if (fp64 > 0) std::printf("FP lanes: %.1f T/s FP64, %.1f T/s FP32\n", fp64 / 1e12, fp32 / 1e12);
  std::printf("| case | size | variant | time (ms) | Mpixel/s | Giter/s | of FP ceiling | vs plain |\n");
  std::printf("|---|---|---|---:|---:|---:|---:|---:|\n");
  for (const auto& r : results()) {
    const auto it = infos().find(r.family + "/" + r.variant + "/" + r.size);
    if (it == infos().end()) continue;
    const case_info& info = it->second;
    std::string ceiling, vs_plain;
    char text[64];
    const double lanes = info.fp32 ? fp32 : fp64;
    if (info.fp_ops > 0 && lanes > 0) {
      std::snprintf(text, sizeof text, "%.1f%%", 100.0 * r.items * info.fp_ops / r.seconds / lanes);
      ceiling = text;
    }
    for (const auto& o : results())
      if (o.family == r.family && o.size == r.size && o.variant == "plain" && r.variant != "plain") {
        std::snprintf(text, sizeof text, "%.2fx", o.seconds / r.seconds);
        vs_plain = text;
      }
    std::printf("| %s | %s | %s | %.3f | %.1f | %.2f | %s | %s |\n", r.family.c_str(), r.size.c_str(), r.variant.c_str(),
                r.seconds * 1e3, info.pixels / r.seconds / 1e6, r.items / r.seconds / 1e9, ceiling.c_str(),
                vs_plain.c_str());
  }
}

}  // namespace

void register_fractal_cases() {
  // Both registries are constructed before the exit handler is registered, so they are
  // destroyed after it has run.
  (void)results();
  (void)infos();
  std::atexit(print_fractal_summary);
  for (const auto& c : scenes()) register_scene(c);
#if defined(GPUKIT_HAVE_MPFR)
  register_deep_zoom_cases();
#endif
}

}  // namespace gpukit_bench
