// Deep zooms on the GPU against the CPU: identical counts and steps performed (bit for
// bit, no tolerance) at pixel sizes 1e-20, 1e-60 and 1e-320 and on the scene built to
// glitch, every output kind, colours within rounding; and every invalid input of the
// deep-zoom API, refused before anything is written or queued, on both executors (each
// check is one row of docs/BAD_INPUT_MATRIX.md).
#include "deep_scenes.hpp"
#include "gpu_cpu_support.hpp"
#include "gpukit/fractal/deep_zoom.hpp"
#include "support/bad_input.hpp"
#include "support/catch.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

using namespace gpukit::fractal;
using gpukit::cpu_executor;
using gpukit::cuda_executor;
using gpukit::make_host_span;
using gpukit_test::bad_input;
using gpukit_test::cpu_memory;
using gpukit_test::gpu_memory;
using gpukit_test::require_identical;
using invalid = std::invalid_argument;

namespace {

template <class Out>
std::vector<Out> cpu_image(const deep_plan& p) {
  std::vector<Out> out(p.reference.width * p.reference.height);
  escape_time(cpu_executor{}, p, make_host_span(out));
  return out;
}

template <class Out>
std::vector<Out> gpu_image(const deep_plan& p) {
  gpukit::stream st;
  gpukit::device_buffer<Out> out(p.reference.width * p.reference.height, st);
  escape_time(cuda_executor(st.view()), p, out.span());
  return out.to_host(st);
}

std::vector<std::uint32_t> cpu_work(const deep_plan& p) {
  std::vector<std::uint32_t> out(p.reference.width * p.reference.height);
  count_iterations(cpu_executor{}, p, make_host_span(out));
  return out;
}

std::vector<std::uint32_t> gpu_work(const deep_plan& p) {
  gpukit::stream st;
  gpukit::device_buffer<std::uint32_t> out(p.reference.width * p.reference.height, st);
  count_iterations(cuda_executor(st.view()), p, out.span());
  return out.to_host(st);
}


void require_gpu_equals_cpu(const deep_scene& s) {
  const deep_plan p = plan_deep_zoom(s);
  INFO("strategy " << to_string(p.strategy) << ", pixel size " << s.pixel_size);
  require_identical(gpu_image<std::uint32_t>(p), cpu_image<std::uint32_t>(p), s.width);
  require_identical(gpu_work(p), cpu_work(p), s.width);
}

// --- bad input ------------------------------------------------------------------------------


deep_scene small_deep() { return fractal_test::deep_at("-0.75", "0.1", "1e-30", 4, 4, zoom_strategy::automatic); }

template <class Memory>
void check_deep_refusals(Memory& m) {
  const auto& exec = m.exec;
  auto out = m.make(std::vector<std::uint32_t>(16, 0xdeadbeefu));
  const auto run = [&](const deep_scene& s) { escape_time(exec, s, out.span()); };
  deep_scene s = small_deep();
  s.pixel_size = "0";
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.pixel_size'", "0", [&] { run(s); }, {"escape_time", "'0'", "> 0"});
  s.pixel_size = "-1e-30";
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.pixel_size'", "negative", [&] { run(s); }, {"'-1e-30'"});
  s.pixel_size = "tiny";
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.pixel_size'", "not a number", [&] { run(s); }, {"'tiny'"});
  s.pixel_size = "1e-100001";
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.pixel_size'", "below 1e-100000", [&] { run(s); },
                     {"'1e-100001'", "1e-100000"});
  s.pixel_size = "1e55";
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.pixel_size'", "view beyond 2^60", [&] { run(s); }, {"2^60"});
  for (const char* text : {"", "-", "1.2.3", "abc", "1e", "0x10", "nan", "inf", " 1", "1,5"}) {
    s = small_deep();
    s.center_re = text;
    bad_input<invalid>("gpukit::fractal::escape_time", "'scene.center_re'", "not a decimal number", [&] { run(s); },
                       {std::string("'") + text + "'", "not a decimal number"});
  }
  s = small_deep();
  s.center_im = "0.1.";
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.center_im'", "not a decimal number", [&] { run(s); }, {"'0.1.'"});
  s = small_deep();
  s.center_im = "-3e30";
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.center_im'", "beyond 2^60", [&] { run(s); }, {"'-3e30'"});
  s = small_deep();
  s.max_iters = 0;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.max_iters'", "0", [&] { run(s); }, {"0"});
  s.max_iters = (1u << 24) + 1;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.max_iters'", "above 2^24 for perturbation", [&] { run(s); },
                     {"16777217", "2^24"});
  s = small_deep();
  s.width = 0;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.width'", "0", [&] { run(s); });
  s = small_deep();
  s.strategy = static_cast<zoom_strategy>(9);
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.strategy'", "not a zoom_strategy", [&] { run(s); }, {"9"});
  s = small_deep();
  s.pixel_size = "1e-300";
  s.strategy = zoom_strategy::f64;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.strategy'", "double below 2^-960", [&] { run(s); },
                     {"'double'", "'1e-300'", "perturbation-extended"});
  s.strategy = zoom_strategy::perturbation;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.strategy'", "perturbation below 2^-960", [&] { run(s); },
                     {"'perturbation'"});
  auto short_out = m.make(std::vector<std::uint32_t>(15, 0xdeadbeefu));
  bad_input<invalid>("gpukit::fractal::escape_time", "'out'", "fewer elements than pixels",
                     [&] { escape_time(exec, small_deep(), short_out.span()); }, {"15", "16"});
  const deep_plan plan = plan_deep_zoom(small_deep());
  bad_input<invalid>("gpukit::fractal::escape_time", "'out'", "fewer elements than pixels, rendering a plan",
                     [&] { escape_time(exec, plan, short_out.span()); }, {"15", "16"});
  bad_input<invalid>("gpukit::fractal::count_iterations", "'out'", "fewer elements than pixels, rendering a plan",
                     [&] { count_iterations(exec, plan, short_out.span()); }, {"count_iterations", "15"});
  bad_input<invalid>("gpukit::fractal::escape_time", "'plan'", "not made by plan_deep_zoom",
                     [&] { escape_time(exec, deep_plan{}, out.span()); }, {"plan_deep_zoom"});
  auto rgb = m.make(std::vector<rgb8>(16, rgb8{1, 2, 3}));
  bad_input<invalid>("gpukit::fractal::render_rgb", "'aa'", "0, rendering a plan", [&] { render_rgb(exec, plan, palette::gray, 0, rgb.span()); },
                     {"render_rgb", "0"});
  bad_input<invalid>("gpukit::fractal::render_rgb", "'p'", "not a palette, rendering a plan",
                     [&] { render_rgb(exec, plan, static_cast<palette>(9), 1, rgb.span()); }, {"9"});
  for (std::uint32_t v : m.read(out)) REQUIRE(v == 0xdeadbeefu);
  for (std::uint32_t v : m.read(short_out)) REQUIRE(v == 0xdeadbeefu);
  for (const rgb8& c : m.read(rgb)) REQUIRE((c.r == 1 && c.g == 2 && c.b == 3));
}

}  // namespace

TEST_CASE("deep scenes and their outputs are refused on the CPU before anything is written", "[fractal][bad_input]") {
  cpu_memory m;
  check_deep_refusals(m);
  bad_input<invalid>("gpukit::fractal::plan_deep_zoom", "'scene.center_re'", "not a decimal number",
                     [] { (void)plan_deep_zoom(fractal_test::deep_at("1/3", "0", "1e-9", 4, 4, zoom_strategy::automatic)); },
                     {"plan_deep_zoom", "'1/3'"});
  bad_input<invalid>("gpukit::fractal::parse_zoom_strategy", "'name'", "unknown", [] { (void)parse_zoom_strategy("fast"); },
                     {"'fast'"});
}

TEST_CASE("deep scenes and their outputs are refused on the GPU before anything is queued",
          "[gpu][fractal][bad_input]") {
  gpu_memory m;
  check_deep_refusals(m);
}

TEST_CASE("GPU perturbation equals the CPU's at pixel sizes 1e-20, 1e-60 and 1e-320", "[fractal][gpu]") {
  require_gpu_equals_cpu(fractal_test::deep_1e20(64));
  require_gpu_equals_cpu(fractal_test::deep_1e60(64));
  require_gpu_equals_cpu(fractal_test::deep_1e320(64));
  // Odd sizes: the last warp of each row is partial, the centre is a half-pixel.
  require_gpu_equals_cpu(fractal_test::deep_1e60(37));
}

TEST_CASE("GPU perturbation equals the CPU's on the scene built to glitch", "[fractal][gpu]") {
  require_gpu_equals_cpu(fractal_test::glitching(64));
}

TEST_CASE("GPU deep zooms: every output kind, and the escape-time strategies", "[fractal][gpu]") {
  const deep_plan p = plan_deep_zoom(fractal_test::deep_1e320(40));
  require_identical(gpu_image<std::uint8_t>(p), cpu_image<std::uint8_t>(p), 40);
  require_identical(gpu_image<std::uint16_t>(p), cpu_image<std::uint16_t>(p), 40);
  // Smooth counts: the same counts underneath, logarithms rounded differently.
  const auto gs = gpu_image<float>(p), cs = cpu_image<float>(p);
  for (std::size_t i = 0; i < cs.size(); ++i) REQUIRE(std::fabs(gs[i] - cs[i]) <= 1e-3f * (1.0f + cs[i]));
  // Colours within one step per channel (supersample.hpp).
  gpukit::stream st;
  const cuda_executor gpu(st.view());
  gpukit::device_buffer<rgb8> drgb(40 * 40, st);
  std::vector<rgb8> crgb(40 * 40);
  render_rgb(gpu, p, palette::classic, 2, drgb.span());
  render_rgb(cpu_executor{}, p, palette::classic, 2, make_host_span(crgb));
  const auto grgb = drgb.to_host(st);
  for (std::size_t i = 0; i < crgb.size(); ++i) {
    REQUIRE(std::abs(grgb[i].r - crgb[i].r) <= 1);
    REQUIRE(std::abs(grgb[i].g - crgb[i].g) <= 1);
    REQUIRE(std::abs(grgb[i].b - crgb[i].b) <= 1);
  }
  for (zoom_strategy z : {zoom_strategy::f32, zoom_strategy::f64, zoom_strategy::dd}) {
    INFO(to_string(z));
    require_gpu_equals_cpu(fractal_test::deep_at(fractal_test::seahorse_re, fractal_test::seahorse_im, "2e-9", 48, 3000, z));
  }
}
