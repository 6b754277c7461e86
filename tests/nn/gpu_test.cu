// The GPU path against the CPU path. Tolerance: relative error ≤ 1e-4 in float32, measured
// against the largest magnitude of the reference tensor (nn_support.hpp), for every layer,
// forward and backward; the CPU reference runs in double. No layer uses TF32: the conv and
// dense kernels are FP32 FMA throughout, so the same 1e-4 bar holds for all of them. The
// shapes reach every GPU path: the general kernels and the fast ones (3x3 stride-1 conv
// blocks, first-layer weight gradients, split-K and single-block dense products, the fused
// dense backward pass, the loss fused with the last layer, Adam fused into the backward pass).
//
// Where a max-pool decides between near-equal values, float and double may pick different
// winners; the tests then require the GPU's pick to be a maximum of the double reference,
// and check the backward pass given the GPU's own forward results (its y and argmax).
#include "nn/reference.hpp"
#include "nn/toy_problem.hpp"

#include <curand_kernel.h>

#include <cmath>
#include <limits>

using namespace nn_test;
using gpukit::cuda_executor;
using gpukit::memory_space;

namespace gpu_test_kernels {
/// cuRAND's Philox4_32_10: curand_init(seed, subsequence, offset) then curand4(), per case.
__global__ void curand_philox_blocks(const unsigned long long* seeds, const unsigned long long* steps,
                                     const unsigned long long* groups, uint4* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  curandStatePhilox4_32_10_t state;
  curand_init(seeds[i], steps[i], 4 * groups[i], &state);
  out[i] = curand4(&state);
}
}  // namespace gpu_test_kernels

namespace {

constexpr double tolerance = 1e-4;
const gpukit::cpu_executor cpu{};

struct gpu {
  gpukit::stream stream;
  cuda_executor exec{stream.view()};
  template <class T>
  nn::tensor<T, memory_space::device> upload(const std::vector<T>& v, shape4 s) const {
    auto t = nn::tensor<T, memory_space::device>::from_host(s, v, stream.view());
    stream.synchronize();
    return t;
  }
  template <class T>
  nn::tensor<T, memory_space::device> zeros(shape4 s) const {
    return upload(std::vector<T>(s.size(), T(0)), s);
  }
  template <class T, memory_space S>
  std::vector<double> download(gpukit::span<T, S> s) const {
    std::vector<std::remove_const_t<T>> host(s.size());
    gpukit::transfer(gpukit::make_host_span(host), gpukit::span<const std::remove_const_t<T>, S>(s), stream.view());
    return std::vector<double>(host.begin(), host.end());
  }
  template <class T>
  std::vector<double> download(nn::device_tensor_view<T> v) const {
    return download(v.span());
  }
};

template <class T>
std::vector<T> rounded_to_float(const std::vector<double>& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<T>(static_cast<float>(v[i]));
  return out;
}

TEST_CASE("conv2d blocks on the GPU agree with the CPU (double) forward and backward", "[gpu][nn][conv2d]") {
  gpu g;
  std::vector<conv_case> cases = conv_cases();
  using nn::activation;
  cases.push_back({2, 3, 64, 64, 32, {3, 3}, 1, 0, activation::relu, nn::maxpool2d(2)});  // the seed's conv, batch 2
  cases.push_back({3, 16, 17, 19, 24, {3, 3}, 2, 1, activation::tanh, std::nullopt});
  cases.push_back({1, 5, 33, 31, 9, {5, 5}, 3, 0, activation::none, nn::maxpool2d(3, 2)});
  cases.push_back({4, 3, 20, 20, 8, {3, 3}, 1, 1, activation::sigmoid, nn::maxpool2d(2)});
  cases.push_back({1, 64, 9, 9, 16, {3, 3}, 1, 1, activation::relu, std::nullopt});  // input channels in chunks
  cases.push_back({2, 3, 12, 10, 40, {3, 3}, 1, 1, activation::relu, nn::maxpool2d(2)});  // channel groups in part
  cases.push_back({3, 2, 8, 9, 20, {3, 3}, 1, 0, activation::tanh, std::nullopt});
  for (const conv_case& c : cases) {
    CAPTURE(c.name());
    const nn::conv_block block = c.block();
    const std::vector<float> x = random_vector<float>(c.in().size(), -1, 1, 201);
    const std::vector<float> w = random_vector<float>(c.weights(), -0.5, 0.5, 202);
    const std::vector<float> b = random_vector<float>(c.oc, -0.2, 0.2, 203);
    const std::vector<float> dy = random_vector<float>(c.out().size(), -1, 1, 204);
    const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);

    std::vector<double> y_ref(c.out().size());
    std::vector<std::int32_t> argmax_ref(c.out().size());
    nn::conv2d_block_forward(cpu, block, view(xd, c.in()), wd, bd, view(y_ref, c.out()), view(argmax_ref, c.out()));

    auto gx = g.upload(x, c.in()), gw = g.upload(w, {c.weights(), 1, 1, 1}), gb = g.upload(b, {c.oc, 1, 1, 1});
    auto gy = g.zeros<float>(c.out());
    auto gargmax = g.zeros<std::int32_t>(c.out());
    nn::conv2d_block_forward(g.exec, block, gx, gw.span(), gb.span(), gy, gargmax);
    const std::vector<double> y = g.download(gy.span());
    require_relative(y, y_ref, tolerance, "y");

    std::vector<std::int32_t> argmax(c.out().size());
    {
      const std::vector<double> a = g.download(gargmax.span());
      for (std::size_t i = 0; i < a.size(); ++i) argmax[i] = static_cast<std::int32_t>(a[i]);
    }
    if (c.pool) {  // the GPU's pick lies in the window and is a maximum of the reference
      const std::vector<double> z = reference_conv(c, xd, wd, bd, false);
      const shape4 co = c.conv_out(), po = c.out();
      double scale = 1e-30;
      for (double v : y_ref) scale = std::max(scale, std::fabs(v));
      std::size_t same = 0;
      for (std::size_t i = 0; i < argmax.size(); ++i) {
        const std::size_t plane = i / (po.h * po.w), py = (i / po.w) % po.h, px = i % po.w;
        const std::size_t row = static_cast<std::uint32_t>(argmax[i]) >> 16, col = argmax[i] & 0xffff;
        REQUIRE(row >= py * c.pool->stride.h);
        REQUIRE(row < py * c.pool->stride.h + c.pool->window.h);
        REQUIRE(col >= px * c.pool->stride.w);
        REQUIRE(col < px * c.pool->stride.w + c.pool->window.w);
        REQUIRE(std::fabs(z[(plane * co.h + row) * co.w + col] - y_ref[i]) <= tolerance * scale);
        same += argmax[i] == argmax_ref[i];
      }
      CHECK(same * 100 >= argmax.size() * 99);
    }

    // Backward, the reference given the GPU's forward results.
    std::vector<double> dw_ref(w.size(), 0.0), db_ref(b.size(), 0.0), dx_ref(x.size());
    nn::conv2d_block_backward(cpu, block, view(xd, c.in()), wd, view(y, c.out()), view(argmax, c.out()),
                              view(dyd, c.out()), dw_ref, db_ref, view(dx_ref, c.in()));
    auto gdy = g.upload(dy, c.out());
    auto gdw = g.zeros<float>({c.weights(), 1, 1, 1}), gdb = g.zeros<float>({c.oc, 1, 1, 1});
    auto gdx = g.upload(std::vector<float>(x.size(), 9.0f), c.in());
    nn::conv2d_block_backward(g.exec, block, gx, gw.span(), gy, gargmax, gdy, gdw.span(), gdb.span(), gdx);
    const std::vector<double> dw = g.download(gdw.span()), db = g.download(gdb.span());
    require_relative(g.download(gdx.span()), dx_ref, tolerance, "dx");
    require_relative(dw, dw_ref, tolerance, "dw");
    require_relative(db, db_ref, tolerance, "db");

    // Accumulation, and the same parameter gradients without the input gradient.
    nn::conv2d_block_backward(g.exec, block, gx, gw.span(), gy, gargmax, gdy, gdw.span(), gdb.span(), nn::no_grad);
    std::vector<double> twice = dw;
    for (double& v : twice) v *= 2;
    require_relative(g.download(gdw.span()), twice, 1e-6, "dw after a second backward");
  }
}

TEST_CASE("maxpool2d on the GPU equals the CPU", "[gpu][nn][maxpool2d]") {
  gpu g;
  std::vector<pool_case> cases = pool_cases();
  cases.push_back({{32, 32, 62, 62}, nn::maxpool2d(2)});
  cases.push_back({{3, 5, 40, 33}, nn::maxpool2d(3, 1)});
  cases.push_back({{4, 8, 32, 32}, nn::maxpool2d(2)});     // backward four inputs per thread
  cases.push_back({{2, 3, 17, 20}, nn::maxpool2d(3, 2)});  // the same with overlapping windows
  for (const pool_case& c : cases) {
    CAPTURE(nn::to_string(c.in), nn::to_string(c.pool.window), nn::to_string(c.pool.stride));
    const std::vector<float> x = random_vector<float>(c.in.size(), -1, 1, 211), dy = random_vector<float>(c.out().size(), -1, 1, 212);
    std::vector<float> y(c.out().size()), dx(x.size());
    std::vector<std::int32_t> argmax(y.size());
    nn::maxpool2d_forward(cpu, c.pool, view(x, c.in), view(y, c.out()), view(argmax, c.out()));
    nn::maxpool2d_backward(cpu, c.pool, view(dy, c.out()), view(argmax, c.out()), view(dx, c.in));
    auto gx = g.upload(x, c.in), gy = g.zeros<float>(c.out()), gdy = g.upload(dy, c.out());
    auto ga = g.zeros<std::int32_t>(c.out());
    auto gdx = g.upload(std::vector<float>(x.size(), 4.0f), c.in);
    nn::maxpool2d_forward(g.exec, c.pool, gx, gy, ga);
    nn::maxpool2d_backward(g.exec, c.pool, gdy, ga, gdx);
    CHECK(g.download(gy.span()) == to_double(y));
    std::vector<double> a(argmax.begin(), argmax.end());
    CHECK(g.download(ga.span()) == a);
    CHECK(g.download(gdx.span()) == to_double(dx));  // both gather in row-major window order
  }
}

/// The error of the lanes-per-output forward against the double reference, for terms of
/// magnitude <= 1: each lane adds at most `terms` values in float (recursive summation:
/// (terms - 1)·u times the terms' magnitudes), each of the log2(lanes) shuffle levels rounds
/// once, the division once more; the mean divides the magnitudes by the area, so the bound
/// is absolute (a mean can be ~0). u = 2^-24.
double avgpool_lanes_bound(const nn::avgpool_path& p, long long area) {
  const long long per_round = static_cast<long long>(p.lanes) * p.forward_vector;
  const long long terms = (area + per_round - 1) / per_round * p.forward_vector;
  return (static_cast<double>(terms) + std::log2(static_cast<double>(p.lanes)) + 1) * 0x1p-24;
}

TEST_CASE("avgpool2d and global_avgpool2d on the GPU equal the CPU", "[gpu][nn][avgpool2d]") {
  gpu g;
  std::vector<avgpool_case> cases = avgpool_cases();
  cases.push_back({{32, 32, 62, 62}, nn::avgpool2d(2)});
  cases.push_back({{3, 5, 40, 33}, nn::avgpool2d(3, 1)});
  cases.push_back({{256, 64, 8, 8}, nn::avgpool2d(8)});                                              // global, 64 elements
  cases.push_back({{2, 3, 70, 45}, nn::avgpool2d(nn::kernel_size{70, 45}, nn::kernel_size{70, 45})});  // global, 3150
  cases.push_back({{4, 8, 32, 32}, nn::avgpool2d(2)});                                               // back 4 per thread
  cases.push_back({{2, 3, 17, 20}, nn::avgpool2d(3, 2)});                                            // and overlapping
  cases.push_back({{2, 3, 16, 32}, nn::avgpool2d(nn::kernel_size{4, 8}, nn::kernel_size{4, 8})});  // lanes, not rows
  cases.push_back({{3, 2, 12, 8}, nn::avgpool2d(nn::kernel_size{6, 8}, nn::kernel_size{3, 8})});     // overlapping runs
  for (const avgpool_case& c : cases) {
    CAPTURE(nn::to_string(c.in), nn::to_string(c.pool.window), nn::to_string(c.pool.stride));
    const std::vector<float> x = random_vector<float>(c.in.size(), -1, 1, 213), dy = random_vector<float>(c.out().size(), -1, 1, 214);
    std::vector<float> y(c.out().size()), dx(x.size());
    nn::avgpool2d_forward(cpu, c.pool, view(x, c.in), view(y, c.out()));
    nn::avgpool2d_backward(cpu, c.pool, view(dy, c.out()), view(dx, c.in));
    auto gx = g.upload(x, c.in), gy = g.zeros<float>(c.out()), gdy = g.upload(dy, c.out());
    auto gdx = g.upload(std::vector<float>(x.size(), 4.0f), c.in);
    nn::avgpool2d_forward(g.exec, c.pool, gx, gy);
    nn::avgpool2d_backward(g.exec, c.pool, gdy, gdx);
    const nn::avgpool_path path = nn::choose_avgpool_path(
        nn::detail::make_avgpool_geometry(c.pool, c.in, "test"), nn::path_target::current_gpu());
    CAPTURE(path.describe());
    if (path.kernel == nn::avgpool_kernel::lanes_per_output) {
      const std::vector<double> ref = reference_avgpool(c, x), got = g.download(gy.span());
      const double bound = avgpool_lanes_bound(path, static_cast<long long>(c.pool.window.h * c.pool.window.w));
      for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(std::fabs(got[i] - ref[i]) <= bound);
    } else {
      CHECK(g.download(gy.span()) == to_double(y));  // one thread per output adds as the CPU does
    }
    CHECK(g.download(gdx.span()) == to_double(dx));  // one thread per input, the CPU's function
  }
  // The global layer's entry points take the same paths.
  const shape4 in{5, 7, 6, 6}, out{5, 7, 1, 1};
  const std::vector<float> x = random_vector<float>(in.size(), -1, 1, 215), dy = random_vector<float>(out.size(), -1, 1, 216);
  std::vector<float> y(out.size()), dx(x.size());
  nn::global_avgpool2d_forward(cpu, view(x, in), view(y, out));
  nn::global_avgpool2d_backward(cpu, view(dy, out), view(dx, in));
  auto gx = g.upload(x, in), gy = g.zeros<float>(out), gdy = g.upload(dy, out), gdx = g.zeros<float>(in);
  nn::global_avgpool2d_forward(g.exec, gx, gy);
  nn::global_avgpool2d_backward(g.exec, gdy, gdx);
  const avgpool_case as_window{in, nn::avgpool2d(6)};
  const nn::avgpool_path path =
      nn::choose_avgpool_path(nn::detail::make_avgpool_geometry(as_window.pool, in, "test"), nn::path_target::current_gpu());
  REQUIRE(path.kernel == nn::avgpool_kernel::lanes_per_output);  // 36 elements
  const std::vector<double> got = g.download(gy.span()), ref = reference_avgpool(as_window, x);
  for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(std::fabs(got[i] - ref[i]) <= avgpool_lanes_bound(path, 36));
  CHECK(g.download(gdx.span()) == to_double(dx));
}

TEST_CASE("dropout's Philox4x32-10 is cuRAND's, and the GPU draws the CPU's masks", "[gpu][nn][dropout]") {
  gpu g;
  // The generator: our counter (group, step) under key (seed) against cuRAND's
  // subsequence = step, offset = 4 * group.
  std::vector<unsigned long long> seeds, steps, groups;
  for (unsigned long long k = 0; k < 64; ++k) {
    seeds.push_back(0x9E3779B97F4A7C15ull * (k + 1));
    steps.push_back(k < 8 ? k : k * 0x100000001ull);
    groups.push_back(k * 977 + (k > 32 ? (1ull << 33) : 0));
  }
  const int n = static_cast<int>(seeds.size());
  gpukit::device_buffer<unsigned long long> ds(seeds.size(), g.stream.view()), dt(steps.size(), g.stream.view()),
      dg(groups.size(), g.stream.view());
  ds.copy_from_host(seeds, g.stream.view());
  dt.copy_from_host(steps, g.stream.view());
  dg.copy_from_host(groups, g.stream.view());
  gpukit::device_buffer<uint4> dout(seeds.size(), g.stream.view());
  gpu_test_kernels::curand_philox_blocks<<<1, 64, 0, g.stream.view().value()>>>(ds.data(), dt.data(), dg.data(), dout.data(), n);
  std::vector<uint4> got(seeds.size());
  dout.copy_to_host(gpukit::make_host_span(got), g.stream.view());
  for (int i = 0; i < n; ++i) {
    const auto r = nn::detail::philox4x32_10(static_cast<std::uint32_t>(groups[i]), static_cast<std::uint32_t>(groups[i] >> 32),
                                             static_cast<std::uint32_t>(steps[i]), static_cast<std::uint32_t>(steps[i] >> 32),
                                             static_cast<std::uint32_t>(seeds[i]), static_cast<std::uint32_t>(seeds[i] >> 32));
    CAPTURE(i);
    REQUIRE((r.w[0] == got[i].x && r.w[1] == got[i].y && r.w[2] == got[i].z && r.w[3] == got[i].w));
  }

  // The layer: GPU equals CPU bit for bit, 16-byte path and element path.
  for (const shape4 s : {shape4{3, 5, 7, 11}, shape4{64, 32, 8, 8}}) {
    CAPTURE(nn::to_string(s));
    const nn::dropout layer(0.3f);
    const nn::dropout_key key{77, 3, 12345678901ull};
    const std::vector<float> x = random_vector<float>(s.size(), -1, 1, 217), dy = random_vector<float>(s.size(), -1, 1, 218);
    std::vector<float> y(x.size()), dx(x.size());
    nn::dropout_forward(cpu, layer, key, view(x, s), view(y, s));
    nn::dropout_backward(cpu, layer, key, view(dy, s), view(dx, s));
    auto gx = g.upload(x, s), gy = g.zeros<float>(s), gdy = g.upload(dy, s), gdx = g.zeros<float>(s);
    nn::dropout_forward(g.exec, layer, key, gx, gy);
    nn::dropout_backward(g.exec, layer, key, gdy, gdx);
    CHECK(g.download(gy.span()) == to_double(y));
    CHECK(g.download(gdx.span()) == to_double(dx));
  }
}

TEST_CASE("dropout in a captured training step draws a fresh mask at every replay, as the eager steps do",
          "[gpu][nn][dropout]") {
  gpu g;
  const auto build = [&](const auto& exec) {
    using Exec = std::decay_t<decltype(exec)>;
    nn::sequential<Exec> m(exec, 10, 1, 1);
    m.add(nn::dense(10, 64)).add(nn::relu{}).add(nn::dropout(0.4f)).add(nn::dense(64, 2));
    m.compile(8, nn::mean_squared_error{}, nn::sgd{0.05f}, 21);
    return m;
  };
  const shape4 xs{8, 10, 1, 1}, ys{8, 2, 1, 1};
  const std::vector<float> x = random_vector<float>(xs.size(), -1, 1, 219), y = random_vector<float>(ys.size(), -1, 1, 220);
  auto on_cpu = build(cpu);
  auto eager = build(g.exec);
  auto replayed = build(g.exec);
  auto gx = g.upload(x, xs), gy = g.upload(y, ys);
  nn::graph step = replayed.capture_train_step(gx, gy);
  std::vector<double> last;
  for (int k = 0; k < 3; ++k) {
    const float cpu_loss = on_cpu.train_step(view(x, xs), view(y, ys));
    const float eager_loss = eager.train_step(gx, gy);
    step.replay(g.stream.view());
    const float replay_loss = replayed.last_loss();
    CAPTURE(k, cpu_loss, eager_loss, replay_loss);
    CHECK(eager_loss == replay_loss);  // the same kernels and masks
    CHECK(std::fabs(eager_loss - cpu_loss) <= 1e-5f * std::max(1.0f, std::fabs(cpu_loss)));
    const std::vector<double> out = g.download(replayed.last_output().span());
    CHECK(out != last);
    last = out;
  }
  CHECK(replayed.dropout_step() == 3);
  CHECK(eager.dropout_step() == 3);
  CHECK(on_cpu.dropout_step() == 3);
  CHECK(g.download(replayed.parameters()) == g.download(eager.parameters()));
}

TEST_CASE("softmax on the GPU equals the CPU's per-pixel function within the exponential's rounding",
          "[gpu][nn][softmax]") {
  gpu g;
  for (const shape4 s : {shape4{257, 10, 1, 1}, shape4{3, 7, 5, 9}, shape4{2, 1000, 1, 1}}) {
    CAPTURE(nn::to_string(s));
    const std::vector<float> x = random_vector<float>(s.size(), -8, 8, 231), dy = random_vector<float>(s.size(), -1, 1, 232);
    std::vector<float> y(x.size()), dx(x.size());
    nn::softmax_forward(cpu, view(x, s), view(y, s));
    nn::softmax_backward(cpu, view(y, s), view(dy, s), view(dx, s));
    auto gx = g.upload(x, s), gy = g.zeros<float>(s), gdy = g.upload(dy, s), gdx = g.zeros<float>(s);
    nn::softmax_forward(g.exec, gx, gy);
    nn::softmax_backward(g.exec, gy, gdy, gdx);
    // expf on the device and std::exp on the host may differ by an ulp or two.
    require_relative(g.download(gy.span()), to_double(y), 1e-6, "y");
    require_relative(g.download(gdx.span()), to_double(dx), 1e-5, "dx");
  }
}

TEST_CASE("dense on the GPU agrees with the CPU (double) at every tiling, the seed's shapes included", "[gpu][nn][dense]") {
  gpu g;
  using nn::activation;
  const dense_case cases[] = {{1, 7, 5, activation::none},      {3, 2000, 17, activation::relu},
                              {33, 300, 70, activation::sigmoid}, {64, 4096, 96, activation::tanh},
                              {5, 1, 3, activation::none},       {2, 64, 1, activation::none},
                              {32, 30752, 128, activation::relu}, {32, 128, 1, activation::sigmoid},
                              {256, 30752, 128, activation::relu}, {1, 30752, 128, activation::relu},
                              {70, 2048, 128, activation::none},   {40, 1001, 150, activation::relu},
                              {48, 520, 96, activation::leaky_relu(0.2f)}};
  for (const dense_case& c : cases) {
    CAPTURE(c.n, c.in, c.out, nn::activation_name(c.act));
    const nn::dense layer(c.in, c.out);
    const shape4 xs{c.n, c.in, 1, 1}, ys{c.n, c.out, 1, 1};
    const std::vector<float> x = random_vector<float>(xs.size(), -1, 1, 221), w = random_vector<float>(c.in * c.out, -0.1, 0.1, 222);
    const std::vector<float> b = random_vector<float>(c.out, -0.3, 0.3, 223), dy = random_vector<float>(ys.size(), -1, 1, 224);
    const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);

    auto gx = g.upload(x, xs), gw = g.upload(w, {w.size(), 1, 1, 1}), gb = g.upload(b, {c.out, 1, 1, 1});
    auto gy = g.zeros<float>(ys), gpre = g.zeros<float>(ys);
    nn::dense_forward(g.exec, layer, gx, gw.span(), gb.span(), gy, c.act, gpre);
    const std::vector<double> y = g.download(gy.span());
    std::vector<double> y_ref(ys.size()), pre_ref(ys.size());
    nn::dense_forward(cpu, layer, view(xd, xs), wd, bd, view(y_ref, ys), c.act, view(pre_ref, ys));
    require_relative(y, y_ref, tolerance, "y");
    require_relative(g.download(gpre.span()), pre_ref, tolerance, "pre-activation");

    std::vector<double> dw_ref(w.size(), 0.0), db_ref(b.size(), 0.0), dx_ref(x.size());
    nn::dense_backward(cpu, layer, view(xd, xs), wd, view(y, ys), view(dyd, ys), dw_ref, db_ref, view(dx_ref, xs), c.act);
    auto gdy = g.upload(dy, ys), gdx = g.zeros<float>(xs);
    auto gdw = g.zeros<float>({w.size(), 1, 1, 1}), gdb = g.zeros<float>({c.out, 1, 1, 1});
    nn::dense_backward(g.exec, layer, gx, gw.span(), gy, gdy, gdw.span(), gdb.span(), gdx, c.act);
    require_relative(g.download(gdx.span()), dx_ref, tolerance, "dx");
    require_relative(g.download(gdw.span()), dw_ref, tolerance, "dw");
    require_relative(g.download(gdb.span()), db_ref, tolerance, "db");
  }
}

TEST_CASE("a GELU in a conv block or a dense layer on the GPU: the product, then a pass of it, as the CPU",
          "[gpu][nn][conv2d][dense][activation]") {
  gpu g;
  using nn::activation;
  SECTION("conv blocks, the pool after the GELU") {
    const conv_case cases[] = {{2, 3, 20, 18, 32, {3, 3}, 1, 0, activation::gelu, nn::maxpool2d(2)},  // 27 taps
                               {3, 16, 17, 19, 24, {3, 3}, 2, 1, activation::gelu_tanh, std::nullopt},
                               {2, 8, 12, 12, 16, {3, 3}, 1, 1, activation::gelu, nn::maxpool2d(3, 2)}};
    for (const conv_case& c : cases) {
      CAPTURE(c.name());
      const std::vector<float> x = random_vector<float>(c.in().size(), -1, 1, 261);
      const std::vector<float> w = random_vector<float>(c.weights(), -0.5, 0.5, 262);
      const std::vector<float> b = random_vector<float>(c.oc, -0.2, 0.2, 263);
      const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b);
      std::vector<double> y_ref(c.out().size());
      std::vector<std::int32_t> argmax_ref(c.out().size());
      nn::conv2d_block_forward(cpu, c.block(), view(xd, c.in()), wd, bd, view(y_ref, c.out()), view(argmax_ref, c.out()));
      auto gx = g.upload(x, c.in()), gw = g.upload(w, {c.weights(), 1, 1, 1}), gb = g.upload(b, {c.oc, 1, 1, 1});
      auto gy = g.zeros<float>(c.out());
      auto gargmax = g.zeros<std::int32_t>(c.out());
      nn::conv2d_block_forward(g.exec, c.block(), gx, gw.span(), gb.span(), gy, gargmax);
      require_relative(g.download(gy.span()), y_ref, tolerance, "y");
    }
  }
  SECTION("dense layers on each forward kernel, pre-activations kept") {
    const dense_case cases[] = {{3, 20, 5, activation::gelu},          // one block
                                {8, 5000, 64, activation::gelu_tanh},  // split-K
                                {40, 1001, 150, activation::gelu}};    // implicit GEMM
    for (const dense_case& c : cases) {
      CAPTURE(c.n, c.in, c.out, nn::activation_name(c.act));
      const nn::dense layer(c.in, c.out);
      const shape4 xs{c.n, c.in, 1, 1}, ys{c.n, c.out, 1, 1};
      const std::vector<float> x = random_vector<float>(xs.size(), -1, 1, 264);
      const std::vector<float> w = random_vector<float>(c.in * c.out, -0.1, 0.1, 265);
      const std::vector<float> b = random_vector<float>(c.out, -0.3, 0.3, 266);
      const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b);
      std::vector<double> y_ref(ys.size()), pre_ref(ys.size());
      nn::dense_forward(cpu, layer, view(xd, xs), wd, bd, view(y_ref, ys), c.act, view(pre_ref, ys));
      auto gx = g.upload(x, xs), gw = g.upload(w, {w.size(), 1, 1, 1}), gb = g.upload(b, {c.out, 1, 1, 1});
      auto gy = g.zeros<float>(ys), gpre = g.zeros<float>(ys);
      nn::dense_forward(g.exec, layer, gx, gw.span(), gb.span(), gy, c.act, gpre);
      require_relative(g.download(gy.span()), y_ref, tolerance, "y");
      require_relative(g.download(gpre.span()), pre_ref, tolerance, "pre-activation");
    }
  }
}

TEST_CASE("activation layers and losses on the GPU agree with the CPU", "[gpu][nn][activation][loss]") {
  gpu g;
  const shape4 s{37, 3, 1, 1};
  const std::vector<float> x = random_vector<float>(s.size(), -5, 5, 231), dy = random_vector<float>(s.size(), -1, 1, 232);
  const nn::activation acts[] = {nn::activation::relu, nn::activation::sigmoid, nn::activation::tanh,
                                 nn::activation::leaky_relu(0.1f), nn::activation::gelu, nn::activation::gelu_tanh};
  for (const nn::activation act : acts) {
    CAPTURE(nn::activation_name(act));
    std::vector<double> xd = to_double(x), y(s.size()), dx(s.size());
    nn::activation_forward(cpu, act, view(xd, s), view(y, s));
    const std::vector<double> dyd = to_double(dy);
    auto gx = g.upload(x, s), gy = g.zeros<float>(s), gdy = g.upload(dy, s), gdx = g.zeros<float>(s);
    nn::activation_forward(g.exec, act, gx, gy);
    const std::vector<double> yg = g.download(gy.span());
    require_relative(yg, y, 1e-6, "y");
    if (nn::slope_from_output(act)) {
      nn::activation_backward(cpu, act, view(yg, s), view(dyd, s), view(dx, s));
      nn::activation_backward(g.exec, act, gy, gdy, gdx);
      require_relative(g.download(gdx.span()), dx, 1e-6, "dx");
    }
    nn::activation_backward_at_input(cpu, act, view(xd, s), view(dyd, s), view(dx, s));
    nn::activation_backward_at_input(g.exec, act, gx, gdy, gdx);
    require_relative(g.download(gdx.span()), dx, 1e-6, "dx at the input");
  }
  std::vector<float> labels(s.size()), one_hot(s.size(), 0.0f);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = (i * 5 + 1) % 3 == 0 ? 1.0f : 0.0f;
  for (std::size_t r = 0; r < s.n; ++r) one_hot[r * 3 + (r * 7) % 3] = 1.0f;
  const std::vector<float> probs = random_vector<float>(s.size(), 0.02, 0.98, 233);
  const std::pair<nn::loss, std::pair<const std::vector<float>*, const std::vector<float>*>> cases[] = {
      {nn::binary_crossentropy{}, {&probs, &labels}},
      {nn::binary_crossentropy_with_logits{}, {&x, &labels}},
      {nn::mean_squared_error{}, {&x, &probs}},
      {nn::softmax_crossentropy{}, {&x, &one_hot}}};
  for (const auto& [l, io] : cases) {
    CAPTURE(nn::loss_name(l));
    const std::vector<double> pd = to_double(*io.first), td = to_double(*io.second);
    std::vector<double> grad(s.size());
    const double want = nn::loss_and_gradient(cpu, l, view(pd, s), view(td, s), view(grad, s));
    auto gp = g.upload(*io.first, s), gt = g.upload(*io.second, s), gg = g.zeros<float>(s);
    const float got = nn::loss_and_gradient(g.exec, l, gp, gt, gg);
    CHECK(got == Approx(want).epsilon(1e-5));
    require_relative(g.download(gg.span()), grad, 1e-5, "gradient");
  }
}

TEST_CASE("Adam and SGD on the GPU follow their formulas, vectorised or not", "[gpu][nn][optimizer]") {
  gpu g;
  for (const std::size_t offset : {std::size_t{0}, std::size_t{1}}) {  // offset 1: unaligned, scalar path
    CAPTURE(offset);
    const std::size_t n = 1001;
    const std::vector<float> p0 = random_vector<float>(n + offset, -1, 1, 241);
    std::vector<std::vector<float>> grads;
    for (int s = 0; s < 3; ++s) grads.push_back(random_vector<float>(n + offset, -2, 2, 242 + s));
    const nn::adam a{0.01f, 0.85f, 0.995f, 1e-7f};
    nn::optimizer_state<cuda_executor> state(g.exec, a, n);
    auto gp = g.upload(p0, {n + offset, 1, 1, 1});
    std::vector<long double> m(n, 0), v(n, 0), want(n);
    for (std::size_t i = 0; i < n; ++i) want[i] = p0[offset + i];
    for (int t = 1; t <= 3; ++t) {
      auto gg = g.upload(grads[t - 1], {n + offset, 1, 1, 1});
      state.step(gp.span().subspan(offset, n), gg.span().subspan(offset, n));
      for (std::size_t i = 0; i < n; ++i) {
        const long double gi = grads[t - 1][offset + i];
        m[i] = (long double)a.beta1 * m[i] + (1 - (long double)a.beta1) * gi;
        v[i] = (long double)a.beta2 * v[i] + (1 - (long double)a.beta2) * gi * gi;
        const long double mhat = m[i] / (1 - std::pow((long double)a.beta1, t));
        const long double vhat = v[i] / (1 - std::pow((long double)a.beta2, t));
        want[i] -= (long double)a.learning_rate * mhat / (std::sqrt(vhat) + (long double)a.epsilon);
      }
      const std::vector<double> got = g.download(gp.span());
      for (std::size_t i = 0; i < n; ++i)
        REQUIRE(got[offset + i] == Approx(static_cast<double>(want[i])).epsilon(1e-6).margin(1e-7));
      for (std::size_t i = 0; i < offset; ++i) REQUIRE(got[i] == p0[i]);
    }
    CHECK(state.steps() == 3);

    nn::optimizer_state<cuda_executor> momentum(g.exec, nn::sgd{0.1f, 0.9f}, n);
    auto sp = g.upload(p0, {n + offset, 1, 1, 1});
    std::vector<double> vel(n, 0), expect(n);
    for (std::size_t i = 0; i < n; ++i) expect[i] = p0[offset + i];
    for (int t = 0; t < 3; ++t) {
      auto gg = g.upload(grads[t], {n + offset, 1, 1, 1});
      momentum.step(sp.span().subspan(offset, n), gg.span().subspan(offset, n));
      for (std::size_t i = 0; i < n; ++i) {
        vel[i] = 0.9 * vel[i] + grads[t][offset + i];
        expect[i] -= 0.1 * vel[i];
      }
    }
    const std::vector<double> got = g.download(sp.span());
    for (std::size_t i = 0; i < n; ++i) REQUIRE(got[offset + i] == Approx(expect[i]).epsilon(1e-5).margin(1e-6));
  }
}

TEST_CASE("weight decay, AdamW, schedules and clipping on the GPU agree with the CPU", "[gpu][nn][optimizer]") {
  gpu g;
  const std::size_t n = 70001;  // past one block's share of the norm pass
  const std::vector<float> p0 = random_vector<float>(n, -1, 1, 251);
  std::vector<std::vector<float>> grads;
  for (int s = 0; s < 4; ++s) grads.push_back(random_vector<float>(n, -2, 2, 252 + s));
  nn::sgd momentum{0.1f, 0.9f, 0.01f};
  momentum.schedule = nn::lr_schedule::step(2, 0.5f);
  momentum.max_grad_norm = 50.0f;  // below the norm (about 280): clipped
  nn::adam l2{0.01f, 0.85f, 0.995f, 1e-7f, 0.02f};
  l2.max_grad_norm = 1e6f;  // above it: a factor of 1
  nn::adam decoupled = nn::adamw(0.01f, 0.1f);
  decoupled.schedule = nn::lr_schedule::cosine(4, 1, 0.001f);
  decoupled.max_grad_norm = 100.0f;
  for (const nn::optimizer& o : {nn::optimizer{momentum}, nn::optimizer{l2}, nn::optimizer{decoupled}}) {
    CAPTURE(nn::optimizer_name(o), nn::max_grad_norm_of(o));
    nn::optimizer_state<cuda_executor> on_gpu(g.exec, o, n);
    nn::optimizer_state<gpukit::cpu_executor, float> on_cpu(gpukit::cpu_executor{}, o, n);
    auto gp = g.upload(p0, {n, 1, 1, 1});
    std::vector<float> cp = p0;
    for (int t = 1; t <= 4; ++t) {
      auto gg = g.upload(grads[t - 1], {n, 1, 1, 1});
      on_gpu.step(gp.span(), gg.span());
      on_cpu.step(cp, grads[t - 1]);
      // cos on the device may differ from the host's in a double's last bit: a float ulp at most.
      CHECK(on_gpu.learning_rate() == Approx(on_cpu.learning_rate()).epsilon(2e-7));
      // The norms are sums in different orders (double): the factors agree to ~1e-15.
      CHECK(on_gpu.last_clip_factor() == Approx(on_cpu.last_clip_factor()).epsilon(1e-6));
      const std::vector<double> got = g.download(gp.span());
      for (std::size_t i = 0; i < n; ++i) REQUIRE(got[i] == Approx(cp[i]).epsilon(1e-5).margin(1e-6));
    }
    if (nn::max_grad_norm_of(o) < 1000.0f) CHECK(on_gpu.last_clip_factor() < 1.0f);
    else CHECK(on_gpu.last_clip_factor() == 1.0f);
  }
}

template <class Exec>
nn::sequential<Exec> seed_model(const Exec& exec, std::size_t batch, const nn::optimizer& opt = nn::adam{}) {
  nn::sequential<Exec> m(exec, 3, 64, 64);
  m.add(nn::conv2d(3, 32, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m.add(nn::dense(30752, 128)).add(nn::relu{}).add(nn::dense(128, 1)).add(nn::sigmoid{});
  m.compile(batch, nn::binary_crossentropy{}, opt, 42);
  return m;
}

/// The weight and bias gradients of `layers` on the GPU against the CPU's.
template <class GpuModel, class CpuModel>
void require_same_gradients(gpu& g, GpuModel& on_gpu, CpuModel& on_cpu, std::initializer_list<std::size_t> layers) {
  for (const std::size_t layer : layers) {
    CAPTURE(layer);
    const auto cw = on_cpu.weight_gradients(layer), cb = on_cpu.bias_gradients(layer);
    require_relative(g.download(on_gpu.weight_gradients(layer)), to_double(std::vector<float>(cw.begin(), cw.end())),
                     tolerance, "weight gradients");
    require_relative(g.download(on_gpu.bias_gradients(layer)), to_double(std::vector<float>(cb.begin(), cb.end())),
                     tolerance, "bias gradients");
  }
}

TEST_CASE("the seed model on the GPU agrees with the CPU: output, loss and every gradient", "[gpu][nn][model]") {
  gpu g;
  const std::size_t batch = 4;
  auto on_gpu = seed_model(g.exec, batch);
  auto on_cpu = seed_model(cpu, batch);
  REQUIRE(g.download(on_gpu.parameters()) == to_double(std::vector<float>(on_cpu.parameters().begin(), on_cpu.parameters().end())));
  // Exact conv sums (eighths times 64ths) make the pool's choices identical on both sides.
  std::vector<float> conv_w(on_cpu.weights(0).begin(), on_cpu.weights(0).end());
  for (float& v : conv_w) v = std::round(v * 64.0f) / 64.0f;
  std::copy(conv_w.begin(), conv_w.end(), on_cpu.weights(0).begin());
  gpukit::transfer(on_gpu.weights(0), gpukit::make_host_span(std::as_const(conv_w)), g.stream.view());
  std::vector<float> x = random_vector<float>(batch * 3 * 64 * 64, 0, 1, 251);
  for (float& v : x) v = std::round(v * 8.0f) / 8.0f;
  const std::vector<float> y{1, 0, 0, 1};
  const shape4 xs{batch, 3, 64, 64}, ys{batch, 1, 1, 1};
  auto gx = g.upload(x, xs), gy = g.upload(y, ys);
  const auto hx = nn::host_tensor<float>::from_host(xs, x), hy = nn::host_tensor<float>::from_host(ys, y);

  const std::vector<double> out_gpu = g.download(on_gpu.forward(gx));
  const auto out_cpu = on_cpu.forward(hx);
  require_relative(out_gpu, to_double(std::vector<float>(out_cpu.data, out_cpu.data + out_cpu.size())), tolerance, "output");
  const auto compare_gradients = [&] { require_same_gradients(g, on_gpu, on_cpu, {0, 4, 6}); };
  on_gpu.backward(gy);
  on_cpu.backward(hy);
  CHECK(on_gpu.last_loss() == Approx(on_cpu.last_loss()).epsilon(1e-5));
  compare_gradients();
  // train_step assigns the gradients (no zeroing pass) at the same parameters: the same again.
  const float step_gpu = on_gpu.train_step(gx, gy), step_cpu = on_cpu.train_step(hx, hy);
  CHECK(step_gpu == Approx(step_cpu).epsilon(1e-5));
  compare_gradients();
}

TEST_CASE("leaky relus fused and GELUs on their own on the GPU agree with the CPU: output and every gradient",
          "[gpu][nn][model][activation]") {
  gpu g;
  const std::size_t batch = 5;
  const auto build = [&](const auto& exec) {
    nn::sequential<std::decay_t<decltype(exec)>> m(exec, 3, 10, 9);
    m.add(nn::conv2d(3, 8, 3, 1, 1)).add(nn::leaky_relu(0.1f)).add(nn::conv2d(8, 6, 3, 2, 1)).add(nn::gelu{});
    m.add(nn::flatten{}).add(nn::dense(6 * 5 * 5, 20)).add(nn::gelu(true)).add(nn::dense(20, 12)).add(nn::leaky_relu(0.3f));
    m.add(nn::dense(12, 3));
    m.compile(batch, nn::softmax_crossentropy{}, nn::adam{}, 17);
    return m;
  };
  auto on_gpu = build(g.exec);
  auto on_cpu = build(cpu);
  CHECK(on_gpu.plan() == on_cpu.plan());
  const shape4 xs{batch, 3, 10, 9}, ys{batch, 3, 1, 1};
  const std::vector<float> x = random_vector<float>(xs.size(), -1, 1, 261);
  std::vector<float> y(ys.size(), 0.0f);
  for (std::size_t i = 0; i < batch; ++i) y[i * 3 + i % 3] = 1.0f;
  auto gx = g.upload(x, xs), gy = g.upload(y, ys);
  const auto hx = nn::host_tensor<float>::from_host(xs, x), hy = nn::host_tensor<float>::from_host(ys, y);
  const std::vector<double> out_gpu = g.download(on_gpu.forward(gx));
  const auto out_cpu = on_cpu.forward(hx);
  require_relative(out_gpu, to_double(std::vector<float>(out_cpu.data, out_cpu.data + out_cpu.size())), tolerance, "output");
  on_gpu.zero_grad();
  on_cpu.zero_grad();
  on_gpu.backward(gy);
  on_cpu.backward(hy);
  CHECK(on_gpu.last_loss() == Approx(on_cpu.last_loss()).epsilon(1e-5));
  require_same_gradients(g, on_gpu, on_cpu, {0, 2, 5, 7, 9});
}

TEST_CASE("Adam fused into the dense backward pass updates like backward() and step()", "[gpu][nn][model][optimizer]") {
  gpu g;
  const std::size_t batch = 6;
  nn::adam decayed = nn::adamw(2e-3f, 0.1f);  // AdamW under a schedule: the fused kernel reads both
  decayed.schedule = nn::lr_schedule::cosine(3, 1);
  const bool with_decay = GENERATE(false, true);
  CAPTURE(with_decay);
  const nn::optimizer opt = with_decay ? nn::optimizer{decayed} : nn::optimizer{nn::adam{}};
  auto fused = seed_model(g.exec, batch, opt);
  auto plain = seed_model(g.exec, batch, opt);
  REQUIRE(fused.compiled_plan().optimizer_route().fuses_into_layers);
  auto gx = g.upload(random_vector<float>(batch * 3 * 64 * 64, 0, 1, 271), {batch, 3, 64, 64});
  auto gy = g.upload(std::vector<float>{1, 0, 0, 1, 1, 0}, {batch, 1, 1, 1});
  // The same gradients bit for bit; the updates may differ in the last bit (the two kernels
  // may contract Adam's multiply-adds differently).
  const auto same = [&](auto a, auto b, const char* what) { require_relative(g.download(a), g.download(b), 1e-6, what); };
  for (int step = 0; step < 2; ++step) {
    const float loss = fused.train_step(gx, gy);
    plain.zero_grad();
    (void)plain.forward(gx);
    plain.backward(gy);
    plain.step();
    CHECK(loss == plain.last_loss());
    CHECK(g.download(fused.gradients()) == g.download(plain.gradients()));
    same(fused.parameters(), plain.parameters(), "parameters");
    same(fused.optimizer_state_ref().first_moment(), plain.optimizer_state_ref().first_moment(), "first moments");
    same(fused.optimizer_state_ref().second_moment(), plain.optimizer_state_ref().second_moment(), "second moments");
  }
  CHECK(fused.steps() == 2);

  // A batch the device rejects leaves the fused update undone too.
  const std::vector<double> before = g.download(fused.parameters());
  const std::vector<double> moments = g.download(fused.optimizer_state_ref().second_moment());
  std::vector<float> bad = random_vector<float>(batch * 3 * 64 * 64, 0, 1, 272);
  bad[1234] = std::numeric_limits<float>::infinity();
  auto gbad = g.upload(bad, {batch, 3, 64, 64});
  fused.train_step_async(gbad, gy);
  CHECK_THROWS_AS(fused.last_loss(), std::invalid_argument);
  CHECK(g.download(fused.parameters()) == before);
  CHECK(g.download(fused.optimizer_state_ref().second_moment()) == moments);
  CHECK(fused.steps() == 2);
}

TEST_CASE("a captured training step follows the learning-rate schedule replay by replay", "[gpu][nn][model][graph][optimizer]") {
  gpu g;
  const std::size_t batch = 4;
  nn::adam a = nn::adamw(1e-3f, 0.01f);
  a.schedule = nn::lr_schedule::cosine(6, 2, 1e-4f);
  a.max_grad_norm = 0.5f;
  auto graphed = seed_model(g.exec, batch, a);
  auto eager = seed_model(g.exec, batch, a);
  CHECK_FALSE(graphed.compiled_plan().optimizer_route().fuses_into_layers);  // clipping needs the whole gradient
  auto gx = g.upload(random_vector<float>(batch * 3 * 64 * 64, 0, 1, 281), {batch, 3, 64, 64});
  auto gy = g.upload(std::vector<float>{1, 0, 0, 1}, {batch, 1, 1, 1});
  nn::graph step = graphed.capture_train_step(gx, gy);
  for (long long t = 1; t <= 8; ++t) {
    step.replay(g.stream.view());
    (void)eager.train_step(gx, gy);
    CHECK(graphed.optimizer_state_ref().learning_rate() ==
          Approx(nn::scheduled_learning_rate(a.schedule, a.learning_rate, t)).epsilon(2e-7));
    CHECK(graphed.optimizer_state_ref().last_clip_factor() == eager.optimizer_state_ref().last_clip_factor());
    REQUIRE(g.download(graphed.parameters()) == g.download(eager.parameters()));
  }
}

TEST_CASE("the loss fused with the last dense layer agrees with the CPU for MSE and BCE", "[gpu][nn][model][loss]") {
  gpu g;
  for (const bool mse : {true, false}) {
    CAPTURE(mse);
    const auto build = [&](const auto& exec) {
      nn::sequential<std::decay_t<decltype(exec)>> m(exec, 20, 1, 1);
      m.add(nn::dense(20, 8)).add(nn::relu{}).add(nn::dense(8, mse ? 3 : 1));
      if (mse) m.add(nn::tanh{});
      else m.add(nn::sigmoid{});
      m.compile(5, mse ? nn::loss{nn::mean_squared_error{}} : nn::loss{nn::binary_crossentropy{}}, nn::sgd{0.1f}, 8);
      return m;
    };
    auto on_gpu = build(g.exec);
    auto on_cpu = build(cpu);
    const std::size_t outs = mse ? 3 : 1;
    const std::vector<float> x = random_vector<float>(5 * 20, -1, 1, 281);
    std::vector<float> y = random_vector<float>(5 * outs, -0.8, 0.8, 282);
    if (!mse) y = {1, 0, 0, 1, 1};
    const shape4 xs{5, 20, 1, 1}, ys{5, outs, 1, 1};
    auto gx = g.upload(x, xs), gy = g.upload(y, ys);
    const auto hx = nn::host_tensor<float>::from_host(xs, x), hy = nn::host_tensor<float>::from_host(ys, y);
    (void)on_gpu.forward(gx);
    on_gpu.backward(gy);
    (void)on_cpu.forward(hx);
    on_cpu.backward(hy);
    CHECK(on_gpu.last_loss() == Approx(on_cpu.last_loss()).epsilon(1e-5));
    const auto grads = on_cpu.gradients();
    require_relative(g.download(on_gpu.gradients()), to_double(std::vector<float>(grads.begin(), grads.end())), tolerance,
                     "gradients");
  }
}

TEST_CASE("a captured training step replays exactly like the eager steps", "[gpu][nn][model][graph]") {
  gpu g;
  const std::size_t batch = 8;
  auto eager = seed_model(g.exec, batch);
  auto replayed = seed_model(g.exec, batch);
  auto gx = g.upload(random_vector<float>(batch * 3 * 64 * 64, 0, 1, 261), {batch, 3, 64, 64});
  auto gy = g.upload(std::vector<float>{1, 0, 0, 1, 1, 1, 0, 0}, {batch, 1, 1, 1});
  nn::graph step = replayed.capture_train_step(gx, gy);
  CHECK(step.node_count() >= 8);
  std::vector<float> eager_losses, replay_losses;
  for (int i = 0; i < 3; ++i) {
    eager.train_step_async(gx, gy);
    eager_losses.push_back(eager.last_loss());
    step.replay(g.stream.view());
    replay_losses.push_back(replayed.last_loss());
  }
  CHECK(eager_losses == replay_losses);
  CHECK(eager.steps() == 3);
  CHECK(replayed.steps() == 3);
  CHECK(g.download(eager.parameters()) == g.download(replayed.parameters()));
  for (float l : eager_losses) CHECK(std::isfinite(l));

  nn::graph fwd = replayed.capture_forward(gx);
  const std::vector<double> direct = g.download(replayed.forward(gx));
  auto out = replayed.forward(gx);
  GPUKIT_CUDA_TRY(cudaMemsetAsync(const_cast<float*>(out.data), 0, out.size() * sizeof(float), g.stream.view()));
  fwd.replay(g.stream.view());
  CHECK(g.download(out) == direct);
}

TEST_CASE("a small model learns a toy problem on the GPU", "[gpu][nn][model][train]") {
  gpu g;
  require_toy_problem_learned(
      g.exec, [&](const std::vector<float>& v, shape4 s) { return g.upload(v, s); },
      [&](nn::device_tensor_view<const float> out) {
        const std::vector<double> d = g.download(out);
        return std::vector<float>(d.begin(), d.end());
      });
}

/// A batch-norm model on both executors: a 1x1 conv (or a dense layer) before the batch norm,
/// so that its input gradient is taken too.
struct batchnorm_case {
  std::size_t n, c_in, c, h, w;
  nn::activation act;
  bool bias;  // of the conv or dense layer before the batch norm
};

template <class Exec, class T>
nn::sequential<Exec, T> batchnorm_model(const Exec& exec, const batchnorm_case& k) {
  nn::sequential<Exec, T> m(exec, k.c_in, k.h, k.w);
  if (k.h * k.w == 1) {
    const nn::dense d(k.c_in, k.c);
    m.add(nn::flatten{}).add(k.bias ? d : d.no_bias()).add(nn::batchnorm1d(k.c, 1e-3f, 0.2f));
  } else {
    const nn::conv2d c(k.c_in, k.c, 1);
    m.add(k.bias ? c : c.no_bias()).add(nn::batchnorm2d(k.c, 1e-3f, 0.2f));
  }
  if (k.act == nn::activation::relu) m.add(nn::relu{});
  if (k.act == nn::activation::tanh) m.add(nn::tanh{});
  m.compile(k.n, nn::mean_squared_error{}, nn::sgd{0.1f}, 31);
  return m;
}

TEST_CASE("batch norm on the GPU agrees with the CPU (double): every path, training and inference, in a graph",
          "[gpu][nn][batchnorm]") {
  gpu g;
  using nn::activation;
  const std::vector<batchnorm_case> cases = {
      {5, 3, 7, 9, 9, activation::relu, true},      // plane layout, planes not a multiple of 4
      {8, 4, 16, 8, 8, activation::none, false},    // plane layout, 16-byte passes; conv without bias
      {64, 8, 32, 16, 16, activation::relu, true},  // several slices per channel
      {3, 5, 40, 3, 3, activation::tanh, true},     // column layout, two channel groups
      {64, 12, 70, 1, 1, activation::relu, false},  // BatchNorm1d: planes of one value; dense without bias
      {300, 6, 33, 1, 1, activation::none, true},   // BatchNorm1d, several slices
  };
  for (const auto& k : cases) {
    CAPTURE(k.n, k.c_in, k.c, k.h, k.w, nn::activation_name(k.act), k.bias);
    auto on_gpu = batchnorm_model<cuda_executor, float>(g.exec, k);
    auto on_cpu = batchnorm_model<gpukit::cpu_executor, double>(cpu, k);
    const std::size_t bn = k.h * k.w == 1 ? 2 : 1, pre = bn - 1;
    INFO(on_gpu.summary());
    // Weights and biases away from their start (padding left zero), identical on both sides;
    // batch-norm weights positive, so that a relu after it keeps about half.
    std::vector<double> pd(on_cpu.parameters().begin(), on_cpu.parameters().end());
    const std::vector<double> noise = random_vector(pd.size(), -1, 1, 401);
    for (const std::size_t layer : {pre, bn})
      for (const auto part : {on_cpu.weights(layer), on_cpu.bias(layer)}) {  // (empty without a bias)
        const auto off = static_cast<std::size_t>(part.data() - on_cpu.parameters().data());
        for (std::size_t i = off; i < off + part.size(); ++i)
          pd[i] = layer == bn && part.data() == on_cpu.weights(bn).data() ? std::fabs(noise[i]) + 0.5 : noise[i];
      }
    std::copy(pd.begin(), pd.end(), on_cpu.parameters().begin());
    const std::vector<float> pf = rounded_to_float<float>(pd);
    gpukit::transfer(on_gpu.parameters(), gpukit::make_host_span(std::as_const(pf)), g.stream.view());
    for (double& v : pd) v = static_cast<float>(v);
    std::copy(pd.begin(), pd.end(), on_cpu.parameters().begin());

    const shape4 xs = on_cpu.input_shape(k.n), ys = on_cpu.output_shape(k.n);
    std::vector<float> x = random_vector<float>(xs.size(), -1, 1, 402);
    for (float& v : x) v = 4.0f + 2.0f * v;  // a mean well away from zero
    const std::vector<float> y = random_vector<float>(ys.size(), -1, 1, 403);
    const std::vector<double> xd(x.begin(), x.end()), yd(y.begin(), y.end());
    auto gx = g.upload(x, xs), gy = g.upload(y, ys);
    const auto compare = [&](const char* what, bool training) {
      INFO(what);
      require_relative(g.download(on_gpu.last_output().span()),
                       std::vector<double>(on_cpu.last_output().data, on_cpu.last_output().data + ys.size()), tolerance,
                       "output");
      for (const std::size_t layer : {pre, bn}) {
        CAPTURE(layer);
        const auto cw = on_cpu.weight_gradients(layer), cb = on_cpu.bias_gradients(layer);
        // Before a training-mode batch norm, dz sums to zero over the batch only in exact
        // arithmetic, and x's mean of 4 multiplies that sum's float rounding into dw: on an
        // H100 the 1x1 conv at batch 64 came to 1.1e-4 of the largest gradient.
        const double dw_tolerance = layer == pre && training ? 10 * tolerance : tolerance;
        require_relative(g.download(on_gpu.weight_gradients(layer)), std::vector<double>(cw.begin(), cw.end()),
                         dw_tolerance, "weight gradients");
        const std::vector<double> gb = g.download(on_gpu.bias_gradients(layer));
        if (layer == pre && training) {
          // The batch norm takes its input's batch mean away, so the bias before it has a zero
          // gradient in training: rounding noise on both sides (about 1e-17 in double,
          // 1e-7 in float), bounded against the weight gradients' scale instead.
          double scale = 0;
          for (double v : cw) scale = std::max(scale, std::fabs(v));
          for (double v : gb) REQUIRE(std::fabs(v) <= 1e-4 * scale);
        } else {
          require_relative(gb, std::vector<double>(cb.begin(), cb.end()), tolerance, "bias gradients");
        }
      }
      const auto rm = on_cpu.running_mean(bn), rv = on_cpu.running_var(bn);
      require_relative(g.download(on_gpu.running_mean(bn)), std::vector<double>(rm.begin(), rm.end()), tolerance,
                       "running mean");
      require_relative(g.download(on_gpu.running_var(bn)), std::vector<double>(rv.begin(), rv.end()), tolerance,
                       "running variance");
      CHECK(g.download(on_gpu.batches_tracked(bn)) ==
            std::vector<double>{static_cast<double>(on_cpu.batches_tracked(bn)[0])});
    };
    for (const bool training : {true, false}) {
      on_gpu.set_training(training), on_cpu.set_training(training);
      on_gpu.zero_grad(), on_cpu.zero_grad();
      (void)on_gpu.forward(gx), (void)on_cpu.forward(view(xd, xs));
      on_gpu.backward(gy), on_cpu.backward(view(yd, ys));
      CHECK(on_gpu.last_loss() == Approx(on_cpu.last_loss()).epsilon(1e-4));
      compare(training ? "training" : "inference", training);
    }
    // Inference with the batch norm folded into the layer before it: the CPU's, and a
    // captured inference forward that replays it.
    const std::vector<double> folded_gpu = g.download(on_gpu.predict(gx));
    const auto folded_cpu = on_cpu.predict(view(xd, xs));
    require_relative(folded_gpu, std::vector<double>(folded_cpu.data, folded_cpu.data + ys.size()), tolerance, "predict");
    on_gpu.set_training(false);
    nn::graph infer = on_gpu.capture_forward(gx);
    infer.replay(g.stream.view());
    CHECK(g.download(on_gpu.last_output().span()) == folded_gpu);
    // A captured training step replays like eager steps: statistics updated at every replay.
    auto replayed = batchnorm_model<cuda_executor, float>(g.exec, k);
    gpukit::transfer(replayed.parameters(), gpukit::make_host_span(std::as_const(pf)), g.stream.view());
    auto eager = batchnorm_model<cuda_executor, float>(g.exec, k);
    gpukit::transfer(eager.parameters(), gpukit::make_host_span(std::as_const(pf)), g.stream.view());
    nn::graph step = replayed.capture_train_step(gx, gy);
    for (int r = 0; r < 3; ++r) {
      const float eager_loss = eager.train_step(gx, gy);
      step.replay(g.stream.view());
      CHECK(replayed.last_loss() == eager_loss);
    }
    CHECK(g.download(replayed.parameters()) == g.download(eager.parameters()));
    CHECK(g.download(replayed.running_var(bn)) == g.download(eager.running_var(bn)));
    CHECK(g.download(replayed.batches_tracked(bn)) == std::vector<double>{3.0});
  }
}

}  // namespace
