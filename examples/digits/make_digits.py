"""Converts scikit-learn's handwritten digits into the class-per-folder layout that
`digits train` reads, once:

    python3 make_digits.py --out DIR [--test-fraction 0.2] [--seed 0] [--replace]

sklearn.datasets.load_digits() holds 1,797 images of 8 x 8 pixels (the UCI "optical
recognition of handwritten digits" set, 43 writers), each pixel a count of 0..16. Every
image is written as an 8 x 8 RGB PNG, its value scaled to 0..255 (round(v * 255 / 16)) and
the grey replicated to the three channels, to

    DIR/training_set/<0..9>/digit.NNNNN.png     DIR/test_set/<0..9>/digit.NNNNN.png

where NNNNN is the image's index in load_digits(). The split is stratified (each digit
keeps its share in both sets) and seeded: sklearn's train_test_split with
test_size=TEST_FRACTION, stratify=labels, random_state=SEED; the defaults (0.2, seed 0)
give 1,437 training and 360 test images. The counts per class are printed.

Needs scikit-learn, numpy and Pillow (Debian/Ubuntu: apt-get install python3-sklearn
python3-pil; or pip install scikit-learn pillow). Without them it says so and exits with
77, which CTest reads as "skipped". The data ships inside scikit-learn: nothing is
downloaded.
"""
import argparse
import os
import shutil
import sys

MISSING = 77  # CTest's SKIP_RETURN_CODE in examples/CMakeLists.txt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="dataset folder to write")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of each class in test_set (0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (0)")
    parser.add_argument("--replace", action="store_true", help="delete training_set/ and test_set/ under --out first")
    args = parser.parse_args()
    if not 0 < args.test_fraction < 1:
        parser.error(f"--test-fraction must lie strictly between 0 and 1, got {args.test_fraction}")

    try:
        import numpy as np
        from PIL import Image
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        print(f"make_digits.py needs scikit-learn, numpy and Pillow ({e}); on Debian/Ubuntu: "
              "apt-get install python3-sklearn python3-pil, or pip install scikit-learn pillow", file=sys.stderr)
        sys.exit(MISSING)

    digits = load_digits()
    images, labels = digits.images, digits.target
    indices = np.arange(len(labels))
    train_idx, test_idx = train_test_split(indices, test_size=args.test_fraction, stratify=labels,
                                           random_state=args.seed)

    splits = {"training_set": np.sort(train_idx), "test_set": np.sort(test_idx)}
    for split in splits:
        folder = os.path.join(args.out, split)
        if os.path.isdir(folder) and os.listdir(folder):
            if not args.replace:
                sys.exit(f"make_digits.py: '{folder}' already holds files (--replace deletes them)")
            shutil.rmtree(folder)

    classes = [str(d) for d in range(10)]
    for split, chosen in splits.items():
        for d in classes:
            os.makedirs(os.path.join(args.out, split, d), exist_ok=True)
        for i in chosen:
            grey = np.rint(images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
            rgb = np.repeat(grey[:, :, None], 3, axis=2)
            Image.fromarray(rgb, "RGB").save(os.path.join(args.out, split, str(labels[i]), f"digit.{i:05d}.png"))
        counts = np.bincount(labels[chosen], minlength=10)
        print(f"{split}: {len(chosen)} images, per class " + ", ".join(f"{d}: {c}" for d, c in zip(classes, counts)))
    print(f"Wrote {len(labels)} images of 8 x 8 under {args.out} "
          f"(stratified split, test fraction {args.test_fraction}, seed {args.seed})")


if __name__ == "__main__":
    main()
