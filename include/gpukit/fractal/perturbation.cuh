// gpukit/fractal/perturbation.cuh — the GPU path of perturbed deep-zoom renders: the
// implementations behind escape_time, count_iterations and render_rgb for plans that
// perturb (deep_zoom.hpp), which perturbation.hpp includes when nvcc compiles it.
//
// One thread per pixel runs the CPU's own per-pixel function (perturbation.hpp), so the
// counts equal the CPU's bit for bit. A warp covers 32 neighbouring pixels of a row: their
// deltas are alike, so they take the same approximation steps and read the same orbit
// entries (broadcast loads, kept in L1). The reference orbit and the tables are copied to
// the device on the executor's stream for each call and freed there after the kernel
// (from pageable memory: each copy returns once the runtime has staged it).
//
// Kernels: one per delta form × output kind (uint8, uint16, uint32, float, iterations
// performed) and one colour kernel per delta form — twelve in all.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/fractal/perturbation.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include only gpukit's .hpp headers"
#endif

#include "gpukit/core.cuh"
#include "gpukit/fractal/perturbation.hpp"

#include <cstdint>
#include <type_traits>

namespace gpukit::fractal::detail {

/// 32 × 4 threads: a warp is one row of 32 pixels.
inline constexpr unsigned perturbation_block_x = 32;
inline constexpr unsigned perturbation_block_y = 4;

/// A plan's reference in device memory, and the view of it the kernels read. The buffers
/// are freed on the stream they were made on, after the work queued there.
struct device_reference {
  device_buffer<dcomplex> orbit;
  device_buffer<xcomplex> orbit_x;
  device_buffer<bla_step> bla;
  device_buffer<bla_step_x> bla_x;
  perturbation_view view;
};

inline device_reference upload(const perturbation_reference& ref, stream_view s) {
  device_reference d{device_buffer<dcomplex>::from_host(ref.orbit, s),
                     device_buffer<xcomplex>::from_host(ref.extended ? ref.orbit_x : std::vector<xcomplex>{}, s),
                     device_buffer<bla_step>::from_host(ref.bla.steps, s),
                     device_buffer<bla_step_x>::from_host(ref.extended ? ref.bla.steps_x : std::vector<bla_step_x>{}, s),
                     host_view(ref)};
  d.view.orbit = d.orbit.data();
  d.view.orbit_x = ref.extended ? d.orbit_x.data() : nullptr;
  d.view.bla = d.bla.data();
  d.view.bla_x = ref.extended ? d.bla_x.data() : nullptr;
  return d;
}

template <bool Extended, class Out, bool Work>
__global__ void __launch_bounds__(perturbation_block_x* perturbation_block_y)
    perturbation_kernel(const perturbation_view v, Out* __restrict__ out) {
  constexpr bool smooth = std::is_same_v<Out, float> && !Work;
  const std::uint32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const std::uint32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= v.width || y >= v.height) return;
  const perturbed_result p = perturbed_pixel<Extended, smooth>(v, static_cast<double>(x), static_cast<double>(y));
  const std::size_t at = static_cast<std::size_t>(y) * v.width + x;
  if constexpr (Work) {
    out[at] = p.r.executed;
  } else {
    out[at] = to_output<Out>(p.r);
  }
}

template <bool Extended>
__global__ void __launch_bounds__(perturbation_block_x* perturbation_block_y)
    perturbation_colour_kernel(const perturbation_view v, palette p, std::uint32_t aa, rgb8* __restrict__ out) {
  const std::uint32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const std::uint32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= v.width || y >= v.height) return;
  out[static_cast<std::size_t>(y) * v.width + x] = perturbed_colour<Extended>(v, p, aa, x, y);
}

inline launch_config perturbation_config(const perturbation_reference& ref) {
  return config_for_image(ref.width, ref.height, dim3(perturbation_block_x, perturbation_block_y));
}

template <class Out, bool Work>
void launch_perturbation(const cuda_executor& exec, const perturbation_reference& ref, Out* out) {
  const device_reference d = upload(ref, exec.stream());
  const launch_config cfg = perturbation_config(ref);
  if (ref.extended)
    launch(perturbation_kernel<true, Out, Work>, cfg, exec.stream(), d.view, out);
  else
    launch(perturbation_kernel<false, Out, Work>, cfg, exec.stream(), d.view, out);
}  // d's buffers are freed on the stream, after the kernel

/// escape_time's GPU path for perturbed plans (arguments checked by deep_zoom.hpp).
template <class Out>
void perturbation_escape_time_impl(const cuda_executor& exec, const perturbation_reference& ref, Out* out) {
  launch_perturbation<Out, false>(exec, ref, out);
}

/// count_iterations' GPU path for perturbed plans.
inline void perturbation_count_iterations_impl(const cuda_executor& exec, const perturbation_reference& ref,
                                               std::uint32_t* out) {
  launch_perturbation<std::uint32_t, true>(exec, ref, out);
}

/// render_rgb's GPU path for perturbed plans.
inline void perturbation_render_rgb_impl(const cuda_executor& exec, const perturbation_reference& ref, palette p,
                                         std::uint32_t aa, rgb8* out) {
  const device_reference d = upload(ref, exec.stream());
  const launch_config cfg = perturbation_config(ref);
  if (ref.extended)
    launch(perturbation_colour_kernel<true>, cfg, exec.stream(), d.view, p, aa, out);
  else
    launch(perturbation_colour_kernel<false>, cfg, exec.stream(), d.view, p, aa, out);
}

}  // namespace gpukit::fractal::detail
