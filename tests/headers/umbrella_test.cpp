// The host umbrella header on its own: this file includes nothing else from gpukit and
// uses a symbol of every layer, each from a header that no other layer brings in where
// there is one, so an umbrella that loses a layer fails the build. main() makes the CPU
// calls (CTest: headers.self_contained).
#include <gpukit/gpukit.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "gpukit_header_check: %s\n", what);
  return 1;
}

}  // namespace

int main() {
  namespace nn = gpukit::nn;
  const gpukit::cpu_executor cpu{1};

  // core: views.hpp is reached through core.hpp alone.
  gpukit::host_buffer<float> pixels(4, gpukit::host_memory::pageable, gpukit::zero_init);
  const gpukit::view2d<float> image{pixels.data(), 2, 2, 2};
  image(1, 1) = 2.0f;

  // ops
  std::vector<float> a{1, 2, 3}, b{4, 5, 6}, sum(3);
  gpukit::add(cpu, a, b, sum);
  if (sum[2] != 9.0f) return fail("gpukit::add");

  // fractal
  gpukit::fractal::scene scene;
  scene.view = gpukit::fractal::bounds_view(-2.0, 1.0, -1.0, 1.0, 6, 4);
  std::vector<std::uint8_t> counts(6 * 4);
  gpukit::fractal::escape_time(cpu, scene, gpukit::make_host_span(counts));
#if defined(GPUKIT_HAVE_MPFR)
  // fractal deep zooms: deep_zoom.hpp is reached through fractal.hpp where MPFR is.
  gpukit::fractal::deep_scene deep;
  deep.width = 6;
  deep.height = 4;
  deep.pixel_size = "1e-40";
  deep.max_iters = 50;
  gpukit::fractal::escape_time(cpu, deep, gpukit::make_host_span(counts));
#endif

  // io: synthetic.hpp is reached through io.hpp alone.
  const gpukit::io::synthetic_options synthetic;
  if (gpukit::io::epoch_order(synthetic.train_per_class, synthetic.seed, 0).size() != synthetic.train_per_class)
    return fail("gpukit::io::epoch_order");

  // nn
  nn::sequential<gpukit::cpu_executor> model(cpu, 1, 2, 2);
  model.add(nn::flatten{}).add(nn::dense(4, 1)).add(nn::sigmoid{});
  model.compile(2, nn::binary_crossentropy{}, nn::sgd{0.1f}, 1);
  const auto x = nn::host_tensor<float>::from_host({2, 1, 2, 2}, {0, 1, 0, 1, 1, 0, 1, 0});
  const auto y = nn::host_tensor<float>::from_host({2, 1, 1, 1}, {1, 0});
  if (!(model.train_step(x, y) > 0.0f)) return fail("gpukit::nn::sequential::train_step");

  // train
  if (gpukit::train::architecture_json(model).empty()) return fail("gpukit::train::architecture_json");
  const gpukit::train::augment_options augment;
  (void)augment;

  std::printf("gpukit_header_check: ok\n");
  return 0;
}
