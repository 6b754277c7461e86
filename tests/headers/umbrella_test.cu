// The umbrella header for nvcc on its own: this file includes nothing else from gpukit and
// makes a GPU call of every layer, so an umbrella that loses a layer fails the build. It is
// compiled with -fdevice-syntax-only and linked with the .cuh checks (gpukit_header_check_cuda),
// never run: the device code stops at the front end.
#include <gpukit/gpukit.cuh>

#include <cstdint>
#include <vector>

namespace {

__global__ void fill_kernel(gpukit::device_span<float> v, float value) {
  for (std::size_t i : gpukit::grid_stride_range(v.size())) v[i] = value;
}

}  // namespace

// External linkage: compiled and linked although nothing calls it.
void use_every_layer_on_the_gpu();
void use_every_layer_on_the_gpu() {
  namespace nn = gpukit::nn;
  gpukit::stream s;
  const gpukit::cuda_executor gpu(s.view());

  // core
  gpukit::device_buffer<float> a(64, s.view()), sum(64, s.view());
  gpukit::launch(fill_kernel, gpukit::config_for_elements(a.size(), fill_kernel), s.view(), a.span(), 1.0f);

  // ops
  gpukit::add(gpu, a.span(), a.span(), sum.span());

  // fractal
  gpukit::fractal::scene scene;
  scene.view = gpukit::fractal::bounds_view(-2.0, 1.0, -1.0, 1.0, 8, 8);
  gpukit::device_buffer<std::uint8_t> counts(64, s.view());
  gpukit::fractal::escape_time(gpu, scene, counts.span());

  // nn
  nn::tensor<float, gpukit::memory_space::device> t = nn::make_tensor(gpu, {1, 1, 8, 8});

  // train: one 8 x 8 gray image, rescaled into t.
  gpukit::device_buffer<std::uint8_t> images(64, s.view(), gpukit::zero_init);
  const auto rows = gpukit::device_buffer<std::uint32_t>::from_host(std::vector<std::uint32_t>{0}, s.view());
  gpukit::train::augment_batch(gpu, gpukit::device_span<const std::uint8_t>(images.span()), 8, 8, 1,
                               gpukit::device_span<const std::uint32_t>(rows.span()),
                               gpukit::device_span<const gpukit::train::sample_map>{}, 1.0f / 255.0f, t.span());

  s.synchronize();
}

int main() { return 0; }
