// gpukit/nn/conv2d.cuh — the GPU path of the conv layer (see conv2d.hpp for the contract
// and choose_conv2d_path for which kernel runs when).
//
// forward, implicit GEMM (detail/conv_igemm.cuh): bias and activation in the epilogue;
//           with a pool, the conv output goes to scratch and the pool runs as its own pass
//           (maxpool2d.cuh's kernel).
// forward, direct tiled: one block per (image, tile of block outputs, 8 output channels);
//           the input tile (with its zero padding) and the 8 channels' weights are staged in
//           shared memory a chunk of input channels at a time; each thread computes one
//           conv output for the 8 channels; bias, activation and pool are applied from
//           shared memory, so only the block output and argmax reach global memory.
// forward, 3x3 quad block and the band weight gradient: detail/conv_fast.cuh.
// backward: the gradient at the conv output (dz) is made first when a pool or an
//           activation lies between (scattered back through the argmax, times the
//           activation's slope), then the implicit-GEMM weight gradient (bias as one more
//           column) and the input gradient, one product per stride phase.
// Batches whose tensors reach 2^31 elements run in pieces of images (the engine indexes
// with 32 bits); the weight gradient accumulates over the pieces.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/conv2d.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/activation.hpp"
#include "gpukit/nn/conv2d.hpp"
#include "gpukit/nn/detail/conv_fast.cuh"
#include "gpukit/nn/detail/conv_igemm.cuh"
#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/maxpool2d.cuh"

#include <cstdint>

namespace gpukit::nn::detail {

struct conv_forward_args {
  conv_geometry g;
  conv_tile t;
  const float* x;
  const float* w;
  const float* b;
  float* y;
  std::int32_t* argmax;  // nullptr without a pool
};

/// KH, KW > 0 fix the kernel size at compile time (the tap loops unroll: 3x3 is the common
/// case); 0 reads it from the geometry.
template <int KH = 0, int KW = 0>
__global__ void __launch_bounds__(conv_threads) conv_forward_kernel(const conv_forward_args a) {
  constexpr int ocb = conv_channels_per_block;
  extern __shared__ __align__(16) float conv_smem[];
  const conv_geometry& g = a.g;
  const conv_tile& t = a.t;
  const epilogue_activation act = epilogue_form(g.act);  // the path takes no GELU
  float* s_in = conv_smem;
  float* s_w = conv_smem + t.input_floats;
  float* s_out = s_w + t.weight_floats;

  const int tiles = t.tiles_h * t.tiles_w;
  const int n = static_cast<int>(blockIdx.x / tiles);
  const int tile = static_cast<int>(blockIdx.x % tiles);
  const int ph0 = (tile / t.tiles_w) * t.tph, pw0 = (tile % t.tiles_w) * t.tpw;
  const int oy0 = ph0 * g.psh, ox0 = pw0 * g.psw;
  const int iy0 = oy0 * g.stride - g.pad_h, ix0 = ox0 * g.stride - g.pad_w;
  const int oc0 = static_cast<int>(blockIdx.y) * ocb;
  const int tid = static_cast<int>(threadIdx.x);
  const int cy = tid / t.ctw, cx = tid % t.ctw;
  const bool active = tid < t.cth * t.ctw && oy0 + cy < g.oh && ox0 + cx < g.ow;
  const int in_tile = t.ith * t.itw;
  const int in_stride = (in_tile + 3) / 4 * 4;
  const int kh = KH > 0 ? KH : g.kh, kw = KW > 0 ? KW : g.kw;
  const int kk = kh * kw;
  const float* xn = a.x + static_cast<long long>(n) * g.ic * g.h * g.w;

  float acc[ocb];
#pragma unroll
  for (int o = 0; o < ocb; ++o) acc[o] = 0.0f;

  for (int ic0 = 0; ic0 < g.ic; ic0 += t.icb) {
    const int icn = ::min(t.icb, g.ic - ic0);
    __syncthreads();  // the previous chunk is consumed
    for (int e = tid; e < icn * in_tile; e += conv_threads) {
      const int c = e / in_tile, r = e - c * in_tile;
      const int yy = r / t.itw, xx = r - yy * t.itw;
      const int gy = iy0 + yy, gx = ix0 + xx;
      float v = 0.0f;
      if (gy >= 0 && gy < g.h && gx >= 0 && gx < g.w) v = xn[(static_cast<long long>(ic0 + c) * g.h + gy) * g.w + gx];
      s_in[c * in_stride + r] = v;
    }
    // Weights as [channel][ky][kx][8 output channels]: one float4 pair per tap.
    for (int e = tid; e < icn * kk * ocb; e += conv_threads) {
      const int o = e % ocb, r = e / ocb;
      const int oc = oc0 + o;
      s_w[e] = oc < g.oc ? a.w[(static_cast<long long>(oc) * g.ic + ic0) * kk + r] : 0.0f;
    }
    __syncthreads();
    if (active) {
      for (int c = 0; c < icn; ++c) {
        const float* in_c = s_in + c * in_stride + cy * g.stride * t.itw + cx * g.stride;
        const float* w_c = s_w + c * kk * ocb;
#pragma unroll
        for (int ky = 0; ky < kh; ++ky) {
          const float* in_row = in_c + ky * t.itw;
          const float* w_row = w_c + ky * kw * ocb;
#pragma unroll
          for (int kx = 0; kx < kw; ++kx) {
            const float v = in_row[kx];
            const float4 w0 = *reinterpret_cast<const float4*>(w_row + kx * ocb);
            const float4 w1 = *reinterpret_cast<const float4*>(w_row + kx * ocb + 4);
            acc[0] = fmaf(v, w0.x, acc[0]);
            acc[1] = fmaf(v, w0.y, acc[1]);
            acc[2] = fmaf(v, w0.z, acc[2]);
            acc[3] = fmaf(v, w0.w, acc[3]);
            acc[4] = fmaf(v, w1.x, acc[4]);
            acc[5] = fmaf(v, w1.y, acc[5]);
            acc[6] = fmaf(v, w1.z, acc[6]);
            acc[7] = fmaf(v, w1.w, acc[7]);
          }
        }
      }
    }
  }

  if (active) {
#pragma unroll
    for (int o = 0; o < ocb; ++o) {
      const int oc = oc0 + o;
      const float z = acc[o] + (oc < g.oc ? a.b[oc] : 0.0f);
      s_out[(o * t.cth + cy) * t.ctw + cx] = apply(act, z);
    }
  }
  __syncthreads();

  // Pool the conv tile (a 1x1 window with stride 1 without a pool: a copy).
  const int tile_out = t.tph * t.tpw;
  for (int e = tid; e < ocb * tile_out; e += conv_threads) {
    const int o = e / tile_out, r = e - o * tile_out;
    const int py = r / t.tpw, px = r - py * t.tpw;
    const int oc = oc0 + o, gy = ph0 + py, gx = pw0 + px;
    if (oc >= g.oc || gy >= g.ph || gx >= g.pw) continue;
    int by, bx;  // in the tile's conv-output rows and columns
    const float best = window_max(s_out + o * t.cth * t.ctw, t.ctw, py * g.psh, px * g.psw, g.pkh, g.pkw, by, bx);
    const long long out = ((static_cast<long long>(n) * g.oc + oc) * g.ph + gy) * g.pw + gx;
    a.y[out] = best;
    if (a.argmax != nullptr) a.argmax[out] = pack_position(oy0 + by, ox0 + bx);
  }
}

/// dz (conv-output shape) from the block-output gradient: through the activation, and back
/// to the argmax when pooled (dz zeroed first; atomics only when windows overlap).
template <class = void>
__global__ void conv_scatter_kernel(const conv_geometry g, const float* y, const std::int32_t* argmax,
                                    const float* dy, float* dz, bool overlapping) {
  const long long out_plane = static_cast<long long>(g.ph) * g.pw, conv_plane = static_cast<long long>(g.oh) * g.ow;
  GPUKIT_NN_GRID_STRIDE(i, g.output_size()) {
    float s = dy[i];
    if (y != nullptr) s *= activation_slope(g.act, y[i]);
    if (argmax == nullptr) {
      dz[i] = s;
      continue;
    }
    const std::int32_t p = argmax[i];
    const long long dst = (i / out_plane) * conv_plane +
                          static_cast<long long>(static_cast<std::uint32_t>(p) >> 16) * g.ow + (p & 0xffff);
    if (overlapping) {
      atomicAdd(dz + dst, s);
    } else {
      dz[dst] = s;
    }
  }
}

inline void conv_direct_forward(const cuda_executor& exec, const conv_geometry& g, const conv_tile& t, const float* x,
                                const float* w, const float* b, float* y, std::int32_t* argmax) {
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>(static_cast<long long>(g.n) * t.tiles_h * t.tiles_w),
                  static_cast<unsigned>((g.oc + conv_channels_per_block - 1) / conv_channels_per_block));
  cfg.block = dim3(conv_threads);
  cfg.shared_bytes = t.shared_bytes();
  const conv_forward_args args{g, t, x, w, b, y, argmax};
  if (g.kh == 3 && g.kw == 3) {
    launch(conv_forward_kernel<3, 3>, cfg, exec.stream(), args);
  } else {
    launch(conv_forward_kernel<0, 0>, cfg, exec.stream(), args);
  }
}

/// The pool over a conv output already activated (the implicit GEMM's pool pass).
inline pool_geometry pool_of_conv(const conv_geometry& g) {
  pool_geometry p;
  p.n = g.n, p.c = g.oc, p.h = g.oh, p.w = g.ow;
  p.kh = g.pkh, p.kw = g.pkw, p.sh = g.psh, p.sw = g.psw, p.ph = g.ph, p.pw = g.pw;
  return p;
}

/// Calls f(piece geometry, piece path, first image) for each piece of images the path
/// launches at once (one piece unless the batch reaches 2^31 elements per tensor).
template <class F>
void for_each_piece(const conv_geometry& g, const conv2d_path& path, F f) {
  if (path.piece_images == 0) return f(g, path, 0);
  for (int first = 0; first < g.n; first += path.piece_images) {
    conv_geometry gp = g;
    gp.n = std::min(path.piece_images, g.n - first);
    f(gp, gp.n == path.piece_images ? path : choose_conv2d_path(gp, path.target, path.want_dx, path.request), first);
  }
}

inline void conv_forward_impl(const cuda_executor& exec, const conv_geometry& g, const conv2d_path& path,
                              const float* x, const float* w, const float* b, float* y, std::int32_t* argmax) {
  const device_scratch scratch(exec, path.forward_scratch);
  for_each_piece(g, path, [&](const conv_geometry& gp, const conv2d_path& pp, int first) {
    const float* xp = x + static_cast<long long>(first) * g.ic * g.h * g.w;
    float* yp = y + static_cast<long long>(first) * g.oc * g.ph * g.pw;
    std::int32_t* ap = argmax != nullptr ? argmax + static_cast<long long>(first) * g.oc * g.ph * g.pw : nullptr;
    switch (pp.forward) {
      case conv_forward_kind::quad: return conv_quad_forward(exec, gp, pp.quad, xp, w, b, yp, ap);
      case conv_forward_kind::direct: return conv_direct_forward(exec, gp, pp.direct, xp, w, b, yp, ap);
      default: break;
    }
    float* conv_out = pp.pool_pass ? scratch.at<float>(pp.conv_out_at) : yp;
    run_igemm(make_fprop_map(gp, xp, w, b, conv_out), pp.forward_gemm, scratch.at<float>(pp.forward_partial_at),
              exec.stream());
    if (pp.activation_pass != activation::none) {
      const std::size_t count = static_cast<std::size_t>(gp.n) * gp.oc * gp.oh * gp.ow;
      gpukit::transform(exec, device_span<float>{conv_out, count}, activate_fn{pp.activation_pass},
                        device_span<const float>{conv_out, count});
    }
    if (pp.pool_pass) pool_forward_impl(exec, pool_of_conv(gp), static_cast<const float*>(conv_out), yp, ap);
  });
}

inline void conv_backward_impl(const cuda_executor& exec, const conv_geometry& g, const conv2d_path& path,
                               const float* x, const float* w, const float* y, const std::int32_t* argmax,
                               const float* dy, float* dw, float* db, float* dx,
                               const conv_backward_extras<float>& extra) {
  const device_scratch scratch(exec, path.backward_scratch);
  const float* act_y = g.act != activation::none ? y : nullptr;
  for_each_piece(g, path, [&](const conv_geometry& gp, const conv2d_path& pp, int first) {
    const long long in_at = static_cast<long long>(first) * g.ic * g.h * g.w;
    const long long out_at = static_cast<long long>(first) * g.oc * g.ph * g.pw;
    const float* xp = x + in_at;
    const float* dyp = dy + out_at;
    const float* yp = act_y != nullptr ? act_y + out_at : nullptr;
    const std::int32_t* ap = argmax != nullptr ? argmax + out_at : nullptr;
    float* partials = scratch.at<float>(pp.wgrad_partial_at);
    const bool accumulate = extra.accumulate || first > 0;

    const float* dz = dyp;
    if (pp.needs_dz) {
      float* buffer = scratch.at<float>(pp.dz_at);
      if (gp.pooled)
        GPUKIT_CUDA_TRY(cudaMemsetAsync(buffer, 0, static_cast<std::size_t>(gp.conv_size()) * sizeof(float), exec.stream()));
      const bool overlapping = gp.pooled && (gp.pkh > gp.psh || gp.pkw > gp.psw);
      launch(conv_scatter_kernel<>, grid_for(static_cast<std::size_t>(gp.output_size())), exec.stream(), gp, yp, ap,
             dyp, buffer, overlapping);
      dz = buffer;
    }
    if (pp.wgrad == conv_wgrad_kind::band) {
      conv_wgrad_band(exec, gp, pp.band, xp, yp, ap, dyp, partials, dw, db, accumulate);
    } else {
      run_igemm(make_wgrad_map(gp, dz, xp, dw, db, accumulate), pp.wgrad_gemm, partials, exec.stream());
    }
    if (dx == nullptr) return;
    float* dxp = dx + in_at;
    const float* act_in = extra.dx_act_y != nullptr ? extra.dx_act_y + in_at : nullptr;
    if (pp.dgrad_zero_fill)
      GPUKIT_CUDA_TRY(cudaMemsetAsync(dxp, 0, static_cast<std::size_t>(gp.input_size()) * sizeof(float), exec.stream()));
    for (const conv_dgrad_step& step : pp.dgrad)
      with_dgrad_map(gp, step.phase, w, dz, dxp, extra.dx_act, act_in, [&](const auto& map) {
        run_igemm(map, step.gemm, scratch.at<float>(pp.dgrad_partial_at), exec.stream());
      });
  });
}

}  // namespace gpukit::nn::detail
