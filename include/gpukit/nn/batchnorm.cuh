// gpukit/nn/batchnorm.cuh — the GPU path of batch normalisation (see batchnorm.hpp): slice
// sums per channel in float (float4 loads, several in flight, where planes allow), one
// thread per channel adding the slices in double and finishing the statistics with the
// CPU's functions, one elementwise pass over the channels in reverse.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/batchnorm.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/batchnorm.hpp"
#include "gpukit/nn/detail/fast_divmod.hpp"
#include "gpukit/nn/detail/kernels.cuh"

#include <cstdint>

namespace gpukit::nn::detail {

constexpr int batchnorm_block = 256;

/// The two sums one value adds: the statistics (x - shift, its square) forward, the
/// gradient sums (dz, dz·(x - mean)) backward.
template <bool Backward>
struct batchnorm_sums {
  const float* x;
  const float* y;
  const float* dy;
  activation act;
  __device__ __forceinline__ void add(long long i, float ref, float& s1, float& s2) const {
    const float d = x[i] - ref;
    if constexpr (Backward) {
      const float dz = batchnorm_dz(dy[i], act == activation::none ? 0.0f : y[i], act);
      s1 += dz, s2 += dz * d;
    } else {
      s1 += d, s2 += d * d;
    }
  }
  /// The four values of group i (float4 i of the tensors), loaded before any is added.
  struct group {
    float4 x, y, dy;
  };
  __device__ __forceinline__ group load4(long long i) const {
    group v;
    v.x = reinterpret_cast<const float4*>(x)[i];
    if constexpr (Backward) {
      v.dy = reinterpret_cast<const float4*>(dy)[i];
      v.y = act == activation::none ? v.x : reinterpret_cast<const float4*>(y)[i];
    }
    return v;
  }
  __device__ __forceinline__ void add4(const group& v, float ref, float& s1, float& s2) const {
    add_one(v.x.x, v.y.x, v.dy.x, ref, s1, s2);
    add_one(v.x.y, v.y.y, v.dy.y, ref, s1, s2);
    add_one(v.x.z, v.y.z, v.dy.z, ref, s1, s2);
    add_one(v.x.w, v.y.w, v.dy.w, ref, s1, s2);
  }
  __device__ __forceinline__ void add_one(float xv, float yv, float dyv, float ref, float& s1, float& s2) const {
    const float d = xv - ref;
    if constexpr (Backward) {
      const float dz = batchnorm_dz(dyv, yv, act);
      s1 += dz, s2 += dz * d;
    } else {
      s1 += d, s2 += d * d;
    }
  }
};

/// Forward: the channel's first value (the shift); backward: its mean.
template <bool Backward>
__device__ __forceinline__ float batchnorm_reference(const batchnorm_geometry& g, const float* x, const float* saved, int c) {
  if constexpr (Backward) {
    return saved[saved_mean * g.c + c];
  } else {
    return x[static_cast<long long>(c) * g.plane];
  }
}

/// The block's two sums, added across its warps; thread 0 writes them to its slice's slot.
__device__ __forceinline__ void batchnorm_block_store(float s1, float s2, float* partial, long long slot) {
  __shared__ float red[2][batchnorm_block / 32];
  for (int o = 16; o > 0; o /= 2) s1 += __shfl_xor_sync(0xffffffffu, s1, o), s2 += __shfl_xor_sync(0xffffffffu, s2, o);
  if (threadIdx.x % 32 == 0) red[0][threadIdx.x / 32] = s1, red[1][threadIdx.x / 32] = s2;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t1 = 0.0f, t2 = 0.0f;
    for (int w = 0; w < batchnorm_block / 32; ++w) t1 += red[0][w], t2 += red[1][w];
    partial[slot * 2] = t1;
    partial[slot * 2 + 1] = t2;
  }
}

/// Plane layout: block (slice, channel) sums its slice of the channel's n·plane values.
template <bool Backward>
__global__ void __launch_bounds__(batchnorm_block) batchnorm_plane_sums_kernel(const batchnorm_geometry g, const fast_divmod plane,
                                                                               const batchnorm_sums<Backward> v, const float* saved,
                                                                               float* partial) {
  const int c = static_cast<int>(blockIdx.y), slice = static_cast<int>(blockIdx.x);
  const long long m = g.count();
  const long long begin = m * slice / gridDim.x, end = m * (slice + 1) / gridDim.x;
  const float ref = batchnorm_reference<Backward>(g, v.x, saved, c);
  float s1 = 0.0f, s2 = 0.0f;
  for (long long j = begin + threadIdx.x; j < end; j += batchnorm_block) {
    int img = 0, p = 0;
    plane.divmod(static_cast<int>(j), img, p);
    v.add((static_cast<long long>(img) * g.c + c) * g.plane + p, ref, s1, s2);
  }
  batchnorm_block_store(s1, s2, partial, static_cast<long long>(slice) * g.c + c);
}

/// The plane layout over float4 groups (planes a multiple of four, 16-byte aligned
/// tensors): `quads` divides by plane / 4. Each thread loads four groups before it adds any,
/// so that a block keeps 16 loads per thread in flight: one group at a time left the
/// memory system idle between a thread's loads.
template <bool Backward>
__global__ void __launch_bounds__(batchnorm_block) batchnorm_plane_sums4_kernel(const batchnorm_geometry g, const fast_divmod quads,
                                                                                const batchnorm_sums<Backward> v, const float* saved,
                                                                                float* partial) {
  constexpr int unroll = 4;
  const int c = static_cast<int>(blockIdx.y), slice = static_cast<int>(blockIdx.x);
  const long long m = g.count() / 4, quads_per_plane = quads.divisor;
  const long long begin = m * slice / gridDim.x, end = m * (slice + 1) / gridDim.x;
  const float ref = batchnorm_reference<Backward>(g, v.x, saved, c);
  const auto at = [&](long long j) {
    int img = 0, q = 0;
    quads.divmod(static_cast<int>(j), img, q);
    return (static_cast<long long>(img) * g.c + c) * quads_per_plane + q;
  };
  float s1 = 0.0f, s2 = 0.0f;
  long long j = begin + threadIdx.x;
  for (; j + (unroll - 1) * batchnorm_block < end; j += unroll * batchnorm_block) {
    typename batchnorm_sums<Backward>::group w[unroll];
#pragma unroll
    for (int u = 0; u < unroll; ++u) w[u] = v.load4(at(j + u * batchnorm_block));
#pragma unroll
    for (int u = 0; u < unroll; ++u) v.add4(w[u], ref, s1, s2);
  }
  for (; j < end; j += batchnorm_block) v.add4(v.load4(at(j)), ref, s1, s2);
  batchnorm_block_store(s1, s2, partial, static_cast<long long>(slice) * g.c + c);
}

/// Column layout: block (slice, channel group) of 32 x 8 threads; lane x owns channel
/// 32·group + x, the 8 rows of threads step through the slice's values (coalesced across
/// channels when a plane holds one value).
template <bool Backward>
__global__ void __launch_bounds__(batchnorm_block) batchnorm_column_sums_kernel(const batchnorm_geometry g, const fast_divmod plane,
                                                                                const batchnorm_sums<Backward> v, const float* saved,
                                                                                float* partial) {
  const int c = static_cast<int>(blockIdx.y) * 32 + static_cast<int>(threadIdx.x);
  const int slice = static_cast<int>(blockIdx.x);
  const long long m = g.count();
  const long long begin = m * slice / gridDim.x, end = m * (slice + 1) / gridDim.x;
  float s1 = 0.0f, s2 = 0.0f;
  if (c < g.c) {
    const float ref = batchnorm_reference<Backward>(g, v.x, saved, c);
    for (long long j = begin + threadIdx.y; j < end; j += batchnorm_block / 32) {
      int img = 0, p = 0;
      plane.divmod(static_cast<int>(j), img, p);
      v.add((static_cast<long long>(img) * g.c + c) * g.plane + p, ref, s1, s2);
    }
  }
  __shared__ float red[2][batchnorm_block / 32][33];
  red[0][threadIdx.y][threadIdx.x] = s1, red[1][threadIdx.y][threadIdx.x] = s2;
  __syncthreads();
  if (threadIdx.y == 0 && c < g.c) {
    float t1 = 0.0f, t2 = 0.0f;
    for (int r = 0; r < batchnorm_block / 32; ++r) t1 += red[0][r][threadIdx.x], t2 += red[1][r][threadIdx.x];
    partial[(static_cast<long long>(slice) * g.c + c) * 2] = t1;
    partial[(static_cast<long long>(slice) * g.c + c) * 2 + 1] = t2;
  }
}

/// One thread per channel: the slices added in double, then the CPU's finalisation.
/// mode 0: training forward, 1: inference forward, 2: backward.
template <class = void>
__global__ void batchnorm_finalize_kernel(const batchnorm_geometry g, int mode, int splits, bool training,
                                          bool accumulate, const float* x, const batchnorm_state<float> s,
                                          float* dweight, float* dbias) {
  const int c = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= g.c) return;
  if (mode == 1) {
    finalize_inference(s.weight[c], s.bias[c], g.eps, s.running_mean, s.running_var, s.saved, c, g.c);
    return;
  }
  double t1 = 0.0, t2 = 0.0;
  for (int k = 0; k < splits; ++k) {
    t1 += static_cast<double>(s.partial[(static_cast<long long>(k) * g.c + c) * 2]);
    t2 += static_cast<double>(s.partial[(static_cast<long long>(k) * g.c + c) * 2 + 1]);
  }
  if (mode == 0) {
    finalize_forward(static_cast<double>(x[static_cast<long long>(c) * g.plane]), t1, t2, g.count(), s.weight[c],
                     s.bias[c], g.eps, g.momentum, s.running_mean, s.running_var, s.saved, c, g.c);
    if (c == 0) ++*s.batches_tracked;
  } else {
    finalize_backward(t1, t2, g.count(), s.weight[c], training, accumulate, s.saved, dweight, dbias, c, g.c);
  }
}

/// The elementwise pass, forward (y = act(a·x + b)) or backward (dx = a·dz + b·x + c),
/// over groups of Vec values of one channel (Vec = 4: planes a multiple of four, 16-byte
/// aligned tensors). The pass sweeps the channels from the last to the first: the slice
/// sums just before it read the channels first to last, so the values they read last are
/// the likeliest to be still in the L2 cache when this pass reads them again.
/// `per_channel` divides by n · plane / Vec, `per_plane` by plane / Vec.
template <bool Backward, int Vec>
__global__ void batchnorm_apply_kernel(const batchnorm_geometry g, const fast_divmod per_channel,
                                       const fast_divmod per_plane, const float* x, const float* y, const float* dy,
                                       const float* saved, float* out) {
  const long long groups = g.total() / Vec;
  GPUKIT_NN_GRID_STRIDE(k, groups) {
    int from_last = 0, r = 0, img = 0, rem = 0;
    per_channel.divmod(static_cast<int>(k), from_last, r);
    per_plane.divmod(r, img, rem);
    const int c = g.c - 1 - from_last;
    const long long i = (static_cast<long long>(img) * g.c + c) * per_plane.divisor + rem;
    const float a = saved[coef_a * g.c + c], b = saved[coef_b * g.c + c];
    if constexpr (Vec == 4) {
      const float4 xv = reinterpret_cast<const float4*>(x)[i];
      float4 o;
      if constexpr (Backward) {
        const float k = saved[coef_c * g.c + c];
        const float4 yv = g.act == activation::none ? xv : reinterpret_cast<const float4*>(y)[i];
        const float4 dv = reinterpret_cast<const float4*>(dy)[i];
        o.x = batchnorm_dx(batchnorm_dz(dv.x, yv.x, g.act), xv.x, a, b, k);
        o.y = batchnorm_dx(batchnorm_dz(dv.y, yv.y, g.act), xv.y, a, b, k);
        o.z = batchnorm_dx(batchnorm_dz(dv.z, yv.z, g.act), xv.z, a, b, k);
        o.w = batchnorm_dx(batchnorm_dz(dv.w, yv.w, g.act), xv.w, a, b, k);
      } else {
        o.x = batchnorm_value(xv.x, a, b, g.act);
        o.y = batchnorm_value(xv.y, a, b, g.act);
        o.z = batchnorm_value(xv.z, a, b, g.act);
        o.w = batchnorm_value(xv.w, a, b, g.act);
      }
      reinterpret_cast<float4*>(out)[i] = o;
    } else if constexpr (Backward) {
      const float yv = g.act == activation::none ? 0.0f : y[i];
      out[i] = batchnorm_dx(batchnorm_dz(dy[i], yv, g.act), x[i], a, b, saved[coef_c * g.c + c]);
    } else {
      out[i] = batchnorm_value(x[i], a, b, g.act);
    }
  }
}

template <bool Backward>
inline void batchnorm_sums_launch(const cuda_executor& exec, const batchnorm_geometry& g, const batchnorm_path& p,
                                  const batchnorm_sums<Backward>& v, const float* saved, float* partial) {
  const fast_divmod plane(g.plane);
  launch_config cfg;
  if (p.column) {
    cfg.grid = dim3(static_cast<unsigned>(p.splits), static_cast<unsigned>((g.c + 31) / 32));
    cfg.block = dim3(32, batchnorm_block / 32);
    launch(batchnorm_column_sums_kernel<Backward>, cfg, exec.stream(), g, plane, v, saved, partial);
  } else {
    cfg.grid = dim3(static_cast<unsigned>(p.splits), static_cast<unsigned>(g.c));
    cfg.block = dim3(batchnorm_block);
    const bool vec = p.vector == 4 && g.plane % 4 == 0 && aligned16(v.x) && (v.y == nullptr || aligned16(v.y)) &&
                     (v.dy == nullptr || aligned16(v.dy));
    if (vec) return launch(batchnorm_plane_sums4_kernel<Backward>, cfg, exec.stream(), g, fast_divmod(g.plane / 4), v, saved, partial);
    launch(batchnorm_plane_sums_kernel<Backward>, cfg, exec.stream(), g, plane, v, saved, partial);
  }
}

inline void batchnorm_finalize_launch(const cuda_executor& exec, const batchnorm_geometry& g, int mode, int splits,
                                      bool training, bool accumulate, const float* x, const batchnorm_state<float>& s,
                                      float* dweight, float* dbias) {
  launch(batchnorm_finalize_kernel<>, grid_for(static_cast<std::size_t>(g.c), 128), exec.stream(), g, mode, splits, training,
         accumulate, x, s, dweight, dbias);
}

template <bool Backward>
inline void batchnorm_apply_launch(const cuda_executor& exec, const batchnorm_geometry& g, const float* x,
                                   const float* y, const float* dy, const float* saved, float* out) {
  const bool vec = g.plane % 4 == 0 && aligned16(x) && aligned16(out) && aligned16(dy) && (y == nullptr || aligned16(y));
  if (vec) {
    launch(batchnorm_apply_kernel<Backward, 4>, grid_for(static_cast<std::size_t>(g.total() / 4)), exec.stream(), g,
           fast_divmod(static_cast<int>(g.count() / 4)), fast_divmod(g.plane / 4), x, y, dy, saved, out);
  } else {
    launch(batchnorm_apply_kernel<Backward, 1>, grid_for(static_cast<std::size_t>(g.total())), exec.stream(), g,
           fast_divmod(static_cast<int>(g.count())), fast_divmod(g.plane), x, y, dy, saved, out);
  }
}

template <class = void>
__global__ void fold_batchnorm_kernel(const float* w, const float* b, long long per_out, int outs, const float* saved,
                                      float* w_out, float* b_out) {
  GPUKIT_NN_GRID_STRIDE(i, per_out * outs) fold_batchnorm_element(i, w, b, per_out, outs, saved, w_out, b_out);
}

inline void batchnorm_inference_coefficients_impl(const cuda_executor& exec, const batchnorm_geometry& g,
                                                  const batchnorm_state<float>& s) {
  batchnorm_finalize_launch(exec, g, 1, 1, false, false, nullptr, s, nullptr, nullptr);
}

inline void fold_batchnorm_impl(const cuda_executor& exec, const float* w, const float* b, long long per_out, int outs,
                                const float* saved, float* w_out, float* b_out) {
  launch(fold_batchnorm_kernel<>, grid_for(static_cast<std::size_t>(per_out * outs)), exec.stream(), w, b, per_out, outs,
         saved, w_out, b_out);
}

inline void batchnorm_forward_impl(const cuda_executor& exec, const batchnorm_geometry& g, const batchnorm_path& p,
                                   bool training, const float* x, const batchnorm_state<float>& s, float* y) {
  if (g.total() == 0) return;
  if (training) {
    batchnorm_sums_launch<false>(exec, g, p, batchnorm_sums<false>{x, nullptr, nullptr, g.act}, s.saved, s.partial);
    batchnorm_finalize_launch(exec, g, 0, p.splits, true, false, x, s, nullptr, nullptr);
  } else {
    batchnorm_finalize_launch(exec, g, 1, p.splits, false, false, x, s, nullptr, nullptr);
  }
  batchnorm_apply_launch<false>(exec, g, x, nullptr, nullptr, s.saved, y);
}

inline void batchnorm_backward_impl(const cuda_executor& exec, const batchnorm_geometry& g, const batchnorm_path& p,
                                    bool training, bool accumulate, const float* x, const float* y, const float* dy,
                                    const batchnorm_state<float>& s, float* dweight, float* dbias, float* dx) {
  if (g.total() == 0) return;
  batchnorm_sums_launch<true>(exec, g, p, batchnorm_sums<true>{x, y, dy, g.act}, s.saved, s.partial);
  batchnorm_finalize_launch(exec, g, 2, p.splits, training, accumulate, x, s, dweight, dbias);
  if (dx != nullptr) batchnorm_apply_launch<true>(exec, g, x, g.act == activation::none ? nullptr : y, dy, s.saved, dx);
}

}  // namespace gpukit::nn::detail
