// gpukit/io/safetensors.hpp — named tensors in the safetensors format, written and read
// with every byte of the file checked.
//
//   std::vector<float> w = ...;
//   io::write_safetensors("m.safetensors", {{"0.weight", {32, 3, 3, 3}, make_host_span(w)}}, {{"k", "v"}});
//   io::safetensors_file f = io::read_safetensors("m.safetensors");
//   std::vector<float> back = f.f32("0.weight");          // bit-exact
//
// The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON — an object whose keys are tensor names mapping to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data section) and an
// optional "__metadata__" object of string to string — then the data section, every
// tensor's bytes little-endian and row-major. The writer pads the header with spaces to a
// multiple of 8 bytes, so each tensor starts 8-byte aligned in the file.
//
// Reading checks everything before it returns, and throws safetensors_error (naming the
// file and the reason) for: a file shorter than 8 bytes; a header length above 100,000,000
// or past the end of the file; a header that is not a JSON object, holds invalid UTF-8,
// repeats a key, nests deeper than the format does, or has an entry without exactly the
// fields dtype (a known name), shape (non-negative integers) and data_offsets (two
// integers, begin <= end); an entry whose shape's element count times the dtype's size is
// not end - begin; entries that overlap, leave gaps, or do not end exactly at the end of
// the data section (a truncated or padded file). Nothing is returned unless all of it holds.
// Every dtype of the format is accepted when parsing; f32() reads F32 tensors and i64() I64
// ones, and each rejects the others by name.
//
// Writing takes F32 tensors, and I64 ones after them (counters such as BatchNorm's
// num_batches_tracked). Bad arguments (an empty, repeated or reserved name, a shape
// that does not match the values) throw std::invalid_argument before the file is touched;
// the file is written under a temporary name and renamed into place, so a failed write
// never leaves a partial file at `path` (a failure there is a safetensors_error).
//
// Host-only: compiles with a plain C++17 compiler; uses nlohmann-json (the gpukit target
// links it). Assumes a little-endian host, as the format does.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace gpukit::io {

/// A safetensors file (or buffer) that could not be read or written; what() is
/// "<file>: <reason>".
class safetensors_error : public std::runtime_error {
 public:
  safetensors_error(const std::string& file, const std::string& reason)
      : std::runtime_error(file + ": " + reason), file_(file), reason_(reason) {}
  const std::string& file() const noexcept { return file_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string file_, reason_;
};

/// The largest header the reader accepts (the reference implementation's limit).
inline constexpr std::uint64_t safetensors_max_header_bytes = 100000000;

/// Bytes per element of a safetensors dtype name, or 0 for a name the format does not have.
inline std::size_t safetensors_dtype_size(const std::string& dtype) noexcept {
  static const std::pair<const char*, std::size_t> sizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
  for (const auto& s : sizes)
    if (dtype == s.first) return s.second;
  return 0;
}

/// One tensor of a parsed file. Offsets count bytes from the start of the data section.
struct safetensors_entry {
  std::string name;
  std::string dtype;
  std::vector<std::size_t> shape;
  std::size_t begin = 0, end = 0;

  std::size_t bytes() const noexcept { return end - begin; }
  std::size_t elements() const noexcept {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
  }
};

/// A parsed, fully validated safetensors file: its metadata, its tensors (in file order)
/// and a copy of its data section.
class safetensors_file {
 public:
  /// What the file or buffer was called (for messages).
  const std::string& source() const noexcept { return source_; }
  /// The "__metadata__" map (empty if the file has none).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  /// Every tensor, ordered by where its bytes lie.
  const std::vector<safetensors_entry>& tensors() const noexcept { return tensors_; }

  /// The tensor named `name`, or nullptr.
  const safetensors_entry* find(const std::string& name) const noexcept {
    for (const auto& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  /// The tensor named `name`; safetensors_error if there is none.
  const safetensors_entry& at(const std::string& name) const {
    const safetensors_entry* t = find(name);
    if (t == nullptr) throw safetensors_error(source_, "no tensor named '" + name + "'");
    return *t;
  }
  /// The raw little-endian bytes of `t` (one of tensors()).
  host_span<const std::uint8_t> bytes(const safetensors_entry& t) const noexcept {
    return {data_.data() + t.begin, t.bytes()};
  }
  /// The values of the F32 tensor `name`; safetensors_error if it is missing or of
  /// another dtype.
  std::vector<float> f32(const std::string& name) const { return values<float>(name, "F32"); }
  /// The values of the I64 tensor `name`; safetensors_error if it is missing or of
  /// another dtype.
  std::vector<std::int64_t> i64(const std::string& name) const { return values<std::int64_t>(name, "I64"); }

 private:
  friend safetensors_file parse_safetensors(host_span<const std::uint8_t>, const std::string&);

  template <class V>
  std::vector<V> values(const std::string& name, const char* dtype) const {
    const safetensors_entry& t = at(name);
    if (t.dtype != dtype)
      throw safetensors_error(source_, "tensor '" + name + "' has dtype " + t.dtype + ", only " + dtype + " is read here");
    std::vector<V> out(t.elements());
    if (!out.empty()) std::memcpy(out.data(), data_.data() + t.begin, t.bytes());
    return out;
  }

  std::string source_;
  std::map<std::string, std::string> metadata_;
  std::vector<safetensors_entry> tensors_;
  std::vector<std::uint8_t> data_;
};

/// One F32 tensor to write: its name, shape (row-major) and values (shape's product of them).
struct safetensors_tensor {
  std::string name;
  std::vector<std::size_t> shape;
  host_span<const float> values;
};
/// One I64 tensor to write (e.g. a counter PyTorch keeps as int64: BatchNorm's
/// num_batches_tracked, shape {} for a scalar).
struct safetensors_i64_tensor {
  std::string name;
  std::vector<std::size_t> shape;
  host_span<const std::int64_t> values;
};

namespace detail {

inline std::uint64_t read_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// a · b, or false when it does not fit in size_t.
inline bool checked_mul(std::size_t a, std::size_t b, std::size_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// Tracks the keys of every open JSON object while nlohmann parses, to catch a repeated
/// key (nlohmann would silently keep the last) and nesting the format never has.
struct header_guard {
  std::vector<std::set<std::string>> open;
  std::string problem;

  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using ev = nlohmann::json::parse_event_t;
    if (!problem.empty()) return false;
    if (depth > 3) {  // {"name": {"shape": [..]}} is as deep as the format goes
      problem = "the header nests deeper than the format allows";
      return false;
    }
    if (event == ev::object_start) open.emplace_back();
    if (event == ev::object_end && !open.empty()) open.pop_back();
    if (event == ev::key && !open.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open.back().insert(key).second) {
        problem = "the header repeats the key '" + key + "'" + (depth == 1 ? "" : " inside an entry");
        return false;
      }
    }
    return true;
  }
};

inline std::vector<std::size_t> parse_sizes(const nlohmann::json& v, const std::string& what, const std::string& src) {
  if (!v.is_array()) throw safetensors_error(src, what + " is not an array");
  std::vector<std::size_t> out;
  for (const auto& e : v) {
    if (!e.is_number_unsigned())
      throw safetensors_error(src, what + " holds " + e.dump() + ", not a non-negative integer");
    const auto u = e.get<std::uint64_t>();
    if (u > std::numeric_limits<std::size_t>::max()) throw safetensors_error(src, what + " holds a value too large");
    out.push_back(static_cast<std::size_t>(u));
  }
  return out;
}

inline safetensors_entry parse_entry(const std::string& name, const nlohmann::json& v, const std::string& src) {
  const std::string who = "tensor '" + name + "'";
  if (!v.is_object()) throw safetensors_error(src, who + " is described by " + v.dump() + ", not an object");
  for (const auto& [key, value] : v.items()) {
    (void)value;
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      throw safetensors_error(src, who + " has an unexpected field '" + key + "'");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) throw safetensors_error(src, who + " has no '" + key + "'");
  safetensors_entry t;
  t.name = name;
  if (!v["dtype"].is_string()) throw safetensors_error(src, who + " has a dtype that is not a string");
  t.dtype = v["dtype"].get<std::string>();
  const std::size_t size = safetensors_dtype_size(t.dtype);
  if (size == 0) throw safetensors_error(src, who + " has an unknown dtype '" + t.dtype + "'");
  t.shape = parse_sizes(v["shape"], who + "'s shape", src);
  const std::vector<std::size_t> offsets = parse_sizes(v["data_offsets"], who + "'s data_offsets", src);
  if (offsets.size() != 2)
    throw safetensors_error(src, who + "'s data_offsets has " + std::to_string(offsets.size()) + " values, not 2");
  t.begin = offsets[0];
  t.end = offsets[1];
  if (t.begin > t.end)
    throw safetensors_error(src, who + "'s data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                                     "] end before they begin");
  std::size_t bytes = size;
  for (std::size_t d : t.shape)
    if (!checked_mul(bytes, d, bytes)) throw safetensors_error(src, who + "'s shape has too many elements");
  if (bytes != t.bytes())
    throw safetensors_error(src, who + " of dtype " + t.dtype + " and shape " + nlohmann::json(t.shape).dump() +
                                     " needs " + std::to_string(bytes) + " bytes, its data_offsets [" +
                                     std::to_string(t.begin) + ", " + std::to_string(t.end) + "] hold " +
                                     std::to_string(t.bytes()));
  return t;
}

}  // namespace detail

/// Parses and validates a whole safetensors file held in `bytes`; `name` labels errors.
/// The result copies what it needs: `bytes` is not kept.
inline safetensors_file parse_safetensors(host_span<const std::uint8_t> bytes, const std::string& name) {
  const std::string& src = name;
  const std::size_t size = bytes.size();
  if (size < 8)
    throw safetensors_error(src, "the file has " + std::to_string(size) + " bytes, too few for the 8-byte header length");
  const std::uint64_t header_len = detail::read_le64(bytes.data());
  if (header_len > safetensors_max_header_bytes)
    throw safetensors_error(src, "the header length " + std::to_string(header_len) + " exceeds the limit of " +
                                     std::to_string(safetensors_max_header_bytes) + " bytes");
  if (header_len > size - 8)
    throw safetensors_error(src, "the header length " + std::to_string(header_len) + " runs past the end of the file (" +
                                     std::to_string(size) + " bytes): truncated or not a safetensors file");
  const auto* header = reinterpret_cast<const char*>(bytes.data() + 8);
  if (header_len < 2 || header[0] != '{')
    throw safetensors_error(src, "the header does not start with '{': not a safetensors file");

  detail::header_guard guard;
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(header, header + header_len, std::ref(guard));
  } catch (const nlohmann::json::exception& e) {
    if (!guard.problem.empty()) throw safetensors_error(src, guard.problem);
    throw safetensors_error(src, std::string("the header is not valid JSON: ") + e.what());
  }
  if (!guard.problem.empty()) throw safetensors_error(src, guard.problem);
  if (!root.is_object()) throw safetensors_error(src, "the header is not a JSON object");

  safetensors_file f;
  f.source_ = src;
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw safetensors_error(src, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) throw safetensors_error(src, "__metadata__ entry '" + mk + "' is not a string");
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    f.tensors_.push_back(detail::parse_entry(key, value, src));
  }

  // The entries must tile the data section exactly: no overlap, no gap, nothing after.
  const std::size_t data_size = size - 8 - static_cast<std::size_t>(header_len);
  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const safetensors_entry& a, const safetensors_entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::size_t covered = 0;
  const safetensors_entry* previous = nullptr;
  for (const auto& t : f.tensors_) {
    if (t.end > data_size)
      throw safetensors_error(src, "tensor '" + t.name + "' ends at byte " + std::to_string(t.end) +
                                       " of a data section of " + std::to_string(data_size) +
                                       " bytes: the file is truncated or the offsets are wrong");
    if (t.begin < covered)
      throw safetensors_error(src, "tensor '" + t.name + "' [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                                       ") overlaps tensor '" + previous->name + "' [" + std::to_string(previous->begin) +
                                       ", " + std::to_string(previous->end) + ")");
    if (t.begin > covered)
      throw safetensors_error(src, "bytes [" + std::to_string(covered) + ", " + std::to_string(t.begin) +
                                       ") of the data section belong to no tensor (before '" + t.name + "')");
    covered = t.end;
    previous = &t;
  }
  if (covered != data_size)
    throw safetensors_error(src, "the data section has " + std::to_string(data_size) + " bytes, the tensors cover " +
                                     std::to_string(covered) + ": trailing bytes after the last tensor");
  const std::uint8_t* data = bytes.data() + 8 + header_len;
  f.data_.assign(data, data + data_size);
  return f;
}

/// Reads and validates the safetensors file at `path` (see the header comment).
inline safetensors_file read_safetensors(const std::string& path) {
  gpukit::detail::require(!path.empty(), "gpukit::io::read_safetensors", "argument 'path' is empty");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw safetensors_error(path, std::string("cannot open the file: ") + std::strerror(errno));
  const std::streamoff end = in.tellg();
  if (end < 0) throw safetensors_error(path, "cannot tell the file's size");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(end));
  in.seekg(0);
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    throw safetensors_error(path, "cannot read the file's " + std::to_string(bytes.size()) + " bytes");
  return parse_safetensors(make_host_span(static_cast<const std::vector<std::uint8_t>&>(bytes)), path);
}

/// The bytes of a safetensors file holding `tensors` (in this order), then `i64_tensors`,
/// and `metadata`. Throws std::invalid_argument (nothing produced) for an empty, repeated
/// or reserved ("__metadata__") name or a shape whose element count differs from
/// values.size().
inline std::vector<std::uint8_t> serialize_safetensors(const std::vector<safetensors_tensor>& tensors,
                                                       const std::map<std::string, std::string>& metadata = {},
                                                       const std::vector<safetensors_i64_tensor>& i64_tensors = {}) {
  constexpr const char* where = "gpukit::io::write_safetensors";
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  std::size_t offset = 0;
  const auto add = [&](const char* arg, std::size_t i, const auto& t, const char* dtype) {
    const std::string who = std::string("argument '") + arg + "'[" + std::to_string(i) + "] '" + t.name + "'";
    gpukit::detail::require(!t.name.empty(), where, std::string("argument '") + arg + "'[" + std::to_string(i) + "] has an empty name");
    gpukit::detail::require(t.name != "__metadata__", where, who + " uses the reserved name __metadata__");
    gpukit::detail::require(names.insert(t.name).second, where, who + " repeats a name");
    std::size_t count = 1;
    for (std::size_t d : t.shape) gpukit::detail::require(detail::checked_mul(count, d, count), where, who + ": shape too large");
    gpukit::detail::require(count == t.values.size(), where,
                            who + " has shape " + nlohmann::json(t.shape).dump() + " (" + std::to_string(count) +
                                " elements) but " + std::to_string(t.values.size()) + " values");
    header[t.name] = {{"dtype", dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.values.size_bytes()}}};
    offset += t.values.size_bytes();
  };
  for (std::size_t i = 0; i < tensors.size(); ++i) add("tensors", i, tensors[i], "F32");
  for (std::size_t i = 0; i < i64_tensors.size(); ++i) add("i64_tensors", i, i64_tensors[i], "I64");
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<std::uint8_t> out(8 + text.size() + offset);
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i, n >>= 8) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n & 0xff);
  std::memcpy(out.data() + 8, text.data(), text.size());
  std::uint8_t* data = out.data() + 8 + text.size();
  const auto put = [&](const auto& t) {
    if (!t.values.empty()) std::memcpy(data, t.values.data(), t.values.size_bytes());
    data += t.values.size_bytes();
  };
  for (const auto& t : tensors) put(t);
  for (const auto& t : i64_tensors) put(t);
  return out;
}

/// Writes `tensors` and `metadata` as a safetensors file at `path` (replacing it); see the
/// header comment for the checks and the all-or-nothing write.
inline void write_safetensors(const std::string& path, const std::vector<safetensors_tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {},
                              const std::vector<safetensors_i64_tensor>& i64_tensors = {}) {
  gpukit::detail::require(!path.empty(), "gpukit::io::write_safetensors", "argument 'path' is empty");
  const std::vector<std::uint8_t> bytes = serialize_safetensors(tensors, metadata, i64_tensors);
  const std::string temp = path + ".partial";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw safetensors_error(path, "cannot create '" + temp + "': " + std::strerror(errno));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(temp.c_str());
      throw safetensors_error(path, "cannot write " + std::to_string(bytes.size()) + " bytes to '" + temp + "'");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temp.c_str());
    throw safetensors_error(path, "cannot rename '" + temp + "' into place: " + reason);
  }
}

}  // namespace gpukit::io
