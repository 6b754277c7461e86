// gpukit/core/text.hpp — the number formats gpukit's tables and progress lines share.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include <cstdint>
#include <string>

namespace gpukit::detail {

/// 3937409 -> "3,937,409".
inline std::string with_thousands(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

/// `s` padded with spaces to `width` characters, or followed by one space when longer.
inline std::string pad_right(std::string s, std::size_t width) {
  if (s.size() < width) {
    s.append(width - s.size(), ' ');
  } else {
    s += ' ';
  }
  return s;
}

}  // namespace gpukit::detail
