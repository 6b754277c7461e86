#!/usr/bin/env python3
"""The seed article's Mandelbrot demo in numba-cuda: its kernel as the article wrote it, run
on the GPU, for three uses.

- Counts: the article's scene (1536 x 1024 of [-2, 1] x [-1, 1]) at the given iteration
  limits, written as PNGs that gpukit's tests compare against (tests/fractal/data). A count
  c is stored as red = c mod 256, green = c div 256 (blue 0), so limits past 255 fit.
- PTX: the kernel's PTX for the float64 signature, which shows exactly how numba's compiler
  rounds the iteration (which multiply-adds it contracts into FMAs).
- Time: the article's uint8 image at 20 iterations, launched as the article does (block
  32 x 8, grid 32 x 16), CUDA events around the launch, best of --repeats.

Usage: numba_mandelbrot.py --out DIR [--iters 20,255,1000] [--repeats 200]
Needs numba (with its CUDA target), numpy and Pillow.
"""
import argparse
import json
import os
import sys

import numpy as np

# numba-cuda releases that predate NumPy 2.3 register an overload for np.row_stack, which
# NumPy 2.3 removed (it was an alias of np.vstack): give it back before numba loads.
if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack

from numba import cuda  # noqa: E402
from PIL import Image  # noqa: E402


# --- the article's code (its names and its arithmetic) -----------------------------------
@cuda.jit(device=True)
def mandel(x, y, max_iters):
    c = complex(x, y)
    z = 0.0j
    for i in range(max_iters):
        z = z * z + c
        if (z.real * z.real + z.imag * z.imag) >= 4:
            return i
    return max_iters


@cuda.jit
def mandel_kernel(min_x, max_x, min_y, max_y, image, iters):
    height = image.shape[0]
    width = image.shape[1]
    pixel_size_x = (max_x - min_x) / width
    pixel_size_y = (max_y - min_y) / height
    startX, startY = cuda.grid(2)
    gridX = cuda.gridDim.x * cuda.blockDim.x
    gridY = cuda.gridDim.y * cuda.blockDim.y
    for x in range(startX, width, gridX):
        real = min_x + x * pixel_size_x
        for y in range(startY, height, gridY):
            imag = min_y + y * pixel_size_y
            image[y, x] = mandel(real, imag, iters)
# -------------------------------------------------------------------------------------------

BOUNDS = (-2.0, 1.0, -1.0, 1.0)
WIDTH, HEIGHT = 1536, 1024
BLOCK, GRID = (32, 8), (32, 16)


def counts(iters):
    image = cuda.device_array((HEIGHT, WIDTH), dtype=np.uint32)
    mandel_kernel[GRID, BLOCK](*BOUNDS, image, iters)
    cuda.synchronize()
    return image.copy_to_host()


def save_counts(path, c):
    if c.max() >= 65536:
        sys.exit(f"counts up to {c.max()} do not fit two bytes")
    rgb = np.zeros(c.shape + (3,), dtype=np.uint8)
    rgb[..., 0] = c & 255
    rgb[..., 1] = c >> 8
    Image.fromarray(rgb, "RGB").save(path, optimize=True)


def time_article(repeats):
    image = cuda.device_array((HEIGHT, WIDTH), dtype=np.uint8)
    mandel_kernel[GRID, BLOCK](*BOUNDS, image, 20)  # compile and warm up
    cuda.synchronize()
    start, stop = cuda.event(), cuda.event()
    best = float("inf")
    for _ in range(repeats):
        start.record()
        mandel_kernel[GRID, BLOCK](*BOUNDS, image, 20)
        stop.record()
        stop.synchronize()
        best = min(best, cuda.event_elapsed_time(start, stop) * 1e3)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the PNGs, the PTX and times.json")
    p.add_argument("--iters", default="20,255,1000", help="comma-separated iteration limits")
    p.add_argument("--repeats", type=int, default=200)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sig = "void(float64, float64, float64, float64, uint32[:, :], int64)"
    ptx, _ = cuda.compile_ptx_for_current_device(mandel_kernel.py_func, sig, device=False)
    with open(os.path.join(a.out, "numba_article_kernel.ptx"), "w") as f:
        f.write(ptx)
    summary = {"device": cuda.get_current_device().name.decode() if isinstance(cuda.get_current_device().name, bytes)
               else cuda.get_current_device().name, "scene": [*BOUNDS, WIDTH, HEIGHT]}
    for iters in (int(s) for s in a.iters.split(",")):
        c = counts(iters)
        save_counts(os.path.join(a.out, f"numba_seed_{iters}.png"), c)
        summary[f"counts_{iters}"] = {"sum": int(c.sum(dtype=np.uint64)), "max": int(c.max())}
    summary["article_uint8_20_us_best"] = time_article(a.repeats)
    with open(os.path.join(a.out, "times.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
