// gpukit/core/config.hpp — version and the attribute macros every gpukit header uses.
//
// Host-only: compiles with a plain C++17 compiler. Under nvcc the macros add the CUDA
// execution-space attributes; under g++/clang they expand to nothing, so the same
// per-element functions serve the CPU fallback and the GPU kernels.
#pragma once

#define GPUKIT_VERSION_MAJOR 0
#define GPUKIT_VERSION_MINOR 1
#define GPUKIT_VERSION_PATCH 0

#if defined(__CUDACC__)
#define GPUKIT_HOST_DEVICE __host__ __device__
#define GPUKIT_DEVICE __device__
#define GPUKIT_FORCEINLINE __forceinline__
#else
#define GPUKIT_HOST_DEVICE
#define GPUKIT_DEVICE
#define GPUKIT_FORCEINLINE inline
#endif

// True while compiling device code (the second nvcc pass); host code and g++ see 0.
#if defined(__CUDA_ARCH__)
#define GPUKIT_DEVICE_PASS 1
#else
#define GPUKIT_DEVICE_PASS 0
#endif

namespace gpukit::detail {
// Lets a static_assert in a template fire only when the template is instantiated.
template <class...>
inline constexpr bool always_false = false;
}  // namespace gpukit::detail
