// Bad input to core: buffers, copies, views, executors, launch configurations, streams and
// events. Each check is one row of docs/BAD_INPUT_MATRIX.md (tests/support/bad_input.hpp);
// after each, the outputs it could have written are checked untouched. The CPU case needs
// no GPU (every check here happens before any CUDA call).
#include "gpukit/core.cuh"
#include "support/bad_input.hpp"

#include <limits>
#include <utility>
#include <vector>

using namespace gpukit;
using gpukit_test::bad_input;

namespace {
__global__ void noop(int) {}

template <class T>
void require_all(const std::vector<T>& v, T value) {
  for (const T& x : v) REQUIRE(x == value);
}
}  // namespace

TEST_CASE("bad input to core is refused on the host, nothing written", "[core][bad_input]") {
  const std::size_t too_many = std::numeric_limits<std::size_t>::max() / 4;
  bad_input<std::invalid_argument>("gpukit::host_buffer", "'count'", "overflows the byte size",
                                   [&] { host_buffer<double> b(too_many); }, {std::to_string(too_many)});
  bad_input<std::invalid_argument>("gpukit::device_buffer", "'count'", "overflows the byte size",
                                   [&] { device_buffer<double> b(too_many); }, {std::to_string(too_many)});
  bad_input<std::invalid_argument>("gpukit::cpu_executor", "'threads'", "negative", [] { cpu_executor e(-1); }, {"-1"});
  bad_input<std::invalid_argument>("gpukit::device_properties", "'id'", "negative", [] { (void)device_properties(-1); },
                                   {"-1"});
  bad_input<std::invalid_argument>("gpukit::device_properties", "'id'", "not a device (= device_count())",
                                   [] { (void)device_properties(device_count()); }, {std::to_string(device_count())});
  bad_input<std::invalid_argument>("gpukit::cuda_executor", "'device'", "not a device",
                                   [] { cuda_executor e(stream_view{}, device_count() + 3); },
                                   {std::to_string(device_count() + 3)});

  std::vector<int> image(24, 0);
  bad_input<std::invalid_argument>("gpukit::make_view2d", "'s'", "size is not width x height",
                                   [&] { (void)make_view2d(make_host_span(image), 5, 4); }, {"24", "width 5", "height 4"});
  bad_input<std::invalid_argument>("gpukit::make_view4d", "'s'", "size is not n*c*h*w",
                                   [&] { (void)make_view4d(make_host_span(image), 2, 3, 2, 3); }, {"24", "2*3*2*3", "36"});

  std::vector<int> src(10, 7), dst(9, -1);
  bad_input<std::invalid_argument>("gpukit::transfer", "'dst'", "size differs from 'src'",
                                   [&] { transfer(make_host_span(dst), make_host_span(std::as_const(src))); },
                                   {"9", "'src' 10"});
  require_all(dst, -1);
  bad_input<std::invalid_argument>("gpukit::transfer_async", "'dst'", "size differs from 'src'",
                                   [&] { transfer_async(make_host_span(dst), make_host_span(std::as_const(src)), {}); },
                                   {"9", "'src' 10"});
  require_all(dst, -1);
  std::vector<int> both(12);
  for (std::size_t i = 0; i < both.size(); ++i) both[i] = static_cast<int>(i);
  const auto whole = make_host_span(both);
  bad_input<std::invalid_argument>("gpukit::transfer", "'src'", "overlaps 'dst'",
                                   [&] { transfer(whole.subspan(2, 8), host_span<const int>(whole.subspan(0, 8))); },
                                   {"'dst'", "overlap"});
  bad_input<std::invalid_argument>("gpukit::transfer_async", "'src'", "overlaps 'dst'",
                                   [&] { transfer_async(whole.subspan(0, 8), host_span<const int>(whole.subspan(1, 8)), {}); },
                                   {"'dst'", "overlap"});
  for (std::size_t i = 0; i < both.size(); ++i) REQUIRE(both[i] == static_cast<int>(i));

  bad_input<std::invalid_argument>("gpukit::config_for_elements", "'block_size'", "0",
                                   [] { (void)config_for_elements(100, noop, 0); }, {"= 0"});
  bad_input<std::invalid_argument>("gpukit::config_for_elements", "'block_size'", "above 1024",
                                   [] { (void)config_for_elements(100, noop, 1025); }, {"1025"});
  bad_input<std::invalid_argument>("gpukit::config_for_elements", "'items_per_thread'", "0",
                                   [] { (void)config_for_elements(100, noop, 256, 0); }, {"0"});
  bad_input<std::invalid_argument>("gpukit::config_for_image", "'block'", "3-D",
                                   [] { (void)config_for_image(64, 64, dim3(8, 8, 2)); }, {"(8,8,2)"});
  bad_input<std::invalid_argument>("gpukit::config_for_image", "'block'", "over 1024 threads",
                                   [] { (void)config_for_image(64, 64, dim3(64, 32)); }, {"(64,32,1)"});
  bad_input<std::invalid_argument>("gpukit::config_for_image", "'block'", "empty",
                                   [] { (void)config_for_image(64, 64, dim3(0, 16)); }, {"(0,16,1)"});
  bad_input<std::invalid_argument>("gpukit::config_for_image", "'height'", "more rows of blocks than a grid holds",
                                   [] { (void)config_for_image(16, std::size_t{16} << 20); }, {"'width'", "16777216"});
}

TEST_CASE("bad input to core is refused on the GPU, nothing written", "[gpu][core][bad_input]") {
  stream s;
  auto d = device_buffer<int>::from_host(std::vector<int>(8, 5), s);
  std::vector<int> seven(7, -1);
  bad_input<std::invalid_argument>("gpukit::device_buffer::copy_from_host", "'src'", "size differs from the buffer",
                                   [&] { d.copy_from_host(seven, s); }, {"7", "8"});
  bad_input<std::invalid_argument>("gpukit::device_buffer::copy_from_host_async", "'src'", "size differs from the buffer",
                                   [&] { d.copy_from_host_async(make_host_span(std::as_const(seven)), s); }, {"7", "8"});
  bad_input<std::invalid_argument>("gpukit::device_buffer::copy_to_host", "'dst'", "size differs from the buffer",
                                   [&] { d.copy_to_host(make_host_span(seven), s); }, {"7", "8"});
  bad_input<std::invalid_argument>("gpukit::device_buffer::copy_to_host_async", "'dst'", "size differs from the buffer",
                                   [&] { d.copy_to_host_async(make_host_span(seven), s); }, {"7", "8"});
  require_all(seven, -1);
  require_all(d.to_host(s), 5);

  // A moved-from buffer holds nothing: it is a buffer of size 0, refused wherever a size matters.
  device_buffer<int> moved = device_buffer<int>::from_host(std::vector<int>(8, 9), s);
  device_buffer<int> owner(std::move(moved));
  const std::vector<int> eight(8, 1);
  bad_input<std::invalid_argument>("gpukit::device_buffer::copy_from_host", "'src'", "into a moved-from buffer",
                                   [&] { moved.copy_from_host(eight, s); }, {"8", "the buffer 0"});  // NOLINT
  bad_input<std::invalid_argument>("gpukit::transfer", "'dst'", "a moved-from buffer",
                                   [&] { transfer(moved.span(), std::as_const(owner).span(), s); }, {"0", "'src' 8"});  // NOLINT
  require_all(owner.to_host(s), 9);

  device_buffer<int> nine(9, s, zero_init);
  bad_input<std::invalid_argument>("gpukit::transfer", "'dst'", "device size differs from device 'src'",
                                   [&] { transfer(nine.span(), std::as_const(d).span(), s); }, {"9", "'src' 8"});
  bad_input<std::invalid_argument>("gpukit::transfer", "'dst'", "device size differs from host 'src'",
                                   [&] { transfer(nine.span(), make_host_span(eight), s); }, {"9", "'src' 8"});
  require_all(nine.to_host(s), 0);
  bad_input<std::invalid_argument>("gpukit::transfer", "'src'", "overlaps 'dst' in one device allocation",
                                   [&] { transfer(d.span().subspan(0, 4), device_span<const int>(d.span().subspan(3, 4)), s); },
                                   {"'dst'", "overlap"});
  require_all(d.to_host(s), 5);

  stream gone;
  stream taker(std::move(gone));
  bad_input<std::logic_error>("gpukit::stream::view", "stream", "moved from", [&] { (void)gone.view(); },  // NOLINT
                              {"moved from"});
  bad_input<std::logic_error>("gpukit::stream::synchronize", "stream", "moved from",
                              [&] { gone.synchronize(); }, {"moved from"});  // NOLINT
  event done;
  event done_owner(std::move(done));
  bad_input<std::logic_error>("gpukit::event::record", "event", "moved from", [&] { done.record(s); },  // NOLINT
                              {"moved from"});
  bad_input<std::logic_error>("gpukit::event::elapsed_ms", "event", "moved from",
                              [&] { (void)event::elapsed_ms(done, done_owner); }, {"moved from"});  // NOLINT

  stream other;
  workspace ws(other.view());
  bad_input<std::invalid_argument>("gpukit::cuda_executor", "'ws'", "belongs to another stream than 's'",
                                   [&] { cuda_executor e(s.view(), ws); }, {"'s'"});
  CHECK(ws.capacity() == 0);
  s.synchronize();
}

// [api_error]: these make a CUDA call fail on purpose (see scripts/test-gpu-sanitized).
TEST_CASE("inputs only the device can refuse: too much memory, an impossible launch", "[gpu][core][bad_input][api_error]") {
  stream s;
  const std::size_t too_many = device_memory_info().total_bytes + (std::size_t{1} << 30);
  bad_input<out_of_memory>("gpukit::device_buffer", "bytes", "more than the device holds",
                           [&] { device_buffer<unsigned char> b(too_many, s); }, {std::to_string(too_many), "free of"});
  launch_config bad;
  bad.grid = dim3(1);
  bad.block = dim3(1025);
  bad_input<cuda_error>("gpukit::launch", "block (1025,1,1)", "more threads per block than a block may have",
                        [&] { launch(noop, bad, s, 1); }, {"launch of kernel"});
  auto after = device_buffer<int>::from_host(std::vector<int>(4, 2), s);
  require_all(after.to_host(s), 2);
}
