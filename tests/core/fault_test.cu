// Asynchronous kernel faults. A kernel launched through gpukit::launch writes through a bad
// pointer: the launch itself succeeds (the fault happens later, on the device), and the
// fault surfaces as gpukit::cuda_error at the next call that waits for the stream, naming
// that call and the CUDA error.
//
// Such a fault is sticky: the CUDA context is lost for the rest of the process. So each case
// is hidden ("[.]") and CTest runs each one in its own process (tests/core/CMakeLists.txt);
// the sanitizer run leaves this program out, its faults being deliberate.
#include "gpukit/core.cuh"
#include "gpukit/ops/reduce.hpp"
#include "support/catch.hpp"

#include <string>
#include <vector>

using namespace gpukit;

namespace {

// Waits until the host opens the gate, then writes through `bad`. The gate makes the test
// deterministic: the launch check runs while the kernel is still waiting, so the fault can
// only surface at the synchronising call under test.
__global__ void fault_after_gate(const volatile int* gate, device_span<int> bad) {
  while (*gate == 0) {
  }
  for (std::size_t i : grid_stride_range(bad.size())) bad[i] = 1;
}

/// Launches the faulting kernel on `s`; the launch must report nothing (an exception fails
/// the test case). Opens the gate when it goes out of scope, so a failed check cannot leave
/// the kernel spinning.
class pending_fault {
 public:
  explicit pending_fault(stream_view s) : gate_(1, host_memory::pinned, zero_init) {
    const device_span<int> bad(nullptr, 1024);  // address 0 is never mapped on the device
    // Not inside REQUIRE_NOTHROW: with Catch2 3.4 and g++ 13, nvcc's front end (cudafe++)
    // never finishes compiling that macro around this launch.
    launch(fault_after_gate, config_for_elements(bad.size(), fault_after_gate), s,
           static_cast<const volatile int*>(gate_.data()), bad);
  }
  ~pending_fault() { open(); }
  void open() { static_cast<volatile int*>(gate_.data())[0] = 1; }

 private:
  host_buffer<int> gate_;
};

/// Runs `call`, which must throw cuda_error for the fault: code cudaErrorIllegalAddress,
/// sticky, the message naming `operation` and the error. Then checks that the context is
/// indeed lost: a new allocation fails with the same sticky error, not out_of_memory.
template <class Call>
void require_fault_surfaces(Call call, const std::string& operation) {
  bool caught = false;
  try {
    call();
  } catch (const out_of_memory&) {
    FAIL("a kernel fault must not be reported as out_of_memory");
  } catch (const cuda_error& e) {
    caught = true;
    const std::string what = e.what();
    INFO("message: " << what);
    CHECK(e.code() == cudaErrorIllegalAddress);
    CHECK(e.sticky());
    CHECK(what.find(operation) != std::string::npos);
    CHECK(what.find("cudaErrorIllegalAddress") != std::string::npos);
    CHECK(what.find("sticky") != std::string::npos);
  }
  REQUIRE(caught);
  try {
    stream other;
    device_buffer<int> after(16, other);
    other.synchronize();
    FAIL("the context survived a sticky error");
  } catch (const out_of_memory&) {
    FAIL("a lost context must not be reported as out_of_memory");
  } catch (const cuda_error& e) {
    CHECK(e.code() == cudaErrorIllegalAddress);
  }
}

}  // namespace

TEST_CASE("a kernel fault surfaces at stream synchronize", "[.][gpu][fault][fault_synchronize]") {
  stream s;
  device_buffer<int> alive(8, s, zero_init);  // its destructor runs in the lost context: must not throw
  pending_fault fault(s);
  fault.open();
  require_fault_surfaces([&] { s.synchronize(); }, "cudaStreamSynchronize");
}

TEST_CASE("a kernel fault surfaces at to_host, named", "[.][gpu][fault][fault_to_host]") {
  stream s;
  device_buffer<int> d(8, s, zero_init);
  pending_fault fault(s);
  fault.open();
  require_fault_surfaces([&] { (void)d.to_host(s); }, "gpukit::device_buffer::to_host");
}

TEST_CASE("a kernel fault surfaces at a reduction returning its value, named", "[.][gpu][fault][fault_reduce]") {
  stream s;
  const auto x = device_buffer<float>::from_host(std::vector<float>(1000, 1.0f), s);
  pending_fault fault(s);
  fault.open();
  require_fault_surfaces([&] { (void)gpukit::sum(cuda_executor(s.view()), x); }, "gpukit::sum");
}
