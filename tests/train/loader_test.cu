// The loader: an epoch visits every image exactly once, orders differ between epochs and
// repeat for the same seed, targets are the labels (or their one-hot rows), and the GPU
// loader — images staged per batch or resident on the device — hands the model the same
// batches as the CPU path.
#include "gpukit/gpukit.cuh"
#include "gpukit/train/loader.hpp"
#include "train/train_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

using namespace gpukit;
using gpukit_test::require_throws_naming;

namespace {

const cpu_executor cpu{};

train::image_set view(const train_test::random_images& r) {
  return train::image_set(make_host_span(r.pixels), make_host_span(r.labels), r.width, r.height, r.channels);
}

}  // namespace

TEST_CASE("loader: every image once per epoch, a new order each epoch, the same for the same seed", "[train][loader]") {
  const train_test::random_images r(103, 4, 4, 1);
  const train::image_set set = view(r);
  train::augment_options aug;
  std::vector<std::vector<std::uint32_t>> orders;
  for (std::uint64_t epoch = 0; epoch < 4; ++epoch) {
    const train::epoch_plan plan = train::plan_epoch(set, 42, epoch, true, aug);
    REQUIRE(plan.rows.size() == 103);
    REQUIRE(plan.maps.size() == 103);
    std::vector<std::uint32_t> sorted = plan.rows;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::uint32_t> all(103);
    std::iota(all.begin(), all.end(), 0u);
    REQUIRE(sorted == all);
    // Batches of 10 cover the epoch once; the last holds the remainder of 3.
    CHECK(train::batch_count(103, 10) == 11);
    // Each position's map is its image's draw, whatever position the image lands in.
    for (std::size_t p = 0; p < plan.rows.size(); p += 17) {
      const auto m = train::make_sample_map(train::draw_augmentation(aug, 42, epoch, plan.rows[p]), 4, 4);
      CHECK(std::memcmp(&m, &plan.maps[p], sizeof m) == 0);
    }
    for (const auto& earlier : orders) CHECK(earlier != plan.rows);
    orders.push_back(plan.rows);
  }
  CHECK(train::plan_epoch(set, 42, 2, true, aug).rows == orders[2]);
  CHECK(train::plan_epoch(set, 43, 2, true, aug).rows != orders[2]);
  train::augment_options none;
  none.enabled = false;
  const auto in_order = train::plan_epoch(set, 42, 2, false, none);
  CHECK(in_order.maps.empty());
  for (std::size_t p = 0; p < in_order.rows.size(); ++p) REQUIRE(in_order.rows[p] == p);
}

TEST_CASE("loader: CPU batches are the augmented images of the plan and their targets", "[train][loader]") {
  train_test::random_images r(20, 6, 5, 2);
  for (std::size_t i = 0; i < r.labels.size(); ++i) r.labels[i] = float(i % 3);
  const train::image_set set = view(r);
  train::augment_options aug;
  const train::epoch_plan plan = train::plan_epoch(set, 7, 1, true, aug);
  std::vector<float> x(8 * set.image_bytes()), y(8 * 3), want(8 * set.image_bytes());
  train::load_batch(cpu, set, plan, 16, 4, aug.rescale, host_span<float>(x.data(), 4 * set.image_bytes()),
                    host_span<float>(y.data(), 12), 3);
  train::augment_batch(cpu, set.pixels, 6, 5, 3, host_span<const std::uint32_t>(plan.rows.data() + 16, 4),
                       host_span<const train::sample_map>(plan.maps.data() + 16, 4), aug.rescale,
                       host_span<float>(want.data(), 4 * set.image_bytes()));
  CHECK(std::equal(x.begin(), x.begin() + 4 * 90, want.begin()));
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t k = 0; k < 3; ++k) CHECK(y[i * 3 + k] == (k == std::size_t(r.labels[plan.rows[16 + i]]) ? 1.0f : 0.0f));
  require_throws_naming<std::invalid_argument>(
      [&] {
        train::load_batch(cpu, set, plan, 18, 4, aug.rescale, host_span<float>(x.data(), 4 * 90), host_span<float>(y.data(), 12), 3);
      },
      {"gpukit::train::load_batch", "positions [18, 22)", "20 images"});
  require_throws_naming<std::invalid_argument>(
      [&] { train::detail::check_labels(set, 1, "test", "train"); }, {"'train' has label 2", "image 2", "0 or 1"});
}

TEST_CASE("loader: the GPU loader's batches equal the CPU path's, staged or resident", "[train][loader][gpu]") {
  gpukit::stream stream;
  const cuda_executor gpu(stream.view());
  const train_test::random_images r(77, 16, 12, 3);
  const train::image_set set = view(r);
  const std::size_t b = 10, bytes = set.image_bytes();
  for (auto where : {train::residency::staged, train::residency::device}) {
    train::device_loader in(gpu, set, b, 1, where);
    CHECK(in.resident() == (where == train::residency::device));
    device_buffer<float> x(b * bytes, stream);
    for (bool augment : {true, false}) {
      train::augment_options aug;
      aug.enabled = augment;
      const train::epoch_plan plan = train::plan_epoch(set, 3, 5, true, aug);
      std::vector<float> want_x(b * bytes), want_y(b), got_x(b * bytes), got_y(b);
      const std::size_t batches = train::batch_count(set.count, b);
      in.stage(0, plan, 0, b);
      double worst = 0;
      for (std::size_t k = 0; k < batches; ++k) {
        const int s = int(k % 2);
        const std::size_t first = k * b, count = std::min(b, set.count - first);
        if (k + 1 < batches) in.stage(1 - s, plan, first + b, std::min(b, set.count - first - b));
        in.wait(s);
        in.queue_augment(s, count, aug.rescale, x.span().subspan(0, count * bytes), augment);
        GPUKIT_CUDA_TRY(cudaMemcpyAsync(got_x.data(), x.data(), count * bytes * 4, cudaMemcpyDeviceToHost, stream));
        GPUKIT_CUDA_TRY(cudaMemcpyAsync(got_y.data(), in.targets(s, count).data(), count * 4, cudaMemcpyDeviceToHost, stream));
        in.release(s);
        stream.synchronize();
        train::load_batch(cpu, set, plan, first, count, aug.rescale, host_span<float>(want_x.data(), count * bytes),
                          host_span<float>(want_y.data(), count), 1);
        for (std::size_t i = 0; i < count * bytes; ++i) worst = std::max(worst, double(std::fabs(got_x[i] - want_x[i])));
        REQUIRE(std::equal(got_y.begin(), got_y.begin() + count, want_y.begin()));
      }
      INFO((where == train::residency::device ? "resident" : "staged") << (augment ? ", augmented" : ", rescaled")
                                                                         << ": largest difference " << worst);
      if (augment) {
        CHECK(worst <= 1e-5);
      } else {
        CHECK(worst == 0);
      }
    }
  }
}
