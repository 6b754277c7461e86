// GPU code of every gpukit layer in a user's program, built for whatever CUDA architectures
// the project gets (package.default_arch: CMake's default, none given). With a GPU each
// result is compared with the CPU path; without one the program only says it was built.
#include <gpukit/gpukit.cuh>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace nn = gpukit::nn;

namespace {

int failed(const char* what) {
  std::fprintf(stderr, "consumer_layers: %s differs from the CPU\n", what);
  return 1;
}

bool close(double a, double b) { return std::fabs(a - b) <= 1e-4 * std::fmax(1.0, std::fabs(b)); }

template <class Exec>
nn::sequential<Exec> small_cnn(const Exec& exec, std::size_t batch) {
  nn::sequential<Exec> m(exec, 3, 16, 16);
  m.add(nn::conv2d(3, 8, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m.add(nn::dense(8 * 7 * 7, 16)).add(nn::relu{}).add(nn::dense(16, 1)).add(nn::sigmoid{});
  m.compile(batch, nn::binary_crossentropy{}, nn::adam{}, 7);
  return m;
}

}  // namespace

int main() {
  if (!gpukit::is_cuda_available()) {
    std::printf("consumer_layers: no GPU, built fine\n");
    return 0;
  }
  gpukit::stream s;
  const gpukit::cuda_executor gpu(s.view());
  const gpukit::cpu_executor cpu;

  // ops
  const std::vector<float> a{1, 2, 3, 4}, b{10, 20, 30, 40};
  auto da = gpukit::device_buffer<float>::from_host(a, s.view()), db = gpukit::device_buffer<float>::from_host(b, s.view());
  gpukit::device_buffer<float> dsum(a.size(), s.view());
  gpukit::add(gpu, da.span(), db.span(), dsum.span());
  if (dsum.to_host(s.view()) != std::vector<float>{11, 22, 33, 44}) return failed("gpukit::add");

  // fractal
  gpukit::fractal::scene scene;
  scene.view = gpukit::fractal::bounds_view(-2.0, 1.0, -1.0, 1.0, 96, 64);
  std::vector<std::uint8_t> counts(96 * 64);
  gpukit::fractal::escape_time(cpu, scene, gpukit::make_host_span(counts));
  gpukit::device_buffer<std::uint8_t> dcounts(counts.size(), s.view());
  gpukit::fractal::escape_time(gpu, scene, dcounts.span());
  if (dcounts.to_host(s.view()) != counts) return failed("gpukit::fractal::escape_time");

  // io (host only) orders the images; train augments them on both sides.
  const std::size_t batch = 4, side = 16;
  std::vector<std::uint8_t> images(batch * side * side * 3);
  for (std::size_t i = 0; i < images.size(); ++i) images[i] = static_cast<std::uint8_t>((i * 37) % 251);
  std::vector<std::uint32_t> rows;
  for (std::size_t i : gpukit::io::epoch_order(batch, 3, 0)) rows.push_back(static_cast<std::uint32_t>(i));
  std::vector<gpukit::train::sample_map> maps;
  for (std::size_t i = 0; i < batch; ++i)
    maps.push_back(gpukit::train::make_sample_map(gpukit::train::draw_augmentation({}, 3, 0, i), side, side));
  std::vector<float> x(batch * 3 * side * side);
  gpukit::train::augment_batch(cpu, gpukit::make_host_span(images), side, side, 3, gpukit::make_host_span(rows),
                               gpukit::make_host_span(maps), 1.0f / 255.0f, gpukit::make_host_span(x));
  const auto dimages = gpukit::device_buffer<std::uint8_t>::from_host(images, s.view());
  const auto drows = gpukit::device_buffer<std::uint32_t>::from_host(rows, s.view());
  const auto dmaps = gpukit::device_buffer<gpukit::train::sample_map>::from_host(maps, s.view());
  auto dx = nn::make_tensor(gpu, {batch, 3, side, side});
  gpukit::train::augment_batch(gpu, gpukit::device_span<const std::uint8_t>(dimages.span()), side, side, 3,
                               gpukit::device_span<const std::uint32_t>(drows.span()),
                               gpukit::device_span<const gpukit::train::sample_map>(dmaps.span()), 1.0f / 255.0f,
                               dx.span());
  const std::vector<float> x_gpu = dx.buffer().to_host(s.view());
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!close(x_gpu[i], x[i])) return failed("gpukit::train::augment_batch");

  // nn: one training step of the same model on both sides.
  const std::vector<float> y{1, 0, 0, 1};
  auto on_gpu = small_cnn(gpu, batch);
  auto on_cpu = small_cnn(cpu, batch);
  const auto dy = nn::tensor<float, gpukit::memory_space::device>::from_host({batch, 1, 1, 1}, y, s.view());
  on_gpu.train_step_async(dx, dy);
  const float loss_gpu = on_gpu.last_loss();
  const float loss_cpu = on_cpu.train_step(nn::host_tensor<float>::from_host({batch, 3, side, side}, x),
                                           nn::host_tensor<float>::from_host({batch, 1, 1, 1}, y));
  if (!close(loss_gpu, loss_cpu)) return failed("gpukit::nn::sequential::train_step_async");

  std::printf("consumer_layers: ok (loss %.6f)\n", loss_gpu);
  return 0;
}
