// safetensors files: a bit-exact round trip, what the writer refuses, and a damaged file of
// every kind the reader must reject with safetensors_error — truncated at every byte,
// bad header length, bad JSON, offsets out of range, overlapping or leaving gaps, shapes
// that do not match, repeated names — plus random byte flips, which must either parse
// into a consistent file or be rejected, never anything else.
#include "gpukit/io/safetensors.hpp"
#include "support/catch.hpp"
#include "train/train_support.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace gpukit;
using gpukit_test::require_throws_naming;
using io::safetensors_error;

namespace {

/// A file with header text `json` (length-prefixed, unpadded) and `data` bytes after it.
std::vector<std::uint8_t> raw_file(const std::string& json, std::size_t data_bytes) {
  std::vector<std::uint8_t> out(8 + json.size() + data_bytes, 0x5a);
  std::uint64_t n = json.size();
  for (int i = 0; i < 8; ++i, n >>= 8) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n & 0xff);
  std::memcpy(out.data() + 8, json.data(), json.size());
  return out;
}

io::safetensors_file parse(const std::vector<std::uint8_t>& bytes, const std::string& name = "mem.safetensors") {
  return io::parse_safetensors(host_span<const std::uint8_t>(bytes.data(), bytes.size()), name);
}

void require_rejected(const std::vector<std::uint8_t>& bytes, std::initializer_list<std::string> fragments) {
  require_throws_naming<safetensors_error>([&] { (void)parse(bytes, "bad.safetensors"); }, fragments);
}

std::vector<float> awkward_floats(std::size_t n, std::uint64_t salt) {
  std::vector<float> v = gpukit_test::random_values<float>(n, -1e3, 1e3, salt);
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::max(), std::numeric_limits<float>::quiet_NaN()};
  for (std::size_t i = 0; i < std::size(specials) && i < n; ++i) v[i * 7 % n] = specials[i];
  if (n > 9) {  // a NaN with a payload must survive bit for bit
    const std::uint32_t payload = 0x7fc12345u;
    std::memcpy(&v[9], &payload, 4);
  }
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("safetensors: a bit-exact round trip of shapes, values and metadata", "[train][safetensors]") {
  const auto w = awkward_floats(32 * 3 * 3 * 3, 1), b = awkward_floats(32, 2), s = awkward_floats(1, 3);
  const std::vector<float> none;
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "ünïcode ✓ \"quoted\""}};
  train_test::temp_dir dir("safetensors");
  const std::string path = dir / "t.safetensors";
  io::write_safetensors(path,
                        {{"0.weight", {32, 3, 3, 3}, make_host_span(w)},
                         {"0.bias", {32}, make_host_span(b)},
                         {"scalar", {}, make_host_span(s)},
                         {"empty", {0, 4}, make_host_span(none)}},
                        meta);
  const io::safetensors_file f = io::read_safetensors(path);
  CHECK(f.metadata() == meta);
  REQUIRE(f.tensors().size() == 4);
  CHECK(f.at("0.weight").shape == std::vector<std::size_t>{32, 3, 3, 3});
  CHECK(f.at("0.weight").dtype == "F32");
  CHECK(f.at("scalar").shape.empty());
  CHECK(f.at("empty").elements() == 0);
  CHECK(same_bits(f.f32("0.weight"), w));
  CHECK(same_bits(f.f32("0.bias"), b));
  CHECK(same_bits(f.f32("scalar"), s));
  CHECK(f.f32("empty").empty());
  // The layout of the format: little-endian length, then a space-padded header starting
  // with '{', then each tensor's bytes in order; the data starts 8-byte aligned.
  std::ifstream in(path, std::ios::binary);
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<std::size_t>(i)];
  CHECK(n % 8 == 0);
  CHECK(bytes[8] == '{');
  CHECK(bytes.size() == 8 + n + 4 * (w.size() + b.size() + s.size()));
  CHECK(std::memcmp(bytes.data() + 8 + n, w.data(), w.size() * 4) == 0);
  // No temporary file is left behind.
  CHECK_FALSE(std::ifstream(path + ".partial").good());
}

TEST_CASE("safetensors: every dtype of the format parses; f32() reads only F32", "[train][safetensors]") {
  const auto f = parse(raw_file(R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},)"
                                R"("d":{"dtype":"F64","shape":[1],"data_offsets":[6,14]},)"
                                R"("b":{"dtype":"BOOL","shape":[2],"data_offsets":[14,16]}})",
                                16));
  CHECK(f.at("h").bytes() == 6);
  CHECK(f.tensors()[1].name == "d");
  require_throws_naming<safetensors_error>([&] { (void)f.f32("h"); }, {"mem.safetensors", "'h'", "F16", "only F32"});
  require_throws_naming<safetensors_error>([&] { (void)f.f32("nope"); }, {"no tensor named 'nope'"});
}

TEST_CASE("safetensors: the writer refuses bad arguments before touching the file", "[train][safetensors][bad_input]") {
  const std::vector<float> v(6, 1.0f);
  train_test::temp_dir dir("safetensors_args");
  const std::string path = dir / "w.safetensors";
  require_throws_naming<std::invalid_argument>(
      [&] { io::write_safetensors(path, {{"a", {2, 2}, make_host_span(v)}}); }, {"'tensors'[0] 'a'", "(4 elements)", "6 values"});
  require_throws_naming<std::invalid_argument>(
      [&] { io::write_safetensors(path, {{"a", {6}, make_host_span(v)}, {"a", {6}, make_host_span(v)}}); },
      {"'tensors'[1] 'a'", "repeats"});
  require_throws_naming<std::invalid_argument>([&] { io::write_safetensors(path, {{"", {6}, make_host_span(v)}}); },
                                               {"empty name"});
  require_throws_naming<std::invalid_argument>(
      [&] { io::write_safetensors(path, {{"__metadata__", {6}, make_host_span(v)}}); }, {"reserved"});
  CHECK_FALSE(std::ifstream(path).good());
  require_throws_naming<safetensors_error>(
      [&] { io::write_safetensors("/nonexistent-dir/x.safetensors", {{"a", {6}, make_host_span(v)}}); },
      {"/nonexistent-dir/x.safetensors", "cannot create"});
  require_throws_naming<safetensors_error>([] { (void)io::read_safetensors("/nonexistent-dir/x.safetensors"); },
                                           {"/nonexistent-dir/x.safetensors", "cannot open"});
}

TEST_CASE("safetensors: a file truncated at any byte is rejected", "[train][safetensors][damaged]") {
  const auto w = awkward_floats(40, 4), b = awkward_floats(5, 5);
  const auto bytes = io::serialize_safetensors({{"w", {8, 5}, make_host_span(w)}, {"b", {5}, make_host_span(b)}},
                                               {{"format", "pt"}});
  (void)parse(bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("truncated to " << n << " of " << bytes.size() << " bytes");
    const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    REQUIRE_THROWS_AS(parse(cut), safetensors_error);
  }
  // A truncated file on disk names the file.
  train_test::temp_dir dir("safetensors_cut");
  const std::string path = dir / "cut.safetensors";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size() - 3));
  require_throws_naming<safetensors_error>([&] { (void)io::read_safetensors(path); }, {path, "'b'", "truncated"});
}

TEST_CASE("safetensors: every kind of damaged header is rejected with its reason", "[train][safetensors][damaged]") {
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  (void)parse(raw_file("{" + ok_entry + "}", 8));

  SECTION("header length") {
    auto huge = raw_file("{" + ok_entry + "}", 8);
    huge[5] = 0x10;  // 2^44 bytes of header
    require_rejected(huge, {"bad.safetensors", "header length", "exceeds the limit"});
    auto past = raw_file("{" + ok_entry + "}", 8);
    past[0] = static_cast<std::uint8_t>(past[0] + 9);
    require_rejected(past, {"header length", "runs past the end"});
  }
  SECTION("not JSON, not an object, not safetensors") {
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8), {"not valid JSON"});
    require_rejected(raw_file(R"([1,2])", 0), {"does not start with '{'"});
    require_rejected(raw_file("{" + ok_entry + "} x", 8), {"not valid JSON"});
    require_rejected(raw_file("{\"\xff\xfe\":1}", 0), {"not valid JSON"});
    require_rejected(raw_file(R"({"a":[[[[[[1]]]]]]})", 0), {"nests deeper"});
  }
  SECTION("entries") {
    require_rejected(raw_file(R"({"a":3})", 0), {"tensor 'a'", "not an object"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", 8), {"'a' has no 'data_offsets'"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
                     {"unexpected field 'x'"});
    require_rejected(raw_file(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8), {"unknown dtype 'F33'"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                     {"'a''s shape", "-2", "not a non-negative integer"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8), {"2.5"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", 8), {"3 values, not 2"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), {"end before they begin"});
    require_rejected(raw_file(R"({"__metadata__":{"k":1},)" + ok_entry + "}", 8), {"__metadata__ entry 'k'"});
    require_rejected(raw_file(R"({"__metadata__":[],)" + ok_entry + "}", 8), {"__metadata__ is not an object"});
  }
  SECTION("shape against bytes") {
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                     {"'a'", "shape [3]", "needs 12 bytes", "hold 8"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", 8),
                     {"too many elements"});
  }
  SECTION("offsets against the data section") {
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), {"ends at byte 8", "4 bytes"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                     {"'b' [4, 12) overlaps tensor 'a' [0, 8)"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                     {"bytes [0, 4)", "belong to no tensor"});
    require_rejected(raw_file("{" + ok_entry + "}", 12), {"the data section has 12 bytes", "cover 8", "trailing"});
  }
  SECTION("repeated names") {
    require_rejected(raw_file("{" + ok_entry + "," + ok_entry + "}", 8), {"repeats the key 'a'"});
    require_rejected(raw_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
                     {"repeats the key 'dtype' inside an entry"});
  }
}

TEST_CASE("safetensors: random byte flips parse consistently or are rejected, never worse", "[train][safetensors][damaged]") {
  const auto w = awkward_floats(24, 6), b = awkward_floats(3, 7);
  const auto good = io::serialize_safetensors({{"0.weight", {3, 8}, make_host_span(w)}, {"0.bias", {3}, make_host_span(b)}},
                                              {{"gpukit.architecture", R"({"layers":[]})"}});
  auto rng = gpukit_test::rng(11);
  std::size_t rejected = 0, accepted = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Mostly the length and the header, where damage changes the structure.
      const std::size_t limit = rng() % 4 == 0 ? bytes.size() : std::min<std::size_t>(bytes.size(), 8 + 200);
      bytes[rng() % limit] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    }
    try {
      const auto f = parse(bytes);
      ++accepted;
      // Whatever parsed is self-consistent: every tensor's bytes lie inside the file.
      std::size_t total = 0;
      for (const auto& t : f.tensors()) {
        REQUIRE(t.end >= t.begin);
        total += t.bytes();
        REQUIRE(f.bytes(t).size() == t.bytes());
      }
      REQUIRE(total <= bytes.size());
    } catch (const safetensors_error&) {
      ++rejected;
    }
  }
  CHECK(rejected > 1000);
  CHECK(accepted > 0);  // flips inside the data section leave a valid file
}
