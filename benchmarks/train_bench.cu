// Training the seed CNN from a decoded in-memory cache (8,000 synthetic 64×64 images, the
// size of the article's training set), with the article's augmentation:
//   train_epoch/gpu_device/B   one epoch at batch B (32, 256), the uint8 images resident on
//                              the device: per batch only indices, maps and labels travel
//   train_epoch/gpu_staged/B   the same, each batch's images gathered on the host into
//                              pinned memory and copied on a second stream
//   train_epoch/model_only/B   the peer: the same number of training steps (the step graph
//                              replayed on one fixed batch, the remainder eager) with no data
//                              pipeline at all; the gap to it is what loading, augmenting
//                              and metrics cost
//   train_batches/cpu/32       the CPU fallback: four batches of 32 (a whole epoch takes
//                              seconds); compare images/s with the GPU epochs
//   augment/gpu/256, augment/gpu_rescale/256, augment/cpu/256
//                              the augmentation alone, 256 images gathered from the cache:
//                              bytes are the uint8 read plus the float32 written, next to the
//                              device-to-device copy ceiling; gpu_rescale is the validation
//                              path (no transform)
// Items are images: the table's items/s is images/s. An epoch's time is the device's
// timeline from its first copy to its last step (the host stages batches ahead).
#include "gpukit/gpukit.cuh"
#include "gpukit/io/synthetic.hpp"
#include "gpukit/nn.cuh"
#include "gpukit/train/fit.hpp"
#include "support/harness.hpp"

#include <memory>
#include <mutex>

namespace gpukit_bench {
namespace {

namespace nn = gpukit::nn;
namespace train = gpukit::train;
using gpukit::cpu_executor;
using gpukit::cuda_executor;

constexpr std::size_t per_class = 4000, side = 64, image_bytes = side * side * 3;
constexpr std::size_t augment_images = 256;

/// The synthetic cache, made once per run (a few seconds on 16 cores) and shared.
std::shared_ptr<const gpukit::io::image_cache> cache() {
  static std::once_flag once;
  static std::shared_ptr<const gpukit::io::image_cache> c;
  std::call_once(once, [] {
    c = std::make_shared<const gpukit::io::image_cache>(gpukit::io::make_synthetic_cache(per_class, side, side, 1));
  });
  return c;
}

template <class Exec>
std::shared_ptr<nn::sequential<Exec>> seed_model(const Exec& exec, std::size_t batch) {
  auto m = std::make_shared<nn::sequential<Exec>>(exec, 3, side, side);
  m->add(nn::conv2d(3, 32, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m->add(nn::dense(30752, 128)).add(nn::relu{}).add(nn::dense(128, 1)).add(nn::sigmoid{});
  m->compile(batch, nn::binary_crossentropy{}, nn::adam{}, 1);
  return m;
}

void register_epochs() {
  const double images = 2.0 * per_class;
  for (std::size_t batch : {std::size_t{32}, std::size_t{256}}) {
    for (auto where : {train::residency::device, train::residency::staged}) {
      const char* variant = where == train::residency::device ? "gpu_device" : "gpu_staged";
      add_gpu_case("train_epoch", variant, batch, 0, images, [=](gpukit::stream_view s) {
        const auto data = cache();
        auto model = seed_model(cuda_executor(s), batch);
        train::fit_options o;
        o.batch_size = batch;
        o.verbose = 0;
        o.data = where;
        auto trainer = std::make_shared<train::device_trainer>(*model, *data, o);
        auto epoch = std::make_shared<std::size_t>(0);
        // The trainer's graphs use the model and the cache: keep them alive together.
        return [trainer, epoch, model, data](gpukit::stream_view) { (void)trainer->run_epoch((*epoch)++); };
      });
    }
  }
  for (std::size_t batch : {std::size_t{32}, std::size_t{256}}) {
    add_gpu_case("train_epoch", "model_only", batch, 0, images, [=](gpukit::stream_view s) {
      const cuda_executor exec(s);
      auto model = seed_model(exec, batch);
      std::vector<float> pixels(batch * image_bytes), labels(batch);
      for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(i % 251) / 251.0f;
      for (std::size_t i = 0; i < batch; ++i) labels[i] = static_cast<float>(i % 2);
      auto x = std::make_shared<nn::device_tensor>(nn::device_tensor::from_host({batch, 3, side, side}, pixels, s));
      auto y = std::make_shared<nn::device_tensor>(nn::device_tensor::from_host({batch, 1, 1, 1}, labels, s));
      s.synchronize();
      auto g = std::make_shared<nn::graph>(model->capture_train_step(*x, *y));
      const std::size_t n = 2 * per_class, full = n / batch, rest = n % batch;
      return [=](gpukit::stream_view st) {
        for (std::size_t k = 0; k < full; ++k) g->replay(st);
        if (rest > 0)
          model->train_step_async(nn::device_tensor_view<const float>{x->data(), model->input_shape(rest)},
                                  nn::device_tensor_view<const float>{y->data(), model->output_shape(rest)});
      };
    });
  }
  add_cpu_case("train_batches", "cpu", 32, 0, 4 * 32, [] {
    const auto data = cache();
    auto model = seed_model(cpu_executor{}, 32);
    const train::image_set set = *data;
    auto plan = std::make_shared<train::epoch_plan>(train::plan_epoch(set, 1, 0, true, train::augment_options{}));
    auto x = std::make_shared<nn::host_tensor<float>>(model->input_shape(32));
    auto y = std::make_shared<std::vector<float>>(32);
    return [data, model, set, plan, x, y] {  // set views data
      for (std::size_t k = 0; k < 4; ++k) {
        train::load_batch(model->executor(), set, *plan, k * 32, 32, 1.0f / 255, x->span(), gpukit::make_host_span(*y), 1);
        (void)model->train_step(*x, nn::host_tensor_view<const float>{y->data(), model->output_shape(32)});
      }
    };
  });
}

void register_augment() {
  constexpr std::size_t batch = augment_images;
  const double bytes = static_cast<double>(batch) * image_bytes * (1 + 4);
  const auto plan_for = [](const train::image_set& set) {
    return std::make_shared<train::epoch_plan>(train::plan_epoch(set, 1, 0, true, train::augment_options{}));
  };
  for (bool with_maps : {true, false}) {
    add_gpu_case("augment", with_maps ? "gpu" : "gpu_rescale", batch, bytes, batch, [=](gpukit::stream_view s) {
      const auto data = cache();
      const train::image_set set = *data;
      const auto plan = plan_for(set);
      auto images = std::make_shared<gpukit::device_buffer<std::uint8_t>>(
          gpukit::device_buffer<std::uint8_t>::from_host(std::vector<std::uint8_t>(set.pixels.begin(), set.pixels.end()), s));
      auto rows = std::make_shared<gpukit::device_buffer<std::uint32_t>>(
          gpukit::device_buffer<std::uint32_t>::from_host(std::vector<std::uint32_t>(plan->rows.begin(), plan->rows.begin() + batch), s));
      auto maps = std::make_shared<gpukit::device_buffer<train::sample_map>>(
          gpukit::device_buffer<train::sample_map>::from_host(std::vector<train::sample_map>(plan->maps.begin(), plan->maps.begin() + batch), s));
      auto out = std::make_shared<gpukit::device_buffer<float>>(batch * image_bytes, s);
      s.synchronize();
      return [=](gpukit::stream_view st) {
        train::augment_batch(cuda_executor(st), gpukit::device_span<const std::uint8_t>(images->span()), side, side, 3,
                             gpukit::device_span<const std::uint32_t>(rows->span()),
                             with_maps ? gpukit::device_span<const train::sample_map>(maps->span())
                                       : gpukit::device_span<const train::sample_map>(),
                             1.0f / 255, out->span());
      };
    });
  }
  add_cpu_case("augment", "cpu", batch, bytes, batch, [=] {
    const auto data = cache();
    const train::image_set set = *data;
    const auto plan = plan_for(set);
    auto out = std::make_shared<std::vector<float>>(batch * image_bytes);
    return [data, set, plan, out] {  // set views data
      train::augment_batch(cpu_executor{}, set.pixels, side, side, 3,
                           gpukit::host_span<const std::uint32_t>(plan->rows.data(), augment_images),
                           gpukit::host_span<const train::sample_map>(plan->maps.data(), augment_images), 1.0f / 255,
                           gpukit::make_host_span(*out));
    };
  });
}

}  // namespace

void register_train_cases() {
  register_epochs();
  register_augment();
}

}  // namespace gpukit_bench
