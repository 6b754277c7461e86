# scripts/lib/common.sh — shared by scripts/test, scripts/bench and scripts/plot: find or
# install what gpukit's build (and its charts, and the digits example's real data) need, then
# configure and build.
set -euo pipefail

GPUKIT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$GPUKIT_ROOT/build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# Each step's line says how long the script has run so far (where a long build's time goes).
say() { printf '==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# A CUDA toolkit in the usual place works even when nvcc is not on PATH.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

has_header() { printf '#include <%s>\n' "$1" | "${CXX:-c++}" -x c++ -std=c++17 -E - >/dev/null 2>&1; }

# Each entry: "debian-package|header that proves it is there (alternatives with ',')".
GPUKIT_PACKAGES=(
  "catch2|catch2/catch.hpp,catch2/catch_test_macros.hpp"
  "libbenchmark-dev|benchmark/benchmark.h"
  "libpng-dev|png.h"
  "libjpeg-dev|jpeglib.h"
  "nlohmann-json3-dev|nlohmann/json.hpp"
  "libmpfr-dev|mpfr.h"
)

# Installing distribution packages needs root and apt-get; elsewhere the scripts print the
# command instead.
can_apt_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
  say "installing $* from the distribution's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "$@"
}

# Prints the Python 3 that imports every module named: python3 on PATH, else the
# distribution's /usr/bin/python3, where python3-* packages install (a pyenv or virtualenv
# python3 first on PATH does not see them). Fails when neither does.
python_with() {
  local py imports
  imports=$(printf 'import %s;' "$@")
  for py in "$(command -v python3 2>/dev/null || true)" /usr/bin/python3; do
    if [ -n "$py" ] && [ -x "$py" ] && "$py" -c "$imports" >/dev/null 2>&1; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

# The Python 3 that can draw charts.
matplotlib_python() { python_with matplotlib; }

matplotlib_hint() {
  echo "charts (scripts/plot) and their tests need Python 3 with matplotlib:" >&2
  echo "  on Debian/Ubuntu: sudo apt-get install python3-matplotlib   (or: pip install matplotlib)" >&2
}

sklearn_hint() {
  echo "the digits example's test on real data (examples/digits/make_digits.py) needs Python 3 with" >&2
  echo "scikit-learn and Pillow; without them it is skipped:" >&2
  echo "  on Debian/Ubuntu: sudo apt-get install python3-sklearn python3-pil   (or: pip install scikit-learn pillow)" >&2
}

ensure_dependencies() {
  local missing=() tools=() entry pkg headers h found
  command -v cmake >/dev/null 2>&1 || tools+=(cmake)
  command -v "${CXX:-c++}" >/dev/null 2>&1 || tools+=(g++)
  for entry in "${GPUKIT_PACKAGES[@]}"; do
    pkg=${entry%%|*}
    headers=${entry#*|}
    found=no
    IFS=',' read -ra hs <<<"$headers"
    for h in "${hs[@]}"; do has_header "$h" && found=yes && break; done
    [ "$found" = yes ] || missing+=("$pkg")
  done
  local wanted=("${tools[@]}" "${missing[@]}")
  if [ ${#wanted[@]} -gt 0 ]; then
    if can_apt_install; then
      apt_install "${wanted[@]}" ||
        { echo "could not install ${wanted[*]}; install them and run again" >&2; exit 1; }
    else
      echo "gpukit needs: ${wanted[*]}" >&2
      echo "on Debian/Ubuntu: sudo apt-get install ${wanted[*]}" >&2
      exit 1
    fi
  fi
  # matplotlib draws the charts; the build and the benchmarks run without it, so where it
  # cannot be installed that is a note, not an error (the chart tests then skip).
  if ! matplotlib_python >/dev/null; then
    if can_apt_install; then
      apt_install python3-matplotlib || { echo "could not install python3-matplotlib" >&2; matplotlib_hint; }
    else
      matplotlib_hint
    fi
  fi
  # scikit-learn ships the handwritten digits that the digits example's real-data test
  # trains on; like matplotlib it is optional: a note where it cannot be installed.
  if ! python_with sklearn numpy PIL >/dev/null; then
    if can_apt_install; then
      apt_install python3-sklearn python3-pil || { echo "could not install python3-sklearn" >&2; sklearn_hint; }
    else
      sklearn_hint
    fi
  fi
  if ! command -v nvcc >/dev/null 2>&1; then
    echo "gpukit needs the CUDA toolkit (nvcc, 12.x or 13.x) even to build its CPU paths;" >&2
    echo "install it from https://developer.nvidia.com/cuda-downloads and put its bin/ on PATH" >&2
    exit 1
  fi
  local cmake_version
  cmake_version=$(cmake --version | head -n1 | awk '{print $3}')
  if [ "$(printf '%s\n3.25\n' "$cmake_version" | sort -V | head -n1)" != 3.25 ]; then
    echo "gpukit needs CMake >= 3.25 (found $cmake_version)" >&2
    exit 1
  fi
}

configure_and_build() {
  say "configuring in $BUILD_DIR"
  cmake -S "$GPUKIT_ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@"  # a later -DCMAKE_BUILD_TYPE wins
  say "building with $JOBS jobs"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

gpu_summary() {
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    nvidia-smi -L
  else
    echo "no GPU visible: GPU cases will be skipped"
  fi
}
