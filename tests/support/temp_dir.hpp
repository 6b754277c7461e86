// tests/support/temp_dir.hpp — a fresh temporary folder per test, removed at the end.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>  // mkdtemp

namespace gpukit_test {

/// A fresh folder under the system's temporary directory ($TMPDIR, else /tmp), made with
/// mkdtemp so that tests running at the same time never share one; removed with everything
/// in it when the object goes out of scope.
class temp_dir {
 public:
  explicit temp_dir(const std::string& stem) {
    std::string pattern = (std::filesystem::temp_directory_path() / ("gpukit_" + stem + "_XXXXXX")).string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("cannot create a temporary folder from " + pattern);
    path_ = buf.data();
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// The path of `name` inside the folder.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace gpukit_test
