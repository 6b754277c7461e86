// Deep-zoom cases of fractal_bench.cu (built where CMake found MPFR): the three
// goals, each variant named "<executor>_<zoom strategy>" (to_string(zoom_strategy)):
//
//   mandelbrot_zoom_1e-14    1024 x 1024, pixel size 1e-14, 20000 iterations, at the
//                            deep_dd case's centre: double-double against perturbation
//   mandelbrot_zoom_1e-100   1920 x 1080, pixel size 1e-100, 50000 iterations   } centred on
//   mandelbrot_zoom_1e-1000  1920 x 1080, pixel size 1e-1000, 50000 iterations  } M_{30,4}
//
// M_{30,4} is the Misiurewicz point of seahorse valley where z_34 = z_30 (a repelling
// 4-cycle of multiplier 1.33): spirals at every depth, counts ~4000 at 1e-100 and ~32000 at
// 1e-1000. Its digits are computed here by Newton's method in MPFR at the precision each
// depth needs.
//
// Variants: gpu_<strategy> renders with the plan made beforehand (the reference orbit and
// its tables: what a zoom animation or repeated renders reuse); gpu_<strategy>_with_plan
// makes the plan in every call too (the whole cost of one image; GPU events around the
// call include the host's planning); plan times plan_deep_zoom alone on the CPU;
// cpu_<strategy> is the CPU path on a downscaled image of the same region.
//
// items = iterations of the article's loop, min(count + 1, max_iters) per pixel, counted
// once at registration (on the GPU for GPU cases): the work a plain renderer would do, so
// Giter/s compares strategies that skip iterations with those that cannot. Every GPU
// variant is checked at registration: its counts on the CPU's downscaled scene must equal
// the CPU's, else the case reports the difference instead of running.
#pragma once

#include "gpukit/fractal/deep_zoom.hpp"
#include "support/harness.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gpukit_bench {
namespace deep_bench {

namespace fr = gpukit::fractal;
using fr::detail::mpfr_number;

/// A complex number of two MPFR numbers.
struct mp_complex {
  mpfr_number re, im;
  explicit mp_complex(mpfr_prec_t bits) : re(bits), im(bits) {}
};

/// a ← a·b (complex), with t1, t2 as scratch.
inline void multiply(mp_complex& a, const mp_complex& b, mpfr_ptr t1, mpfr_ptr t2) {
  mpfr_mul(t1, a.re.get(), b.re.get(), MPFR_RNDN);
  mpfr_mul(t2, a.im.get(), b.im.get(), MPFR_RNDN);
  mpfr_sub(t1, t1, t2, MPFR_RNDN);
  mpfr_mul(t2, a.re.get(), b.im.get(), MPFR_RNDN);
  mpfr_mul(a.im.get(), a.im.get(), b.re.get(), MPFR_RNDN);
  mpfr_add(a.im.get(), a.im.get(), t2, MPFR_RNDN);
  mpfr_set(a.re.get(), t1, MPFR_RNDN);
}

/// `digits` significant digits of v as "[-]0.DDDDe±X".
inline std::string decimal(mpfr_srcptr v, std::size_t digits) {
  mpfr_exp_t e = 0;
  char* text = mpfr_get_str(nullptr, &e, 10, digits, v, MPFR_RNDN);
  std::string s = text;
  mpfr_free_str(text);
  const bool negative = s[0] == '-';
  return std::string(negative ? "-0." : "0.") + s.substr(negative ? 1 : 0) + "e" + std::to_string(e);
}

/// M_{30,4} to `digits` decimal digits: Newton's method on f(c) = z_34(c) − z_30(c) from
/// its double value (quadratic convergence: ~log2(digits / 15) steps, each 34 iterations).
inline std::pair<std::string, std::string> misiurewicz_30_4(std::size_t digits) {
  const auto bits = static_cast<mpfr_prec_t>(digits * 3.33) + 64;
  mp_complex c(bits), z(bits), dz(bits), z30(bits), dz30(bits), f(bits), df(bits);
  mpfr_number t1(bits), t2(bits), d(bits);
  mpfr_set_d(c.re.get(), -0.74329189085243, MPFR_RNDN);
  mpfr_set_d(c.im.get(), 0.131240552308798, MPFR_RNDN);
  for (int step = 0; step < 64; ++step) {
    for (mpfr_ptr v : {z.re.get(), z.im.get(), dz.re.get(), dz.im.get()}) mpfr_set_zero(v, 1);
    for (int n = 1; n <= 34; ++n) {
      // dz = 2·z·dz + 1, z = z² + c
      multiply(dz, z, t1.get(), t2.get());
      mpfr_mul_2ui(dz.re.get(), dz.re.get(), 1, MPFR_RNDN);
      mpfr_mul_2ui(dz.im.get(), dz.im.get(), 1, MPFR_RNDN);
      mpfr_add_ui(dz.re.get(), dz.re.get(), 1, MPFR_RNDN);
      mpfr_mul(t1.get(), z.re.get(), z.im.get(), MPFR_RNDN);
      mpfr_sqr(t2.get(), z.re.get(), MPFR_RNDN);
      mpfr_sqr(z.im.get(), z.im.get(), MPFR_RNDN);
      mpfr_sub(z.re.get(), t2.get(), z.im.get(), MPFR_RNDN);
      mpfr_add(z.re.get(), z.re.get(), c.re.get(), MPFR_RNDN);
      mpfr_mul_2ui(z.im.get(), t1.get(), 1, MPFR_RNDN);
      mpfr_add(z.im.get(), z.im.get(), c.im.get(), MPFR_RNDN);
      if (n == 30) {
        mpfr_set(z30.re.get(), z.re.get(), MPFR_RNDN);
        mpfr_set(z30.im.get(), z.im.get(), MPFR_RNDN);
        mpfr_set(dz30.re.get(), dz.re.get(), MPFR_RNDN);
        mpfr_set(dz30.im.get(), dz.im.get(), MPFR_RNDN);
      }
    }
    mpfr_sub(f.re.get(), z.re.get(), z30.re.get(), MPFR_RNDN);
    mpfr_sub(f.im.get(), z.im.get(), z30.im.get(), MPFR_RNDN);
    mpfr_sub(df.re.get(), dz.re.get(), dz30.re.get(), MPFR_RNDN);
    mpfr_sub(df.im.get(), dz.im.get(), dz30.im.get(), MPFR_RNDN);
    // c −= f / df = f · conj(df) / |df|²
    mpfr_sqr(d.get(), df.re.get(), MPFR_RNDN);
    mpfr_sqr(t1.get(), df.im.get(), MPFR_RNDN);
    mpfr_add(d.get(), d.get(), t1.get(), MPFR_RNDN);
    mpfr_neg(df.im.get(), df.im.get(), MPFR_RNDN);
    multiply(f, df, t1.get(), t2.get());
    mpfr_div(f.re.get(), f.re.get(), d.get(), MPFR_RNDN);
    mpfr_div(f.im.get(), f.im.get(), d.get(), MPFR_RNDN);
    mpfr_sub(c.re.get(), c.re.get(), f.re.get(), MPFR_RNDN);
    mpfr_sub(c.im.get(), c.im.get(), f.im.get(), MPFR_RNDN);
    const bool converged = (mpfr_zero_p(f.re.get()) || mpfr_get_exp(f.re.get()) < -bits + 16) &&
                           (mpfr_zero_p(f.im.get()) || mpfr_get_exp(f.im.get()) < -bits + 16);
    if (converged) break;
  }
  return {decimal(c.re.get(), digits), decimal(c.im.get(), digits)};
}

struct zoom_case {
  std::string family;
  fr::deep_scene gpu;  ///< the full-size scene
  fr::deep_scene cpu;  ///< the same region, fewer pixels
  std::vector<fr::zoom_strategy> strategies;
};

inline fr::deep_scene make_scene(const std::pair<std::string, std::string>& center, const char* pixel,
                                 std::size_t width, std::size_t height, std::uint32_t iters) {
  fr::deep_scene s;
  s.center_re = center.first;
  s.center_im = center.second;
  s.pixel_size = pixel;
  s.width = width;
  s.height = height;
  s.max_iters = iters;
  return s;
}

inline fr::deep_scene with_strategy(fr::deep_scene s, fr::zoom_strategy z) {
  s.strategy = z;
  return s;
}

inline std::vector<zoom_case> zoom_cases() {
  std::vector<zoom_case> out;
  const std::pair<std::string, std::string> seahorse{"-0.743643887037158704752191506114774",
                                                     "0.131825904205311970493132056385139"};
  out.push_back({"mandelbrot_zoom_1e-14", make_scene(seahorse, "1e-14", 1024, 1024, 20000),
                 make_scene(seahorse, "1.6e-13", 64, 64, 20000),
                 {fr::zoom_strategy::dd, fr::zoom_strategy::perturbation}});
  const auto m100 = misiurewicz_30_4(130);
  out.push_back({"mandelbrot_zoom_1e-100", make_scene(m100, "1e-100", 1920, 1080, 50000),
                 make_scene(m100, "1e-99", 192, 108, 50000), {fr::zoom_strategy::perturbation}});
  const auto m1000 = misiurewicz_30_4(1030);
  out.push_back({"mandelbrot_zoom_1e-1000", make_scene(m1000, "1e-1000", 1920, 1080, 50000),
                 make_scene(m1000, "2e-999", 96, 54, 50000), {fr::zoom_strategy::perturbation_extended}});
  return out;
}

struct counted {
  std::vector<std::uint32_t> counts;
  double iterations = 0;  ///< of the article's loop
};

template <class Exec>
counted count(const Exec& exec, const fr::deep_plan& p) {
  counted c;
  const std::size_t n = static_cast<std::size_t>(p.reference.width) * p.reference.height;
  if constexpr (gpukit::is_gpu_executor_v<Exec>) {
    gpukit::device_buffer<std::uint32_t> d(n, exec.stream());
    fr::escape_time(exec, p, d.span());
    c.counts = d.to_host(exec.stream());
  } else {
    c.counts.resize(n);
    fr::escape_time(exec, p, gpukit::make_host_span(c.counts));
  }
  for (std::uint32_t v : c.counts) c.iterations += std::min<double>(v + 1.0, p.reference.max_iters);
  return c;
}

/// Empty when equal; otherwise how many and where the first differs.
inline std::string difference(const std::vector<std::uint32_t>& got, const std::vector<std::uint32_t>& want,
                              std::size_t width) {
  std::size_t differing = 0, first = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i] && differing++ == 0) first = i;
  if (differing == 0) return "";
  return std::to_string(differing) + " counts differ from the CPU's, first at pixel (" + std::to_string(first % width) +
         ", " + std::to_string(first / width) + "): " + std::to_string(got[first]) + " instead of " +
         std::to_string(want[first]);
}

inline void register_case(const zoom_case& c) {
  const bool gpu = gpukit::is_cuda_available();
  const std::size_t n = c.gpu.width * c.gpu.height, cn = c.cpu.width * c.cpu.height;
  for (fr::zoom_strategy z : c.strategies) {
    const std::string strategy = fr::to_string(z);
    const auto gpu_scene = with_strategy(c.gpu, z), cpu_scene = with_strategy(c.cpu, z);
    const auto cpu_plan = std::make_shared<const fr::deep_plan>(fr::plan_deep_zoom(cpu_scene));
    const counted on_cpu = count(gpukit::cpu_executor{}, *cpu_plan);
    add_cpu_case(c.family, "cpu_" + strategy, cn, 0, on_cpu.iterations, [=] {
      auto img = std::make_shared<gpukit::host_buffer<std::uint32_t>>(cn);
      return [=] { fr::escape_time(gpukit::cpu_executor{}, *cpu_plan, img->span()); };
    });
    const auto plan = std::make_shared<const fr::deep_plan>(fr::plan_deep_zoom(gpu_scene));
    if (z == fr::zoom_strategy::perturbation || z == fr::zoom_strategy::perturbation_extended) {
      // items: the reference orbit's iterations
      add_cpu_case(c.family, "plan", n, 0, plan->reference.length,
                   [=] { return [=] { (void)fr::plan_deep_zoom(gpu_scene); }; });
    }
    if (!gpu) {
      add_gpu_case(c.family, "gpu_" + strategy, n, 0, 0, {});  // counted as skipped
      continue;
    }
    gpukit::stream st;
    const gpukit::cuda_executor exec(st.view());
    const std::string wrong = difference(count(exec, *cpu_plan).counts, on_cpu.counts, c.cpu.width);
    if (!wrong.empty()) {
      const std::string why = "gpu_" + strategy + ": " + wrong;
      benchmark::RegisterBenchmark((c.family + "/gpu_" + strategy + "/" + size_label(n)).c_str(),
                                   [why](benchmark::State& state) { state.SkipWithError(why.c_str()); });
      continue;
    }
    const double iterations = count(exec, *plan).iterations;
    add_gpu_case(c.family, "gpu_" + strategy, n, 0, iterations, [=](gpukit::stream_view s) {
      auto img = std::make_shared<gpukit::device_buffer<std::uint32_t>>(n, s);
      return [=](gpukit::stream_view call) { fr::escape_time(gpukit::cuda_executor(call), *plan, img->span()); };
    });
    if (z != fr::zoom_strategy::dd) {
      add_gpu_case(c.family, "gpu_" + strategy + "_with_plan", n, 0, iterations, [=](gpukit::stream_view s) {
        auto img = std::make_shared<gpukit::device_buffer<std::uint32_t>>(n, s);
        return [=](gpukit::stream_view call) { fr::escape_time(gpukit::cuda_executor(call), gpu_scene, img->span()); };
      });
    }
  }
}

/// The deep cases side by side at exit: time, Mpixel/s, Giter/s of the article's loop.
inline void print_summary() {
  bool any = false;
  for (const auto& r : results()) any = any || r.family.rfind("mandelbrot_zoom_", 0) == 0;
  if (!any) return;
  std::printf("\nDeep zooms (Giter/s = iterations of the article's loop per second; plan = reference orbit and "
              "tables on the CPU)\n| case | size | variant | time (ms) | Mpixel/s | Giter/s |\n|---|---|---|---:|---:|---:|\n");
  for (const auto& r : results()) {
    if (r.family.rfind("mandelbrot_zoom_", 0) != 0) continue;
    const bool plan = r.variant == "plan";
    const double px = r.size.rfind("2^", 0) == 0 ? std::ldexp(1.0, std::atoi(r.size.c_str() + 2))
                                                  : std::strtod(r.size.c_str(), nullptr);
    char rates[64] = "|  |  ";
    if (!plan) std::snprintf(rates, sizeof rates, "| %.2f | %.2f", px / r.seconds / 1e6, r.items / r.seconds / 1e9);
    std::printf("| %s | %s | %s | %.3f %s |\n", r.family.c_str(), r.size.c_str(), r.variant.c_str(), r.seconds * 1e3,
                rates);
  }
}

}  // namespace deep_bench

/// Registers the deep-zoom cases (called by register_fractal_cases).
inline void register_deep_zoom_cases() {
  (void)results();
  std::atexit(deep_bench::print_summary);
  for (const auto& c : deep_bench::zoom_cases()) deep_bench::register_case(c);
}

}  // namespace gpukit_bench
