// tests/nn/toy_problem.hpp — a small learnable problem the model must get better at, on
// either executor: 1 x 8 x 8 images of noise with one half brighter, label 1 when the left
// half is the bright one. A conv + pool + dense model with Adam separates them within a
// few dozen steps; the test requires the loss to fall to under half its start and the
// predictions to be mostly right.
#pragma once

#include "nn/nn_support.hpp"

#include <vector>

namespace nn_test {

struct toy_data {
  static constexpr std::size_t samples = 64, side = 8;
  std::vector<float> x, y;
  toy_data() : x(samples * side * side), y(samples) {
    const std::vector<float> noise = random_vector<float>(x.size(), 0.0, 1.0, 71);
    for (std::size_t s = 0; s < samples; ++s) {
      const bool left = (s * 37 + 11) % 7 < 3;
      y[s] = left ? 1.0f : 0.0f;
      for (std::size_t r = 0; r < side; ++r)
        for (std::size_t c = 0; c < side; ++c) {
          const std::size_t i = (s * side + r) * side + c;
          x[i] = noise[i] + ((c < side / 2) == left ? 0.6f : 0.0f);
        }
    }
  }
  shape4 x_shape(std::size_t n = samples) const { return {n, 1, side, side}; }
  shape4 y_shape(std::size_t n = samples) const { return {n, 1, 1, 1}; }
};

template <class Exec>
nn::sequential<Exec> toy_model(const Exec& exec) {
  nn::sequential<Exec> m(exec, 1, toy_data::side, toy_data::side);
  m.add(nn::conv2d(1, 4, 3, 1, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m.add(nn::dense(64, 8)).add(nn::relu{}).add(nn::dense(8, 1)).add(nn::sigmoid{});
  m.compile(toy_data::samples, nn::binary_crossentropy{}, nn::adam{0.01f}, 5);
  return m;
}

/// Trains the toy model for 60 steps of 16 samples with `make(values, shape)` giving tensors
/// of the executor's memory and `read(view)` bringing an output to the host.
template <class Exec, class Make, class Read>
void require_toy_problem_learned(const Exec& exec, Make make, Read read) {
  const toy_data data;
  nn::sequential<Exec> model = toy_model(exec);
  auto x_all = make(data.x, data.x_shape());
  auto y_all = make(data.y, data.y_shape());
  const float first = model.evaluate(x_all, y_all);
  std::vector<decltype(make(data.x, data.x_shape()))> xb, yb;
  constexpr std::size_t batch = 16;
  for (std::size_t b = 0; b < toy_data::samples / batch; ++b) {
    xb.push_back(make(std::vector<float>(data.x.begin() + b * batch * 64, data.x.begin() + (b + 1) * batch * 64),
                      data.x_shape(batch)));
    yb.push_back(make(std::vector<float>(data.y.begin() + b * batch, data.y.begin() + (b + 1) * batch), data.y_shape(batch)));
  }
  float last_step = 0;
  for (int step = 0; step < 60; ++step) last_step = model.train_step(xb[step % xb.size()], yb[step % yb.size()]);
  const float final_loss = model.evaluate(x_all, y_all);
  const std::vector<float> p = read(model.forward(x_all));
  std::size_t right = 0;
  for (std::size_t s = 0; s < toy_data::samples; ++s) right += (p[s] > 0.5f) == (data.y[s] > 0.5f);
  INFO("loss " << first << " -> " << final_loss << " (last step " << last_step << "), " << right << " of 64 right");
  CHECK(std::isfinite(final_loss));
  CHECK(final_loss < 0.5f * first);
  CHECK(right >= 58);
  CHECK(model.steps() == 60);
}

}  // namespace nn_test
