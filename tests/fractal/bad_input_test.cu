// Bad input to the fractal layer: viewports, scenes, outputs, palettes, supersampling and
// the GPU's strategies. Each check is one row of docs/BAD_INPUT_MATRIX.md
// (tests/support/bad_input.hpp); the images they could have written are checked untouched
// afterwards, on both executors. Non-finite smooth counts are not refused (a GPU colouring
// pass has no cheap way to report them): they get defined colours, checked here too.
#include "gpukit/fractal/escape_time.hpp"
#include "gpukit/fractal/mandelbrot.cuh"
#include "gpukit/fractal/supersample.hpp"
#include "gpu_cpu_support.hpp"
#include "support/bad_input.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

using namespace gpukit::fractal;
using gpukit::cpu_executor;
using gpukit::cuda_executor;
using gpukit::make_host_span;
using gpukit_test::bad_input;
using gpukit_test::cpu_memory;
using gpukit_test::gpu_memory;
using invalid = std::invalid_argument;

namespace {

const double inf_d = std::numeric_limits<double>::infinity();
const double nan_d = std::numeric_limits<double>::quiet_NaN();

scene small_scene() {
  scene s;
  s.view = bounds_view(-2, 1, -1, 1, 4, 4);
  s.max_iters = 50;
  return s;
}


bool same(rgb8 a, rgb8 b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

template <class Memory>
void check_scene_refusals(Memory& m) {
  const auto& exec = m.exec;
  const scene ok = small_scene();
  auto out = m.make(std::vector<std::uint32_t>(16, 0xdeadbeefu));
  const auto run = [&](const scene& s) { escape_time(exec, s, out.span()); };
  scene s = ok;
  s.max_iters = 0;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.max_iters'", "0", [&] { run(s); }, {"escape_time", "0"});
  s = ok;
  s.max_iters = max_iters_limit + 1u;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.max_iters'", "above 2^31 - 1", [&] { run(s); }, {"2147483648"});
  s = ok;
  s.view.width = 0;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.view.width'", "0", [&] { run(s); });
  s = ok;
  s.view.height = 0;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.view.height'", "0", [&] { run(s); });
  s = ok;
  s.view.width = 70000;
  s.view.height = 70000;
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.view.width'", "width x height above 2^32",
                     [&] { run(s); }, {"70000 x 70000", "2^32"});
  s = ok;
  s.view.step_x.hi = 0.0;
  bad_input<invalid>("gpukit::fractal::escape_time", "'view.step_x'", "0", [&] { run(s); }, {"0"});
  s = ok;
  s.view.step_y.hi = -1.0;
  bad_input<invalid>("gpukit::fractal::escape_time", "'view.step_y'", "negative", [&] { run(s); }, {"-1"});
  s = ok;
  s.view.origin_x.hi = nan_d;
  bad_input<invalid>("gpukit::fractal::escape_time", "'view.origin_x'", "NaN", [&] { run(s); }, {"nan"});
  s = ok;
  s.view.offset_y = 0.25;
  bad_input<invalid>("gpukit::fractal::escape_time", "'view.offset_y'", "not a multiple of 1/2", [&] { run(s); }, {"0.25"});
  s = ok;
  s.julia = true;
  s.julia_im = dd_from(inf_d);
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.julia_im'", "infinite", [&] { run(s); }, {"inf"});
  s = ok;
  s.prec = static_cast<precision>(7);
  bad_input<invalid>("gpukit::fractal::escape_time", "'scene.prec'", "not a precision", [&] { run(s); }, {"7"});
  auto short_out = m.make(std::vector<std::uint32_t>(15, 0xdeadbeefu));
  bad_input<invalid>("gpukit::fractal::escape_time", "'out'", "fewer elements than pixels",
                     [&] { escape_time(exec, ok, short_out.span()); }, {"15", "16"});
  bad_input<invalid>("gpukit::fractal::count_iterations", "'out'", "fewer elements than pixels",
                     [&] { count_iterations(exec, ok, short_out.span()); }, {"count_iterations", "15"});
  s = ok;
  s.max_iters = 0;
  bad_input<invalid>("gpukit::fractal::count_iterations", "'scene.max_iters'", "0",
                     [&] { count_iterations(exec, s, out.span()); }, {"count_iterations"});
  for (std::uint32_t v : m.read(out)) REQUIRE(v == 0xdeadbeefu);
  for (std::uint32_t v : m.read(short_out)) REQUIRE(v == 0xdeadbeefu);
}

template <class Memory>
void check_colour_refusals(Memory& m) {
  const auto& exec = m.exec;
  const scene ok = small_scene();
  const rgb8 mark{1, 2, 3};
  auto out = m.make(std::vector<rgb8>(16, mark));
  auto short_out = m.make(std::vector<rgb8>(15, mark));
  auto smooth = m.make(std::vector<float>(16, 3.0f));
  auto short_smooth = m.make(std::vector<float>(15, 3.0f));
  bad_input<invalid>("gpukit::fractal::render_rgb", "'aa'", "0", [&] { render_rgb(exec, ok, palette::gray, 0, out.span()); },
                     {"render_rgb", "0"});
  bad_input<invalid>("gpukit::fractal::render_rgb", "'aa'", "above 16",
                     [&] { render_rgb(exec, ok, palette::gray, 17, out.span()); }, {"17"});
  bad_input<invalid>("gpukit::fractal::render_rgb", "'p'", "not a palette",
                     [&] { render_rgb(exec, ok, static_cast<palette>(9), 1, out.span()); }, {"9"});
  scene bad = ok;
  bad.max_iters = 0;
  bad_input<invalid>("gpukit::fractal::render_rgb", "'scene.max_iters'", "0",
                     [&] { render_rgb(exec, bad, palette::gray, 2, out.span()); });
  bad_input<invalid>("gpukit::fractal::render_rgb", "'out'", "fewer elements than pixels",
                     [&] { render_rgb(exec, ok, palette::gray, 1, short_out.span()); }, {"15"});
  bad_input<invalid>("gpukit::fractal::colourize", "'smooth'", "size differs from 'out'",
                     [&] { colourize(exec, std::as_const(short_smooth).span(), 20, palette::gray, out.span()); },
                     {"colourize", "'out'", "15", "16"});
  bad_input<invalid>("gpukit::fractal::colourize", "'max_iters'", "0",
                     [&] { colourize(exec, std::as_const(smooth).span(), 0, palette::gray, out.span()); }, {"0"});
  bad_input<invalid>("gpukit::fractal::colourize", "'p'", "not a palette",
                     [&] { colourize(exec, std::as_const(smooth).span(), 20, static_cast<palette>(4), out.span()); }, {"4"});
  for (const rgb8& c : m.read(out)) REQUIRE(same(c, mark));
  for (const rgb8& c : m.read(short_out)) REQUIRE(same(c, mark));

  // Not refused: non-finite counts get defined colours, the same on both executors.
  const float f_inf = std::numeric_limits<float>::infinity(), f_nan = std::numeric_limits<float>::quiet_NaN();
  auto odd = m.make(std::vector<float>{f_nan, f_inf, -f_inf, -3.0f});
  auto coloured = m.make(std::vector<rgb8>(4, mark));
  colourize(exec, std::as_const(odd).span(), 20, palette::gray, coloured.span());
  const auto gray = m.read(coloured);
  CHECK(same(gray[0], rgb8{0, 0, 0}));        // NaN: black
  CHECK(same(gray[1], rgb8{255, 255, 255}));  // +inf: inside the set
  CHECK(same(gray[2], rgb8{0, 0, 0}));        // -inf and negative: clamped to 0
  CHECK(same(gray[3], rgb8{0, 0, 0}));
  colourize(exec, std::as_const(odd).span(), 20, palette::classic, coloured.span());
  const auto classic = m.read(coloured);
  CHECK(same(classic[1], rgb8{0, 0, 0}));  // inside the set: black in every palette but gray
  CHECK(same(classic[0], classic[3]));      // NaN and negative counts: the first stop
}

}  // namespace

TEST_CASE("viewports, names and the CPU reference refuse bad input", "[fractal][bad_input]") {
  bad_input<invalid>("gpukit::fractal::bounds_view", "'width'", "0", [] { (void)bounds_view(-2, 1, -1, 1, 0, 4); }, {"0"});
  bad_input<invalid>("gpukit::fractal::bounds_view", "'height'", "0", [] { (void)bounds_view(-2, 1, -1, 1, 4, 0); }, {"0"});
  bad_input<invalid>("gpukit::fractal::bounds_view", "'min_x'", "not below 'max_x'",
                     [] { (void)bounds_view(1, -2, -1, 1, 4, 4); }, {"inverted", "'max_x'"});
  bad_input<invalid>("gpukit::fractal::bounds_view", "'min_y'", "equal to 'max_y'", [] { (void)bounds_view(-2, 1, 1, 1, 4, 4); },
                     {"inverted", "'max_y'"});
  bad_input<invalid>("gpukit::fractal::bounds_view", "'min_x'", "NaN", [] { (void)bounds_view(nan_d, 1, -1, 1, 4, 4); }, {"nan"});
  bad_input<invalid>("gpukit::fractal::bounds_view", "'max_x'", "infinite", [] { (void)bounds_view(-2, inf_d, -1, 1, 4, 4); },
                     {"inf"});
  bad_input<invalid>("gpukit::fractal::bounds_view", "'min_y'", "beyond 2^60", [] { (void)bounds_view(-2, 1, -1e300, 1, 4, 4); },
                     {"2^60"});
  bad_input<invalid>("gpukit::fractal::centered_view", "'pixel_size'", "0",
                     [] { (void)centered_view(dd_from(0), dd_from(0), 0.0, 4, 4); }, {"0"});
  bad_input<invalid>("gpukit::fractal::centered_view", "'pixel_size'", "negative",
                     [] { (void)centered_view(dd_from(0), dd_from(0), -1e-3, 4, 4); }, {"-0.001"});
  bad_input<invalid>("gpukit::fractal::centered_view", "'pixel_size'", "NaN",
                     [] { (void)centered_view(dd_from(0), dd_from(0), nan_d, 4, 4); }, {"nan"});
  bad_input<invalid>("gpukit::fractal::centered_view", "'center_x'", "NaN",
                     [] { (void)centered_view(dd_from(nan_d), dd_from(0), 1e-3, 4, 4); }, {"nan"});
  bad_input<invalid>("gpukit::fractal::centered_view", "'center_y'", "infinite",
                     [] { (void)centered_view(dd_from(0), dd_from(inf_d), 1e-3, 4, 4); }, {"inf"});
  bad_input<invalid>("gpukit::fractal::centered_view", "'pixel_size'", "so large the view reaches beyond 2^60",
                     [] { (void)centered_view(dd_from(0), dd_from(0), 1e300, 4, 4); }, {"'center_x'", "span", "2^60"});
  bad_input<invalid>("gpukit::fractal::centered_view", "'width'", "0",
                     [] { (void)centered_view(dd_from(0), dd_from(0), 1e-3, 0, 4); }, {"0"});
  bad_input<invalid>("gpukit::fractal::centered_view", "'height'", "0",
                     [] { (void)centered_view(dd_from(0), dd_from(0), 1e-3, 4, 0); }, {"0"});
  bad_input<invalid>("gpukit::fractal::parse_palette", "'name'", "unknown", [] { (void)parse_palette("plasma"); }, {"plasma"});
  bad_input<invalid>("gpukit::fractal::parse_precision", "'name'", "unknown", [] { (void)parse_precision("half"); }, {"half"});
  for (const char* text : {"", "-", "1.2.3", "abc", "1e", "1e5x", "0x10", "1e999"})
    bad_input<invalid>("gpukit::fractal::parse_dd", "'", "not a decimal number", [&] { (void)parse_dd(text); },
                       {"parse_dd", std::string("'") + text + "'"});

  std::vector<std::uint32_t> small(15, 7u);
  bad_input<invalid>("gpukit::fractal::reference_escape_time", "'out'", "fewer elements than pixels",
                     [&] { reference_escape_time(small_scene(), make_host_span(small)); }, {"reference_escape_time", "15"});
  scene s = small_scene();
  s.max_iters = 0;
  std::vector<std::uint32_t> sixteen(16, 7u);
  bad_input<invalid>("gpukit::fractal::reference_escape_time", "'scene.max_iters'", "0",
                     [&] { reference_escape_time(s, make_host_span(sixteen)); });
  for (std::uint32_t v : small) REQUIRE(v == 7u);
  for (std::uint32_t v : sixteen) REQUIRE(v == 7u);
}

TEST_CASE("scenes and outputs are refused on the CPU before anything is written", "[fractal][bad_input]") {
  cpu_memory m;
  check_scene_refusals(m);
  check_colour_refusals(m);
}

/// The article mode's bounds, limit and output size, on either executor.
template <class Memory, class Counts, class Bytes>
void check_plain_refusals(Memory& m, Counts& out, Bytes& bytes) {
  bad_input<invalid>("gpukit::fractal::plain_escape_time", "'min_x'", "not below 'max_x'",
                     [&] { plain_escape_time<double>(m.exec, 1.0, -2.0, -1.0, 1.0, 50, 4, 4, out.span()); }, {"inverted"});
  bad_input<invalid>("gpukit::fractal::plain_escape_time", "'max_y'", "infinite",
                     [&] { plain_escape_time<float>(m.exec, -2.0, 1.0, -1.0, inf_d, 50, 4, 4, bytes.span()); }, {"inf"});
  bad_input<invalid>("gpukit::fractal::plain_escape_time", "'scene.max_iters'", "0",
                     [&] { plain_escape_time<double>(m.exec, -2.0, 1.0, -1.0, 1.0, 0, 4, 4, out.span()); });
  bad_input<invalid>("gpukit::fractal::plain_escape_time", "'out'", "fewer elements than pixels",
                     [&] { plain_escape_time<double>(m.exec, -2.0, 1.0, -1.0, 1.0, 50, 4, 5, out.span()); }, {"16", "20"});
}

TEST_CASE("scenes and outputs are refused on the GPU before anything is queued", "[gpu][fractal][bad_input]") {
  gpu_memory m;
  check_scene_refusals(m);
  check_colour_refusals(m);
}

TEST_CASE("the article mode's bounds on the CPU", "[fractal][bad_input]") {
  cpu_memory m;
  auto out = m.make(std::vector<std::uint32_t>(16, 0xdeadbeefu));
  auto bytes = m.make(std::vector<std::uint8_t>(16, 0xabu));
  check_plain_refusals(m, out, bytes);
  for (std::uint32_t v : m.read(out)) REQUIRE(v == 0xdeadbeefu);
  for (std::uint8_t v : m.read(bytes)) REQUIRE(v == 0xabu);
}

TEST_CASE("GPU-only arguments: strategies and the plain kernel's bounds", "[gpu][fractal][bad_input]") {
  gpu_memory m;
  const scene ok = small_scene();
  auto out = m.make(std::vector<std::uint32_t>(16, 0xdeadbeefu));
  auto bytes = m.make(std::vector<std::uint8_t>(16, 0xabu));
  const auto bad = static_cast<gpu_strategy>(11);
  bad_input<invalid>("gpukit::fractal::escape_time", "'strategy'", "not a gpu_strategy",
                     [&] { escape_time(m.exec, ok, out.span(), bad); }, {"11"});
  bad_input<invalid>("gpukit::fractal::count_iterations", "'strategy'", "not a gpu_strategy",
                     [&] { count_iterations(m.exec, ok, out.span(), bad); }, {"11"});
  check_plain_refusals(m, out, bytes);
  for (std::uint32_t v : m.read(out)) REQUIRE(v == 0xdeadbeefu);
  for (std::uint8_t v : m.read(bytes)) REQUIRE(v == 0xabu);
}
