// Bad input to the ops: each case throws std::invalid_argument naming the op, the
// argument and the sizes, and leaves every output untouched — on both executors.
#include "ops/op_harness.hpp"

using namespace ops_test;
using gpukit_test::require_throws_naming;

namespace {

template <class Exec, class Make, class Read>
void check_bad_input(const Exec& exec, Make make, Read read) {
  auto a = make(std::vector<float>(8, 1.0f));
  auto b = make(std::vector<float>(8, 2.0f));
  auto short_b = make(std::vector<float>(7, 2.0f));
  auto out = make(std::vector<float>(8, -5.0f));
  auto short_out = make(std::vector<float>(5, -5.0f));
  auto empty = make(std::vector<float>{});
  auto big = make(std::vector<float>(16, 3.0f));
  const auto untouched = [&](auto& buf, float v) {
    for (float x : read(buf)) REQUIRE(x == v);
  };

  require_throws_naming<std::invalid_argument>([&] { gpukit::add(exec, a, short_b, out); },
                                               {"gpukit::add", "'a' has 8", "'b' has 7", "'out' has 8"});
  untouched(out, -5.0f);
  require_throws_naming<std::invalid_argument>([&] { gpukit::exp(exec, a, short_out); }, {"gpukit::exp", "'out' has 5", "'x' has 8"});
  untouched(short_out, -5.0f);
  require_throws_naming<std::invalid_argument>([&] { gpukit::fma(exec, a, b, short_b, out); }, {"gpukit::fma", "'c' has 7"});
  untouched(out, -5.0f);
  require_throws_naming<std::invalid_argument>([&] { gpukit::axpy(exec, 2.0f, short_b, out); }, {"gpukit::axpy", "'x' has 7", "'y' has 8"});
  untouched(out, -5.0f);
  require_throws_naming<std::invalid_argument>([&] { gpukit::clamp(exec, a, 3.0f, 1.0f, out); }, {"gpukit::clamp", "'lo'", "'hi'", "3.0", "1.0"});
  untouched(out, -5.0f);
  require_throws_naming<std::invalid_argument>([&] { gpukit::copy(exec, short_b, out); }, {"gpukit::copy", "'in' has 7", "'out' has 8"});
  untouched(out, -5.0f);

  // overlapping output: shifted by one element inside the same allocation
  auto whole = gpukit::detail::output_for<Exec>(big);
  auto first = whole.subspan(0, 8), shifted = whole.subspan(1, 8);
  require_throws_naming<std::invalid_argument>([&] { gpukit::add(exec, first, b, shifted); },
                                               {"gpukit::add", "'out' overlaps argument 'a'"});
  require_throws_naming<std::invalid_argument>([&] { gpukit::inclusive_scan(exec, first, shifted); },
                                               {"gpukit::inclusive_scan", "'out' overlaps argument 'in'"});
  untouched(big, 3.0f);

  // reductions with no defined answer, and mismatched pairs
  require_throws_naming<std::invalid_argument>([&] { (void)gpukit::min(exec, empty); }, {"gpukit::min", "'x' is empty"});
  require_throws_naming<std::invalid_argument>([&] { (void)gpukit::max(exec, empty); }, {"gpukit::max", "'x' is empty"});
  require_throws_naming<std::invalid_argument>([&] { (void)gpukit::argmin(exec, empty); }, {"gpukit::argmin", "'x' is empty"});
  require_throws_naming<std::invalid_argument>([&] { (void)gpukit::argmax(exec, empty); }, {"gpukit::argmax", "'x' is empty"});
  require_throws_naming<std::invalid_argument>([&] { (void)gpukit::mean(exec, empty); }, {"gpukit::mean", "'x' is empty"});
  require_throws_naming<std::invalid_argument>([&] { (void)gpukit::dot(exec, a, short_b); }, {"gpukit::dot", "'a' has 8", "'b' has 7"});
  require_throws_naming<std::invalid_argument>([&] { gpukit::exclusive_scan(exec, a, short_out, 0.0f); },
                                               {"gpukit::exclusive_scan", "'in' has 8", "'out' has 5"});
  untouched(short_out, -5.0f);
  require_throws_naming<std::invalid_argument>([&] { gpukit::sum_async(exec, a, out); }, {"gpukit::sum_async", "'result'", "8"});
  untouched(out, -5.0f);

  // what stays legal: in place, and reductions of nothing that have an answer
  gpukit::add(exec, a, b, a);
  untouched(a, 3.0f);
  CHECK(gpukit::sum(exec, empty) == 0.0f);
  CHECK(gpukit::count_if(exec, empty, gpukit::fn::relu{}) == 0);
  gpukit::add(exec, empty, empty, empty);
}

}  // namespace

TEST_CASE("bad input on the CPU is refused and writes nothing", "[ops][bad_input]") {
  check_bad_input(
      cpu_executor{}, [](std::vector<float> v) { return v; }, [](const std::vector<float>& v) { return v; });
}

TEST_CASE("bad input on the GPU is refused and writes nothing", "[gpu][ops][bad_input]") {
  stream s;
  check_bad_input(
      cuda_executor(s.view()), [&](const std::vector<float>& v) { return device_buffer<float>::from_host(v, s); },
      [&](const device_buffer<float>& d) { return d.to_host(s); });
}
