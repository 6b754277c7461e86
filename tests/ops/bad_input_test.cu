// Bad input to the ops: each check (one row of docs/BAD_INPUT_MATRIX.md, see
// tests/support/bad_input.hpp) throws std::invalid_argument naming the op's argument and
// the sizes, and every output is checked untouched afterwards — on both executors. Passing
// host memory to a GPU op (or the reverse) does not compile: compile_fail.memory_space_mismatch.
#include "ops/op_harness.hpp"
#include "support/bad_input.hpp"

#include <limits>

using namespace ops_test;
using gpukit_test::bad_input;

namespace {

struct is_positive {
  GPUKIT_HOST_DEVICE bool operator()(float x) const { return x > 0.0f; }
};
struct twice {
  GPUKIT_HOST_DEVICE float operator()(float x) const { return 2.0f * x; }
};

template <class Exec, class Make, class Read>
void check_bad_input(const Exec& exec, Make make, Read read) {
  using invalid = std::invalid_argument;
  auto a = make(std::vector<float>(8, 1.0f));
  auto b = make(std::vector<float>(8, 2.0f));
  auto c = make(std::vector<float>(8, 3.0f));
  auto short_b = make(std::vector<float>(7, 2.0f));
  auto out = make(std::vector<float>(8, -5.0f));
  auto short_out = make(std::vector<float>(5, -5.0f));
  auto empty = make(std::vector<float>{});
  auto big = make(std::vector<float>(16, 3.0f));
  auto doubles = make(std::vector<double>(8, -5.0));
  const auto untouched = [&](auto& buf, auto v) {
    for (auto x : read(buf)) REQUIRE(x == v);
  };

  // lengths: every input and the output must agree
  bad_input<invalid>("gpukit::add", "'b'", "shorter than 'a'", [&] { gpukit::add(exec, a, short_b, out); },
                     {"gpukit::add", "'a' has 8", "'b' has 7", "'out' has 8"});
  bad_input<invalid>("gpukit::subtract", "'b'", "shorter than 'a'", [&] { gpukit::subtract(exec, a, short_b, out); }, {"7"});
  bad_input<invalid>("gpukit::multiply", "'b'", "shorter than 'a'", [&] { gpukit::multiply(exec, a, short_b, out); }, {"7"});
  bad_input<invalid>("gpukit::divide", "'b'", "shorter than 'a'", [&] { gpukit::divide(exec, a, short_b, out); }, {"7"});
  bad_input<invalid>("gpukit::minimum", "'b'", "shorter than 'a'", [&] { gpukit::minimum(exec, a, short_b, out); }, {"7"});
  bad_input<invalid>("gpukit::maximum", "'b'", "shorter than 'a'", [&] { gpukit::maximum(exec, a, short_b, out); }, {"7"});
  bad_input<invalid>("gpukit::pow", "'b'", "shorter than 'a'", [&] { gpukit::pow(exec, a, short_b, out); }, {"7"});
  bad_input<invalid>("gpukit::add", "'out'", "shorter than the inputs", [&] { gpukit::add(exec, a, b, short_out); }, {"'out' has 5"});
  untouched(out, -5.0f);
  untouched(short_out, -5.0f);
  bad_input<invalid>("gpukit::negate", "'out'", "shorter than 'x'", [&] { gpukit::negate(exec, a, short_out); }, {"'x' has 8"});
  bad_input<invalid>("gpukit::abs", "'out'", "shorter than 'x'", [&] { gpukit::abs(exec, a, short_out); }, {"'x' has 8"});
  bad_input<invalid>("gpukit::relu", "'out'", "shorter than 'x'", [&] { gpukit::relu(exec, a, short_out); }, {"'x' has 8"});
  bad_input<invalid>("gpukit::sqrt", "'out'", "shorter than 'x'", [&] { gpukit::sqrt(exec, a, short_out); }, {"'x' has 8"});
  bad_input<invalid>("gpukit::exp", "'out'", "shorter than 'x'", [&] { gpukit::exp(exec, a, short_out); },
                     {"gpukit::exp", "'out' has 5", "'x' has 8"});
  bad_input<invalid>("gpukit::log", "'out'", "shorter than 'x'", [&] { gpukit::log(exec, a, short_out); }, {"'x' has 8"});
  bad_input<invalid>("gpukit::sigmoid", "'out'", "shorter than 'x'", [&] { gpukit::sigmoid(exec, a, short_out); }, {"'x' has 8"});
  bad_input<invalid>("gpukit::tanh", "'out'", "shorter than 'x'", [&] { gpukit::tanh(exec, a, short_out); }, {"'x' has 8"});
  bad_input<invalid>("gpukit::scale", "'out'", "shorter than 'x'", [&] { gpukit::scale(exec, 2.0f, a, short_out); }, {"'x' has 8"});
  bad_input<invalid>("gpukit::copy", "'in'", "shorter than 'out'", [&] { gpukit::copy(exec, short_b, out); },
                     {"gpukit::copy", "'in' has 7", "'out' has 8"});
  bad_input<invalid>("gpukit::cast", "'in'", "shorter than 'out'", [&] { gpukit::cast(exec, short_b, doubles); }, {"'in' has 7"});
  bad_input<invalid>("gpukit::transform", "'input 1'", "shorter than 'input 0'",
                     [&] { gpukit::transform(exec, out, gpukit::fn::plus{}, a, short_b); }, {"'input 1' has 7"});
  bad_input<invalid>("gpukit::axpy", "'x'", "shorter than 'y'", [&] { gpukit::axpy(exec, 2.0f, short_b, out); },
                     {"gpukit::axpy", "'x' has 7", "'y' has 8"});
  bad_input<invalid>("gpukit::fma", "'c'", "shorter than 'a' and 'b'", [&] { gpukit::fma(exec, a, b, short_b, out); },
                     {"gpukit::fma", "'c' has 7"});
  untouched(out, -5.0f);
  untouched(short_out, -5.0f);
  untouched(doubles, -5.0);

  // parameters
  bad_input<invalid>("gpukit::clamp", "'lo'", "above 'hi'", [&] { gpukit::clamp(exec, a, 3.0f, 1.0f, out); },
                     {"gpukit::clamp", "'hi'", "3.0", "1.0"});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  bad_input<invalid>("gpukit::clamp", "'lo'", "NaN", [&] { gpukit::clamp(exec, a, nan, 1.0f, out); }, {"nan"});
  bad_input<invalid>("gpukit::clamp", "'hi'", "NaN", [&] { gpukit::clamp(exec, a, 0.0f, nan, out); }, {"nan"});
  untouched(out, -5.0f);

  // overlap: an output shifted by one element inside the same allocation
  auto whole = gpukit::detail::output_for<Exec>(big);
  auto first = whole.subspan(0, 8), shifted = whole.subspan(1, 8);
  bad_input<invalid>("gpukit::add", "'out'", "overlaps 'a' without being it", [&] { gpukit::add(exec, first, b, shifted); },
                     {"gpukit::add", "'out' overlaps argument 'a'"});
  bad_input<invalid>("gpukit::add", "'out'", "overlaps 'b' without being it", [&] { gpukit::add(exec, a, first, shifted); },
                     {"'out' overlaps argument 'b'"});
  bad_input<invalid>("gpukit::exp", "'out'", "overlaps 'x' without being it", [&] { gpukit::exp(exec, first, shifted); },
                     {"'out' overlaps argument 'x'"});
  bad_input<invalid>("gpukit::fma", "'out'", "overlaps 'c' without being it", [&] { gpukit::fma(exec, a, b, first, shifted); },
                     {"'out' overlaps argument 'c'"});
  bad_input<invalid>("gpukit::axpy", "'y'", "overlaps 'x' without being it", [&] { gpukit::axpy(exec, 2.0f, first, shifted); },
                     {"'y' overlaps argument 'x'"});
  bad_input<invalid>("gpukit::copy", "'out'", "overlaps 'in' without being it", [&] { gpukit::copy(exec, first, shifted); },
                     {"'out' overlaps argument 'in'"});
  bad_input<invalid>("gpukit::transform", "'out'", "overlaps 'input 0' without being it",
                     [&] { gpukit::transform(exec, shifted, twice{}, first); }, {"'out' overlaps argument 'input 0'"});
  bad_input<invalid>("gpukit::inclusive_scan", "'out'", "overlaps 'in' without being it",
                     [&] { gpukit::inclusive_scan(exec, first, shifted); }, {"gpukit::inclusive_scan", "'out' overlaps argument 'in'"});
  bad_input<invalid>("gpukit::exclusive_scan", "'out'", "overlaps 'in' without being it",
                     [&] { gpukit::exclusive_scan(exec, first, shifted, 0.0f); }, {"'out' overlaps argument 'in'"});
  untouched(big, 3.0f);

  // a moved-from buffer is a buffer of no elements
  auto moved = gpukit::make_buffer<float>(exec, 8);
  auto owner = std::move(moved);
  bad_input<invalid>("gpukit::add", "'a'", "a moved-from buffer", [&] { gpukit::add(exec, moved, b, out); }, {"'a' has 0"});
  bad_input<invalid>("gpukit::add", "'out'", "a moved-from buffer", [&] { gpukit::add(exec, a, b, moved); }, {"'out' has 0"});
  bad_input<invalid>("gpukit::max", "'x'", "a moved-from buffer", [&] { (void)gpukit::max(exec, moved); }, {"empty"});
  untouched(out, -5.0f);

  // reductions with no defined answer, and mismatched pairs
  bad_input<invalid>("gpukit::min", "'x'", "empty", [&] { (void)gpukit::min(exec, empty); }, {"gpukit::min", "is empty"});
  bad_input<invalid>("gpukit::max", "'x'", "empty", [&] { (void)gpukit::max(exec, empty); }, {"gpukit::max", "is empty"});
  bad_input<invalid>("gpukit::argmin", "'x'", "empty", [&] { (void)gpukit::argmin(exec, empty); }, {"gpukit::argmin"});
  bad_input<invalid>("gpukit::argmax", "'x'", "empty", [&] { (void)gpukit::argmax(exec, empty); }, {"gpukit::argmax"});
  bad_input<invalid>("gpukit::mean", "'x'", "empty", [&] { (void)gpukit::mean(exec, empty); }, {"gpukit::mean"});
  bad_input<invalid>("gpukit::dot", "'b'", "shorter than 'a'", [&] { (void)gpukit::dot(exec, a, short_b); },
                     {"gpukit::dot", "'a' has 8", "'b' has 7"});
  bad_input<invalid>("gpukit::inclusive_scan", "'out'", "shorter than 'in'", [&] { gpukit::inclusive_scan(exec, a, short_out); },
                     {"'in' has 8", "'out' has 5"});
  bad_input<invalid>("gpukit::exclusive_scan", "'out'", "shorter than 'in'",
                     [&] { gpukit::exclusive_scan(exec, a, short_out, 0.0f); }, {"gpukit::exclusive_scan", "'in' has 8"});
  untouched(short_out, -5.0f);

  // *_async results: exactly one element of the result type, outside the inputs
  auto i64 = make(std::vector<std::int64_t>(2, -5));
  auto pairs = gpukit::make_buffer<gpukit::value_index<float>>(exec, 2);
  bad_input<invalid>("gpukit::sum_async", "'result'", "8 elements, not 1", [&] { gpukit::sum_async(exec, a, out); },
                     {"gpukit::sum_async", "8"});
  bad_input<invalid>("gpukit::product_async", "'result'", "8 elements, not 1", [&] { gpukit::product_async(exec, a, out); }, {"8"});
  bad_input<invalid>("gpukit::min_async", "'result'", "8 elements, not 1", [&] { gpukit::min_async(exec, a, out); }, {"8"});
  bad_input<invalid>("gpukit::max_async", "'result'", "8 elements, not 1", [&] { gpukit::max_async(exec, a, out); }, {"8"});
  bad_input<invalid>("gpukit::dot_async", "'result'", "8 elements, not 1", [&] { gpukit::dot_async(exec, a, b, out); }, {"8"});
  bad_input<invalid>("gpukit::count_if_async", "'result'", "2 elements, not 1",
                     [&] { gpukit::count_if_async(exec, a, is_positive{}, i64); }, {"2"});
  bad_input<invalid>("gpukit::transform_reduce_async", "'result'", "8 elements, not 1",
                     [&] { gpukit::transform_reduce_async(exec, a, 0.0f, gpukit::fn::plus{}, twice{}, out); }, {"8"});
  bad_input<invalid>("gpukit::argmin_async", "'result'", "2 elements, not 1", [&] { gpukit::argmin_async(exec, a, pairs); }, {"2"});
  bad_input<invalid>("gpukit::argmax_async", "'result'", "2 elements, not 1", [&] { gpukit::argmax_async(exec, a, pairs); }, {"2"});
  bad_input<invalid>("gpukit::min_async", "'x'", "empty", [&] { gpukit::min_async(exec, empty, first.subspan(0, 1)); }, {"is empty"});
  bad_input<invalid>("gpukit::argmax_async", "'x'", "empty", [&] { gpukit::argmax_async(exec, empty, pairs); }, {"is empty"});
  bad_input<invalid>("gpukit::dot_async", "'b'", "shorter than 'a'", [&] { gpukit::dot_async(exec, a, short_b, first.subspan(0, 1)); },
                     {"'b' has 7"});
  const auto inside = first.subspan(3, 1);  // one element inside the input `first`
  bad_input<invalid>("gpukit::sum_async", "'result'", "inside 'x'", [&] { gpukit::sum_async(exec, first, inside); },
                     {"overlaps argument 'x'"});
  bad_input<invalid>("gpukit::product_async", "'result'", "inside 'x'", [&] { gpukit::product_async(exec, first, inside); },
                     {"overlaps argument 'x'"});
  bad_input<invalid>("gpukit::min_async", "'result'", "inside 'x'", [&] { gpukit::min_async(exec, first, inside); },
                     {"overlaps argument 'x'"});
  bad_input<invalid>("gpukit::max_async", "'result'", "inside 'x'", [&] { gpukit::max_async(exec, first, inside); },
                     {"overlaps argument 'x'"});
  bad_input<invalid>("gpukit::dot_async", "'result'", "inside 'b'", [&] { gpukit::dot_async(exec, a, first, inside); },
                     {"overlaps argument 'b'"});
  bad_input<invalid>("gpukit::transform_reduce_async", "'result'", "inside 'x'",
                     [&] { gpukit::transform_reduce_async(exec, first, 0.0f, gpukit::fn::plus{}, twice{}, inside); },
                     {"overlaps argument 'x'"});
  untouched(out, -5.0f);
  untouched(i64, std::int64_t{-5});
  untouched(big, 3.0f);

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
      cpu_executor{}, [](auto v) { return v; }, [](const auto& v) { return v; });
}

TEST_CASE("bad input on the GPU is refused and writes nothing", "[gpu][ops][bad_input]") {
  stream s;
  check_bad_input(
      cuda_executor(s.view()), [&](const auto& v) { return device_buffer<typename std::decay_t<decltype(v)>::value_type>::from_host(v, s); },
      [&](const auto& d) { return d.to_host(s); });
}
