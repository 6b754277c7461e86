// Elementwise ops and reductions against their peers, in the same run: the CPU fallback
// ("cpu"), a plain OpenMP loop ("omp_loop", the bar for the fallback), a plain
// one-thread-per-element kernel ("plain"), and the raw CUB call ("cub"). Sizes 2^16 to
// 2^28, float and int32. Bytes count each input read once and each output written once.
#include "gpukit/gpukit.cuh"
#include "support/harness.hpp"

#include <cub/block/block_reduce.cuh>
#include <cub/device/device_reduce.cuh>
#include <cub/device/device_transform.cuh>
#include <cuda/std/functional>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <memory>
#include <string>
#include <vector>

namespace gpukit_bench {
namespace {

template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "f32" : "i32";
}

template <class T>
std::shared_ptr<gpukit::device_buffer<T>> device_input(std::size_t n, gpukit::stream_view s, int salt) {
  auto b = std::make_shared<gpukit::device_buffer<T>>(n, s);
  gpukit::generate(gpukit::cuda_executor(s), *b, [salt] __host__ __device__(std::int64_t i) {
    return static_cast<T>((i * 7 + salt) % 113 - 56);
  });
  return b;
}

template <class T>
std::shared_ptr<gpukit::host_buffer<T>> host_input(std::size_t n, int salt) {
  auto b = std::make_shared<gpukit::host_buffer<T>>(n);
  gpukit::generate(gpukit::cpu_executor{}, *b, [salt](std::int64_t i) { return static_cast<T>((i * 7 + salt) % 113 - 56); });
  return b;
}

// ---- plain kernels: one thread per element, the textbook version ----------------------
template <class T>
__global__ void plain_add(const T* a, const T* b, T* c, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}
template <class T>
__global__ void plain_axpy(T alpha, const T* x, T* y, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = alpha * x[i] + y[i];
}
template <class T>
__global__ void plain_axby_c(T a, const T* x, T b, const T* y, const T* c, T* out, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a * x[i] + b * y[i] + c[i];
}
template <class T, class R, int Block>
__global__ void plain_sum(const T* x, const T* y, R* out, std::int64_t n) {  // y == nullptr: sum, else dot
  using reduce_t = cub::BlockReduce<R, Block>;
  __shared__ typename reduce_t::TempStorage temp;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * Block + threadIdx.x;
  R v = 0;
  if (i < n) v = y ? static_cast<R>(x[i]) * static_cast<R>(y[i]) : static_cast<R>(x[i]);
  const R block_total = reduce_t(temp).Sum(v);
  if (threadIdx.x == 0) {
    if constexpr (std::is_integral_v<R>) {
      atomicAdd(reinterpret_cast<unsigned long long*>(out), static_cast<unsigned long long>(block_total));
    } else {
      atomicAdd(out, block_total);
    }
  }
}

unsigned blocks_for(std::size_t n, unsigned block) { return static_cast<unsigned>((n + block - 1) / block); }

template <class T>
struct axby_plus_c {
  T a, b;
  __host__ __device__ T operator()(T x, T y, T c) const { return a * x + b * y + c; }
};

template <class T>
struct multiply_terms {
  const T* x;
  const T* y;
  __host__ __device__ gpukit::detail::sum_t<T> operator()(std::int64_t i) const {
    return static_cast<gpukit::detail::sum_t<T>>(x[i]) * static_cast<gpukit::detail::sum_t<T>>(y[i]);
  }
};

template <class T>
void register_elementwise(std::size_t n) {
  const std::string t = type_name<T>();
  const double vadd_bytes = 3.0 * n * sizeof(T);
  // vadd
  add_gpu_case("vadd_" + t, "gpu", n, vadd_bytes, n, [n](gpukit::stream_view s) {
    auto a = device_input<T>(n, s, 1), b = device_input<T>(n, s, 2);
    auto c = std::make_shared<gpukit::device_buffer<T>>(n, s);
    return [=](gpukit::stream_view st) { gpukit::add(gpukit::cuda_executor(st), *a, *b, *c); };
  });
  add_gpu_case("vadd_" + t, "cub", n, vadd_bytes, n, [n](gpukit::stream_view s) {
    auto a = device_input<T>(n, s, 1), b = device_input<T>(n, s, 2);
    auto c = std::make_shared<gpukit::device_buffer<T>>(n, s);
    return [=](gpukit::stream_view st) {
      GPUKIT_CUDA_TRY(cub::DeviceTransform::Transform(::cuda::std::make_tuple(a->data(), b->data()), c->data(),
                                                      static_cast<std::int64_t>(n), ::cuda::std::plus<T>{}, st.value()));
    };
  });
  add_gpu_case("vadd_" + t, "plain", n, vadd_bytes, n, [n](gpukit::stream_view s) {
    auto a = device_input<T>(n, s, 1), b = device_input<T>(n, s, 2);
    auto c = std::make_shared<gpukit::device_buffer<T>>(n, s);
    return [=](gpukit::stream_view st) {
      plain_add<<<blocks_for(n, 256), 256, 0, st.value()>>>(a->data(), b->data(), c->data(), static_cast<std::int64_t>(n));
      GPUKIT_CHECK_LAUNCH("plain_add");
    };
  });
  add_cpu_case("vadd_" + t, "cpu", n, vadd_bytes, n, [n] {
    auto a = host_input<T>(n, 1), b = host_input<T>(n, 2), c = host_input<T>(n, 3);
    return [=] { gpukit::add(gpukit::cpu_executor{}, *a, *b, *c); };
  });
  add_cpu_case("vadd_" + t, "omp_loop", n, vadd_bytes, n, [n] {
    auto a = host_input<T>(n, 1), b = host_input<T>(n, 2), c = host_input<T>(n, 3);
    return [=] {
      const T* pa = a->data();
      const T* pb = b->data();
      T* pc = c->data();
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) pc[i] = pa[i] + pb[i];
    };
  });

  // axpy: y = 2x + y
  const double axpy_bytes = 3.0 * n * sizeof(T);
  add_gpu_case("axpy_" + t, "gpu", n, axpy_bytes, n, [n](gpukit::stream_view s) {
    auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2);
    return [=](gpukit::stream_view st) { gpukit::axpy(gpukit::cuda_executor(st), T(2), *x, *y); };
  });
  add_gpu_case("axpy_" + t, "cub", n, axpy_bytes, n, [n](gpukit::stream_view s) {
    auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2);
    return [=](gpukit::stream_view st) {
      GPUKIT_CUDA_TRY(cub::DeviceTransform::Transform(::cuda::std::make_tuple(x->data(), y->data()), y->data(),
                                                      static_cast<std::int64_t>(n), gpukit::fn::axpy_with<T>{T(2)},
                                                      st.value()));
    };
  });
  add_gpu_case("axpy_" + t, "plain", n, axpy_bytes, n, [n](gpukit::stream_view s) {
    auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2);
    return [=](gpukit::stream_view st) {
      plain_axpy<<<blocks_for(n, 256), 256, 0, st.value()>>>(T(2), x->data(), y->data(), static_cast<std::int64_t>(n));
      GPUKIT_CHECK_LAUNCH("plain_axpy");
    };
  });
  add_cpu_case("axpy_" + t, "cpu", n, axpy_bytes, n, [n] {
    auto x = host_input<T>(n, 1), y = host_input<T>(n, 2);
    return [=] { gpukit::axpy(gpukit::cpu_executor{}, T(2), *x, *y); };
  });

  // out = a·x + b·y + c in one pass, against what an eager framework does: four ops
  const double fused_bytes = 4.0 * n * sizeof(T);
  add_gpu_case("axby_c_" + t, "gpu", n, fused_bytes, n, [n](gpukit::stream_view s) {
    auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2), c = device_input<T>(n, s, 3);
    auto out = std::make_shared<gpukit::device_buffer<T>>(n, s);
    return [=](gpukit::stream_view st) {
      gpukit::transform(gpukit::cuda_executor(st), *out, axby_plus_c<T>{T(2), T(3)}, *x, *y, *c);
    };
  });
  add_gpu_case("axby_c_" + t, "four_ops", n, fused_bytes, n, [n](gpukit::stream_view s) {
    auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2), c = device_input<T>(n, s, 3);
    auto out = std::make_shared<gpukit::device_buffer<T>>(n, s);
    auto t1 = std::make_shared<gpukit::device_buffer<T>>(n, s), t2 = std::make_shared<gpukit::device_buffer<T>>(n, s);
    return [=](gpukit::stream_view st) {
      const gpukit::cuda_executor e(st);
      gpukit::scale(e, T(2), *x, *t1);
      gpukit::scale(e, T(3), *y, *t2);
      gpukit::add(e, *t1, *t2, *t1);
      gpukit::add(e, *t1, *c, *out);
    };
  });
  add_gpu_case("axby_c_" + t, "plain", n, fused_bytes, n, [n](gpukit::stream_view s) {
    auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2), c = device_input<T>(n, s, 3);
    auto out = std::make_shared<gpukit::device_buffer<T>>(n, s);
    return [=](gpukit::stream_view st) {
      plain_axby_c<<<blocks_for(n, 256), 256, 0, st.value()>>>(T(2), x->data(), T(3), y->data(), c->data(), out->data(),
                                                               static_cast<std::int64_t>(n));
      GPUKIT_CHECK_LAUNCH("plain_axby_c");
    };
  });
  add_cpu_case("axby_c_" + t, "cpu", n, fused_bytes, n, [n] {
    auto x = host_input<T>(n, 1), y = host_input<T>(n, 2), c = host_input<T>(n, 3), out = host_input<T>(n, 4);
    return [=] { gpukit::transform(gpukit::cpu_executor{}, *out, axby_plus_c<T>{T(2), T(3)}, *x, *y, *c); };
  });
}

template <class T>
void register_reductions(std::size_t n) {
  using R = gpukit::detail::sum_t<T>;
  const std::string t = type_name<T>();
  for (bool is_dot : {false, true}) {
    const std::string family = (is_dot ? "dot_" : "sum_") + t;
    const double bytes = (is_dot ? 2.0 : 1.0) * n * sizeof(T);
    // "gpu" reuses a workspace, as a loop of reductions should; "gpu_no_ws" allocates its
    // temporary storage on every call, the default without one.
    for (bool with_workspace : {true, false}) {
      add_gpu_case(family, with_workspace ? "gpu" : "gpu_no_ws", n, bytes, n, [n, is_dot, with_workspace](gpukit::stream_view s) {
        auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2);
        auto out = std::make_shared<gpukit::device_buffer<R>>(1, s);
        auto ws = std::make_shared<gpukit::workspace>(s);
        return [=](gpukit::stream_view st) {
          const gpukit::cuda_executor e = with_workspace ? gpukit::cuda_executor(st, *ws) : gpukit::cuda_executor(st);
          if (is_dot) {
            gpukit::dot_async(e, *x, *y, *out);
          } else {
            gpukit::sum_async(e, *x, *out);
          }
        };
      });
    }
    add_gpu_case(family, "cub", n, bytes, n, [n, is_dot](gpukit::stream_view s) {
      auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2);
      auto out = std::make_shared<gpukit::device_buffer<R>>(1, s);
      // CUB's temporary storage is sized once and kept: the peer pays no allocation.
      std::size_t bytes_needed = 0;
      const auto terms = thrust::make_transform_iterator(thrust::counting_iterator<std::int64_t>(0),
                                                         multiply_terms<T>{x->data(), y->data()});
      if (is_dot) {
        GPUKIT_CUDA_TRY(cub::DeviceReduce::Sum(nullptr, bytes_needed, terms, out->data(), static_cast<std::int64_t>(n), s.value()));
      } else {
        GPUKIT_CUDA_TRY(cub::DeviceReduce::Sum(nullptr, bytes_needed, x->data(), out->data(), static_cast<std::int64_t>(n), s.value()));
      }
      auto temp = std::make_shared<gpukit::device_buffer<unsigned char>>(bytes_needed + 1, s);
      return [x, y, out, temp, terms, bytes_needed, is_dot, n](gpukit::stream_view st) {  // y lives as long as terms
        std::size_t b = bytes_needed;
        if (is_dot) {
          GPUKIT_CUDA_TRY(cub::DeviceReduce::Sum(temp->data(), b, terms, out->data(), static_cast<std::int64_t>(n), st.value()));
        } else {
          GPUKIT_CUDA_TRY(cub::DeviceReduce::Sum(temp->data(), b, x->data(), out->data(), static_cast<std::int64_t>(n), st.value()));
        }
      };
    });
    add_gpu_case(family, "plain", n, bytes, n, [n, is_dot](gpukit::stream_view s) {
      auto x = device_input<T>(n, s, 1), y = device_input<T>(n, s, 2);
      auto out = std::make_shared<gpukit::device_buffer<R>>(1, s);
      return [=](gpukit::stream_view st) {
        GPUKIT_CUDA_TRY(cudaMemsetAsync(out->data(), 0, sizeof(R), st.value()));
        plain_sum<T, R, 256><<<blocks_for(n, 256), 256, 0, st.value()>>>(x->data(), is_dot ? y->data() : nullptr,
                                                                         out->data(), static_cast<std::int64_t>(n));
        GPUKIT_CHECK_LAUNCH("plain_sum");
      };
    });
    add_cpu_case(family, "cpu", n, bytes, n, [n, is_dot] {
      auto x = host_input<T>(n, 1), y = host_input<T>(n, 2);
      return [=] {
        const gpukit::cpu_executor e;
        benchmark::DoNotOptimize(is_dot ? gpukit::dot(e, *x, *y) : gpukit::sum(e, *x));
      };
    });
  }
}

}  // namespace

void register_ops_cases() {
  for (int p : {16, 20, 24, 28}) {
    const std::size_t n = std::size_t{1} << p;
    register_elementwise<float>(n);
    register_elementwise<std::int32_t>(n);
    register_reductions<float>(n);
    register_reductions<std::int32_t>(n);
  }
}

}  // namespace gpukit_bench
