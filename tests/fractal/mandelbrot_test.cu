// The GPU path against the CPU path: identical counts (bit for bit, no tolerance) on the
// seed scene, a zoomed boundary scene, the whole set, a Julia set and a double-double deep
// zoom, in every precision and with every GPU strategy; identical work counts; smooth
// counts and colours within rounding; the article mode (plain kernel) equal to numba-cuda's image;
// bad input.
#include "gpukit/fractal/mandelbrot.cuh"
#include "gpu_cpu_support.hpp"
#include "numba_counts.hpp"
#include "scenes.hpp"
#include "support/catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

using namespace gpukit::fractal;
using gpukit::cpu_executor;
using gpukit::cuda_executor;
using gpukit_test::require_identical;
using gpukit::make_host_span;

namespace {

template <class Out>
std::vector<Out> cpu_image(const scene& s) {
  std::vector<Out> out(s.view.width * s.view.height);
  escape_time(cpu_executor{}, s, make_host_span(out));
  return out;
}

template <class Out>
std::vector<Out> gpu_image(const scene& s, gpu_strategy g = gpu_strategy::automatic) {
  gpukit::stream st;
  gpukit::device_buffer<Out> out(s.view.width * s.view.height, st);
  escape_time(cuda_executor(st.view()), s, out.span(), g);
  return out.to_host(st);
}

std::vector<std::uint32_t> gpu_work(const scene& s, gpu_strategy g = gpu_strategy::automatic) {
  gpukit::stream st;
  gpukit::device_buffer<std::uint32_t> out(s.view.width * s.view.height, st);
  count_iterations(cuda_executor(st.view()), s, out.span(), g);
  return out.to_host(st);
}

const gpu_strategy every_strategy[] = {gpu_strategy::automatic, gpu_strategy::per_pixel, gpu_strategy::pixel_pairs,
                                       gpu_strategy::lane_refill};

std::vector<std::uint32_t> cpu_work(const scene& s) {
  std::vector<std::uint32_t> out(s.view.width * s.view.height);
  count_iterations(cpu_executor{}, s, make_host_span(out));
  return out;
}


void require_same_counts(const scene& s) {
  require_identical(gpu_image<std::uint32_t>(s), cpu_image<std::uint32_t>(s), s.view.width);
}

/// Every strategy: the CPU's counts and the CPU's iterations performed, bit for bit.
void require_every_strategy_exact(const scene& s) {
  const auto counts = cpu_image<std::uint32_t>(s);
  const auto work = cpu_work(s);
  for (gpu_strategy g : every_strategy) {
    INFO("strategy " << to_string(g));
    require_identical(gpu_image<std::uint32_t>(s, g), counts, s.view.width);
    require_identical(gpu_work(s, g), work, s.view.width);
  }
}

}  // namespace

TEST_CASE("GPU counts equal CPU counts on the seed scene, byte for byte", "[fractal][gpu]") {
  const scene s = fractal_test::seed();
  require_same_counts(s);
  require_identical(gpu_image<std::uint8_t>(s), cpu_image<std::uint8_t>(s), s.view.width);
  std::vector<std::uint32_t> ref(s.view.width * s.view.height);
  reference_escape_time(s, make_host_span(ref));
  require_identical(gpu_image<std::uint32_t>(s), ref, s.view.width);
}

TEST_CASE("GPU counts equal CPU counts on a zoomed boundary scene", "[fractal][gpu]") {
  for (auto p : {precision::f64, precision::f32}) {
    scene s = fractal_test::boundary(512, 4096);  // 2^30 pixel-iterations: batches from the atomic counter
    s.prec = p;
    INFO(to_string(p));
    require_same_counts(s);
    require_identical(gpu_work(s), cpu_work(s), s.view.width);
  }
}

TEST_CASE("GPU counts equal CPU counts on the whole set, with and without work-saving", "[fractal][gpu]") {
  for (auto p : {precision::f64, precision::f32}) {
    scene s = fractal_test::full(384, 3000);
    s.prec = p;
    INFO(to_string(p));
    require_same_counts(s);
    require_identical(gpu_work(s), cpu_work(s), s.view.width);
    s.interior_checks = false;
    require_same_counts(s);
    s.periodicity = false;
    require_same_counts(s);
  }
}

TEST_CASE("GPU counts equal CPU counts on a Julia set", "[fractal][gpu]") {
  for (auto p : {precision::f64, precision::f32}) {
    scene s = fractal_test::julia(600, 400, 1000);
    s.prec = p;
    INFO(to_string(p));
    require_same_counts(s);
  }
}

TEST_CASE("double-double on the GPU equals the CPU and keeps the deep zoom's detail", "[fractal][gpu]") {
  const scene s = fractal_test::deep(48, 20000);
  const auto gpu = gpu_image<std::uint32_t>(s);
  require_identical(gpu, cpu_image<std::uint32_t>(s), s.view.width);
  require_identical(gpu_work(s), cpu_work(s), s.view.width);
  scene seed = fractal_test::seed();
  seed.prec = precision::dd;
  require_identical(gpu_image<std::uint32_t>(seed), cpu_image<std::uint32_t>(fractal_test::seed()), seed.view.width);
}

TEST_CASE("every GPU strategy gives the CPU's counts on the seed, boundary and Julia scenes", "[fractal][gpu]") {
  const scene seed = fractal_test::seed();
  require_every_strategy_exact(seed);
  const auto bytes = cpu_image<std::uint8_t>(seed);
  for (gpu_strategy g : every_strategy) {
    INFO("strategy " << to_string(g));
    require_identical(gpu_image<std::uint8_t>(seed, g), bytes, seed.view.width);
  }
  for (auto p : {precision::f64, precision::f32}) {
    INFO(to_string(p));
    scene s = fractal_test::boundary(256, 2000);
    s.prec = p;
    require_every_strategy_exact(s);
    s = fractal_test::julia(300, 200, 1000);
    s.prec = p;
    require_every_strategy_exact(s);
  }
  // 2^30 pixel-iterations: the refill kernel's batches come from its atomic counter.
  require_every_strategy_exact(fractal_test::boundary(512, 4096));
}

TEST_CASE("every GPU strategy gives the CPU's counts on the whole set and in double-double", "[fractal][gpu]") {
  scene s = fractal_test::full(256, 3000);
  require_every_strategy_exact(s);
  s.interior_checks = false;
  s.periodicity = false;
  require_every_strategy_exact(s);
  s = fractal_test::full(200, 100);  // below the automatic rule's threshold, no periodicity
  s.prec = precision::f32;
  require_every_strategy_exact(s);
  require_every_strategy_exact(fractal_test::deep(40, 20000));
}

TEST_CASE("every GPU strategy handles 1 x 1, thin and odd sizes", "[fractal][gpu]") {
  // Warp tiles are 8 x 4 per pixel of a thread (8 x 8 for pairs), block tiles 16 wide and
  // 2 warp tiles high: sizes on both sides of each.
  const std::size_t sizes[][2] = {{1, 1}, {1, 37}, {37, 1}, {7, 5}, {9, 5}, {16, 8}, {17, 9}, {33, 17}, {16, 33}, {257, 3}};
  for (const auto& wh : sizes) {
    for (auto p : {precision::f64, precision::f32, precision::dd}) {
      scene s;
      s.view = centered_view(dd_from(-0.75), dd_from(0.1), 0.011, wh[0], wh[1]);
      s.max_iters = 300;
      s.prec = p;
      INFO(wh[0] << " x " << wh[1] << ", " << to_string(p));
      require_every_strategy_exact(s);
      s.julia = true;
      require_every_strategy_exact(s);
    }
  }
}

TEST_CASE("every GPU strategy covers images taller than 65535 rows of block tiles", "[fractal][gpu]") {
  // A grid holds at most 65535 blocks in y; the tiled kernels take the rest of the rows
  // from the grid's z layers (8 rows per block tile, 16 for pairs: 1,100,003 rows need two).
  scene s;
  s.view = centered_view(dd_from(-0.75), dd_from(0.0), 2.4 / 1100003, 3, 1100003);
  s.max_iters = 40;
  require_every_strategy_exact(s);
}

TEST_CASE("the automatic strategy follows its documented rule", "[fractal][gpu]") {
  using detail::choose_strategy;
  scene s = fractal_test::seed();
  CHECK(choose_strategy(s) == gpu_strategy::per_pixel);
  s.max_iters = detail::per_pixel_max_iters;
  s.prec = precision::dd;
  CHECK(choose_strategy(s) == gpu_strategy::per_pixel);  // short orbits: per pixel whatever the precision
  s.max_iters = detail::per_pixel_max_iters + 1;
  CHECK(choose_strategy(s) == gpu_strategy::lane_refill);
  s = fractal_test::full(8192, 4096);  // wide view: per pixel however long the orbits
  CHECK(choose_strategy(s) == gpu_strategy::per_pixel);
  s = fractal_test::boundary(4096, detail::refill_min_iters);  // a zoom with long orbits
  CHECK(choose_strategy(s) == gpu_strategy::lane_refill);
  s.prec = precision::f32;
  CHECK(choose_strategy(s) == gpu_strategy::lane_refill);
  s.max_iters = detail::refill_min_iters - 1;
  CHECK(choose_strategy(s) == gpu_strategy::per_pixel);
}

TEST_CASE("smooth counts from every GPU strategy agree with the CPU to rounding", "[fractal][gpu]") {
  for (auto p : {precision::f64, precision::f32, precision::dd}) {
    scene s = fractal_test::boundary(p == precision::dd ? 40 : 128, 1000);
    s.prec = p;
    const auto cpu = cpu_image<float>(s);
    for (gpu_strategy g : every_strategy) {
      const auto gpu = gpu_image<float>(s, g);
      for (std::size_t i = 0; i < gpu.size(); ++i) {
        INFO(to_string(p) << ", " << to_string(g) << ", pixel " << i << ": gpu " << gpu[i] << ", cpu " << cpu[i]);
        REQUIRE(std::abs(gpu[i] - cpu[i]) <= 1e-4f * std::max(1.0f, cpu[i]));
      }
    }
  }
}

TEST_CASE("coloured and supersampled images on the GPU agree with the CPU within one step", "[fractal][gpu]") {
  scene s = fractal_test::boundary(96, 800);
  const std::size_t n = s.view.width * s.view.height;
  for (std::uint32_t aa : {1u, 3u}) {
    std::vector<rgb8> cpu(n);
    render_rgb(cpu_executor{}, s, palette::classic, aa, make_host_span(cpu));
    gpukit::stream st;
    gpukit::device_buffer<rgb8> dev(n, st);
    render_rgb(cuda_executor(st.view()), s, palette::classic, aa, dev.span());
    const auto gpu = dev.to_host(st);
    for (std::size_t i = 0; i < n; ++i) {
      INFO("aa " << aa << ", pixel " << i);
      REQUIRE(std::abs(gpu[i].r - cpu[i].r) <= 1);
      REQUIRE(std::abs(gpu[i].g - cpu[i].g) <= 1);
      REQUIRE(std::abs(gpu[i].b - cpu[i].b) <= 1);
    }
  }
  const auto smooth = cpu_image<float>(s);
  std::vector<rgb8> cpu(n);
  colourize(cpu_executor{}, make_host_span(std::as_const(smooth)), s.max_iters, palette::fire, make_host_span(cpu));
  gpukit::stream st;
  auto dev_smooth = gpukit::device_buffer<float>::from_host(smooth, st);
  gpukit::device_buffer<rgb8> dev(n, st);
  colourize(cuda_executor(st.view()), std::as_const(dev_smooth).span(), s.max_iters, palette::fire, dev.span());
  const auto gpu = dev.to_host(st);
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(std::abs(gpu[i].r - cpu[i].r) <= 1);
    REQUIRE(std::abs(gpu[i].g - cpu[i].g) <= 1);
    REQUIRE(std::abs(gpu[i].b - cpu[i].b) <= 1);
  }
}

TEST_CASE("the article mode on the GPU equals numba-cuda's image at 20, 255 and 1000 iterations", "[fractal][gpu]") {
  // The plain kernel rounds as numba-cuda compiles the article's kernel (explicit FMAs, the
  // rest rounded once): every pixel equals numba's stored counts, and the CPU path's.
  gpukit::stream st;
  const std::size_t n = 1536 * 1024;
  gpukit::device_buffer<std::uint32_t> dev(n, st);
  for (const std::uint32_t iters : fractal_test::numba_iteration_limits) {
    INFO("max_iters " << iters);
    const auto numba = fractal_test::numba_seed_counts(iters);
    plain_escape_time<double, std::uint32_t>(cuda_executor(st.view()), -2.0, 1.0, -1.0, 1.0, iters, 1536, 1024,
                                             dev.span());
    const auto plain = dev.to_host(st);
    REQUIRE(fractal_test::differing(plain, numba) == 0);
    // gpukit's fast path (Python's rounding) equals numba's image at the article's 20.
    if (iters == 20) {
      scene s = fractal_test::seed();
      escape_time(cuda_executor(st.view()), s, dev.span());
      REQUIRE(fractal_test::differing(dev.to_host(st), numba) == 0);
    }
  }
  // Float and uint8: the GPU equals the CPU path; uint8 saturates the same counts.
  std::vector<std::uint32_t> cpu(64 * 64);
  plain_escape_time<float, std::uint32_t>(gpukit::cpu_executor{}, -2.0, 1.0, -1.5, 1.5, 1000, 64, 64,
                                          gpukit::make_host_span(cpu));
  gpukit::device_buffer<std::uint8_t> bytes(64 * 64, st);
  gpukit::device_buffer<std::uint32_t> wide(64 * 64, st);
  plain_escape_time<float, std::uint8_t>(cuda_executor(st.view()), -2.0, 1.0, -1.5, 1.5, 1000, 64, 64, bytes.span());
  plain_escape_time<float, std::uint32_t>(cuda_executor(st.view()), -2.0, 1.0, -1.5, 1.5, 1000, 64, 64, wide.span());
  const auto b = bytes.to_host(st);
  const auto counts = wide.to_host(st);
  REQUIRE(counts == cpu);
  std::size_t saturated = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    REQUIRE(b[i] == std::min<std::uint32_t>(counts[i], 255));
    saturated += counts[i] > 255;
  }
  CHECK(saturated > 100);
}

TEST_CASE("bad input on the GPU path is rejected before anything is queued", "[fractal][gpu]") {
  using gpukit_test::require_throws_naming;
  gpukit::stream st;
  const cuda_executor exec(st.view());
  gpukit::device_buffer<std::uint32_t> out(16, st);
  const std::vector<std::uint32_t> sentinel(16, 0xdeadbeefu);
  out.copy_from_host(sentinel, st);
  scene ok;
  ok.view = bounds_view(-2, 1, -1, 1, 4, 4);
  scene bad = ok;
  bad.max_iters = 0;
  require_throws_naming<std::invalid_argument>([&] { escape_time(exec, bad, out.span()); }, {"'scene.max_iters'", "0"});
  bad = ok;
  bad.view.step_x.hi = -1e-3;
  require_throws_naming<std::invalid_argument>([&] { count_iterations(exec, bad, out.span()); }, {"'view.step_x'"});
  require_throws_naming<std::invalid_argument>(
      [&] { escape_time(exec, ok, gpukit::device_span<std::uint32_t>(out.data(), 15)); }, {"'out'", "15", "16"});
  require_throws_naming<std::invalid_argument>(
      [&] { escape_time(exec, ok, out.span(), static_cast<gpu_strategy>(7)); }, {"'strategy'", "7"});
  require_throws_naming<std::invalid_argument>(
      [&] { count_iterations(exec, ok, out.span(), static_cast<gpu_strategy>(-1)); }, {"'strategy'", "-1"});
  gpukit::device_buffer<rgb8> rgb(16, st);
  require_throws_naming<std::invalid_argument>([&] { render_rgb(exec, ok, palette::gray, 0, rgb.span()); }, {"'aa'", "0"});
  require_throws_naming<std::invalid_argument>(
      [&] { plain_escape_time<double, std::uint32_t>(exec, 1.0, -2.0, -1.0, 1.0, 20, 4, 4, out.span()); }, {"inverted"});
  REQUIRE(out.to_host(st) == sentinel);
}
