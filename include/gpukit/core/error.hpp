// gpukit/core/error.hpp — the exception types and the checked-call macros.
//
// - gpukit::cuda_error: a CUDA runtime call failed; what() names the call, file:line and
//   the CUDA error's name and text (and, where gpukit knows it, the gpukit operation that
//   was waiting when an earlier asynchronous failure surfaced); code() returns the
//   cudaError_t, sticky() whether the CUDA context is lost (see docs/SAFETY.md).
// - gpukit::out_of_memory: an allocation failed; carries the bytes asked for and the bytes
//   the device had free at that moment.
// - std::invalid_argument: a precondition was violated; the message names the function,
//   the argument and the offending values. Thrown before anything is written.
//
// Destructors in gpukit never throw: they use GPUKIT_CUDA_TRY_NOEXCEPT.
// Host-only: compiles with a plain C++17 compiler (links against the CUDA runtime).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace gpukit {

/// A CUDA runtime call or a kernel launch failed.
class cuda_error : public std::runtime_error {
 public:
  cuda_error(cudaError_t code, const std::string& what_arg) : std::runtime_error(what_arg), code_(code) {}
  /// The CUDA error code the failing call returned.
  cudaError_t code() const noexcept { return code_; }
  /// True for the errors CUDA documents as leaving the context unusable (a kernel's
  /// illegal address, misaligned access, illegal instruction, trap or failed assert,
  /// launch failure or timeout): every later CUDA call in this process fails with the same
  /// error, and only ending the process recovers the device.
  bool sticky() const noexcept { return is_sticky(code_); }
  static bool is_sticky(cudaError_t code) noexcept {
    switch (code) {
      case cudaErrorIllegalAddress:
      case cudaErrorMisalignedAddress:
      case cudaErrorInvalidAddressSpace:
      case cudaErrorInvalidPc:
      case cudaErrorIllegalInstruction:
      case cudaErrorHardwareStackError:
      case cudaErrorAssert:
      case cudaErrorLaunchFailure:
      case cudaErrorLaunchTimeout:
        return true;
      default:
        return false;
    }
  }

 private:
  cudaError_t code_;
};

/// A device or pinned-host allocation failed. Derives from cuda_error so a handler for
/// CUDA failures catches it too; code() is cudaErrorMemoryAllocation.
class out_of_memory : public cuda_error {
 public:
  out_of_memory(std::size_t requested_bytes, std::size_t free_bytes, const std::string& what_arg)
      : cuda_error(cudaErrorMemoryAllocation, what_arg), requested_(requested_bytes), free_(free_bytes) {}
  std::size_t requested_bytes() const noexcept { return requested_; }
  /// Free device memory reported by cudaMemGetInfo right after the failure (0 if unknown).
  std::size_t free_bytes() const noexcept { return free_; }

 private:
  std::size_t requested_;
  std::size_t free_;
};

namespace detail {

inline std::string cuda_error_message(cudaError_t code, const std::string& call, const char* file, int line) {
  std::string msg = "CUDA call failed: ";
  msg += call;
  msg += " at ";
  msg += file;
  msg += ':';
  msg += std::to_string(line);
  msg += ": ";
  msg += cudaGetErrorName(code);
  msg += " (";
  msg += cudaGetErrorString(code);
  msg += ')';
  if (cuda_error::is_sticky(code))
    msg += "; this error is sticky: the CUDA context is unusable and the process must end to recover";
  return msg;
}

[[noreturn]] inline void throw_cuda_error(cudaError_t code, const std::string& call, const char* file, int line) {
  throw cuda_error(code, cuda_error_message(code, call, file, line));
}

/// Runs `f` on behalf of the gpukit operation `op` (a call that waits for its stream, so
/// where an earlier asynchronous failure surfaces) and prefixes `op` to the message of a
/// cuda_error thrown inside, so the user learns which call of theirs was waiting.
/// out_of_memory passes unchanged: it already names the allocation.
template <class F>
decltype(auto) in_operation(const char* op, F&& f) {
  try {
    return f();
  } catch (const out_of_memory&) {
    throw;
  } catch (const cuda_error& e) {
    throw cuda_error(e.code(), std::string(op) + ": " + e.what());
  }
}

/// Throws std::invalid_argument("<where>: <message>") unless `ok`. Checked before any
/// write so that a rejected call leaves every output untouched.
inline void require(bool ok, const char* where, const std::string& message) {
  if (!ok) throw std::invalid_argument(std::string(where) + ": " + message);
}

}  // namespace detail
}  // namespace gpukit

/// Evaluates a CUDA runtime call and throws gpukit::cuda_error if it did not return
/// cudaSuccess. The error is consumed (cudaGetLastError) so a non-sticky failure does not
/// leak into the next check.
#define GPUKIT_CUDA_TRY(call)                                                  \
  do {                                                                         \
    cudaError_t gpukit_status_ = (call);                                       \
    if (gpukit_status_ != cudaSuccess) {                                       \
      (void)cudaGetLastError();                                                \
      ::gpukit::detail::throw_cuda_error(gpukit_status_, #call, __FILE__, __LINE__); \
    }                                                                          \
  } while (0)

/// For destructors and other noexcept paths: evaluates the call and discards a failure
/// (after clearing it), because throwing from a destructor would terminate the program.
#define GPUKIT_CUDA_TRY_NOEXCEPT(call)                     \
  do {                                                     \
    if ((call) != cudaSuccess) (void)cudaGetLastError();   \
  } while (0)

/// Checks the launch just issued (configuration errors, missing kernel image); `what`
/// names it in the message. Does not synchronise: a fault inside the kernel surfaces at
/// the next synchronising call.
#define GPUKIT_CHECK_LAUNCH(what)                                              \
  do {                                                                         \
    cudaError_t gpukit_status_ = cudaGetLastError();                           \
    if (gpukit_status_ != cudaSuccess)                                         \
      ::gpukit::detail::throw_cuda_error(gpukit_status_, std::string("launch of ") + (what), __FILE__, __LINE__); \
  } while (0)
