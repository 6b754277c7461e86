// fuzz/dataset_tree.hpp — turns fuzz input into a small directory tree for the dataset
// reader, and back (the seed generator writes trees this way).
//
// The input is a sequence of entries, each: one kind byte, a 16-bit little-endian length,
// then that many content bytes (cut short at the end of the input); at most 16 entries.
// The kind byte's low three bits choose where the entry goes, the next three what it is:
//
//   where: a/  b/  c/  .hidden/  a/sub/  (the root itself)  a/.dotdir/  b/
//   what:  f<i>.png  f<i>.jpg  f<i>.jpeg  f<i>.PNG  f<i>.txt  .f<i>.png (hidden)
//          a folder named f<i>.png  a dangling symbolic link named f<i>.png
//
// so mutations reach every branch of the listing (class folders, nesting, hidden entries,
// names that look like images but are not files) and, through the content, the decoders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace gpukit_fuzz {

struct tree_entry {
  std::uint8_t kind = 0;
  std::vector<std::uint8_t> content;
};

inline constexpr std::size_t max_tree_entries = 16;

inline std::vector<tree_entry> parse_tree(const std::uint8_t* data, std::size_t size) {
  std::vector<tree_entry> out;
  std::size_t at = 0;
  while (at < size && out.size() < max_tree_entries) {
    tree_entry e;
    e.kind = data[at++];
    std::size_t length = 0;
    if (at < size) length = data[at++];
    if (at < size) length |= static_cast<std::size_t>(data[at++]) << 8;
    if (length > size - at) length = size - at;
    e.content.assign(data + at, data + at + length);
    at += length;
    out.push_back(std::move(e));
  }
  return out;
}

inline std::vector<std::uint8_t> encode_tree(const std::vector<tree_entry>& entries) {
  std::vector<std::uint8_t> out;
  for (const auto& e : entries) {
    out.push_back(e.kind);
    out.push_back(static_cast<std::uint8_t>(e.content.size() & 0xff));
    out.push_back(static_cast<std::uint8_t>(e.content.size() >> 8));
    out.insert(out.end(), e.content.begin(), e.content.end());
  }
  return out;
}

/// Creates the entries under `root` (which exists and is empty). File system errors are
/// ignored: a tree that could not be made fully is still a tree to list.
inline void write_tree(const std::filesystem::path& root, const std::vector<tree_entry>& entries) {
  namespace fs = std::filesystem;
  static const char* const where[] = {"a", "b", "c", ".hidden", "a/sub", "", "a/.dotdir", "b"};
  std::error_code ec;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const tree_entry& e = entries[i];
    const fs::path dir = root / where[e.kind & 7];
    fs::create_directories(dir, ec);
    const std::string stem = "f" + std::to_string(i);
    switch ((e.kind >> 3) & 7) {
      case 0: case 1: case 2: case 3: case 4: case 5: {
        static const char* const names[] = {".png", ".jpg", ".jpeg", ".PNG", ".txt", ".png"};
        const int k = (e.kind >> 3) & 7;
        const std::string name = (k == 5 ? "." : "") + stem + names[k];
        std::ofstream file(dir / name, std::ios::binary);
        file.write(reinterpret_cast<const char*>(e.content.data()), static_cast<std::streamsize>(e.content.size()));
        break;
      }
      case 6:
        fs::create_directory(dir / (stem + ".png"), ec);
        break;
      default:
        fs::create_symlink(root / "missing-target", dir / (stem + ".png"), ec);
        break;
    }
  }
}

}  // namespace gpukit_fuzz
