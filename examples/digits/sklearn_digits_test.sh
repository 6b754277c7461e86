#!/usr/bin/env bash
# The digits example on scikit-learn's real digits, as a test: make_digits.py converts them
# into WORK/data, `digits train --cpu` trains on them with the example's defaults (extra
# arguments go to train), and the test passes when the final test accuracy reaches
# THRESHOLD; `digits predict` then classifies two test images.
#
#   sklearn_digits_test.sh DIGITS_EXECUTABLE WORK THRESHOLD [TRAIN ARGUMENTS...]
#
# Exits 77 (CTest's skip) where no Python 3 imports scikit-learn, numpy and Pillow: python3
# on PATH first, else the distribution's /usr/bin/python3, where python3-sklearn installs.
set -euo pipefail
digits=$1 work=$2 threshold=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)

py=
for candidate in "$(command -v python3 2>/dev/null || true)" /usr/bin/python3; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sklearn, numpy, PIL' >/dev/null 2>&1; then
    py=$candidate
    break
  fi
done
if [ -z "$py" ]; then
  echo "no Python 3 with scikit-learn, numpy and Pillow (apt-get install python3-sklearn python3-pil): skipped"
  exit 77
fi

mkdir -p "$work"
"$py" "$here/make_digits.py" --out "$work/data" --replace
"$digits" train --data "$work/data" --cpu --out "$work/model.safetensors" "$@" | tee "$work/train.log"
accuracy=$(sed -n 's/^Test accuracy \([0-9.]*\) .*/\1/p' "$work/train.log")
if [ -z "$accuracy" ] || ! awk -v a="$accuracy" -v t="$threshold" 'BEGIN { exit !(a >= t) }'; then
  echo "FAILED: test accuracy ${accuracy:-missing}, below $threshold"
  exit 1
fi
echo "test accuracy $accuracy >= $threshold"
images=("$work"/data/test_set/3/*.png)
"$digits" predict --model "$work/model.safetensors" "${images[@]:0:2}"
