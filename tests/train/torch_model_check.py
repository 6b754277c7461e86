#!/usr/bin/env python3
"""PyTorch against a gpukit batch-norm model file (written by train_model_file_test
"[torch_export]" into DIR): load_state_dict(strict=True) takes the file as it is, and the
torch.nn.Sequential built from its architecture gives the same outputs in eval mode and in
training mode (batch statistics), and the same running estimates after that training pass.

    GPUKIT_TORCH_EXPORT=DIR train_model_file_test "[torch_export]"
    python3 tests/train/torch_model_check.py DIR

Exits non-zero if any difference exceeds 1e-5 (relative to the largest value). Needs torch,
safetensors and numpy.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "cats_vs_dogs"))
from pytorch_predict import build  # noqa: E402


def floats(path):
    return torch.from_numpy(np.fromfile(path, dtype=np.float32))


def main():
    d = sys.argv[1]
    path = os.path.join(d, "bn.safetensors")
    with safe_open(path, "pt") as f:
        arch = json.loads(f.metadata()["gpukit.architecture"])
    model = build(arch)
    state = load_file(path)
    model.load_state_dict(state, strict=True)
    print("tensors:", ", ".join(f"{k} {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}" for k, v in state.items()))
    x = floats(os.path.join(d, "x.f32")).reshape(-1, *arch["input"])
    worst = 0.0

    def compare(what, got, want):
        nonlocal worst
        err = (got.flatten() - want.flatten()).abs().max().item() / max(want.abs().max().item(), 1e-30)
        worst = max(worst, err)
        print(f"{what}: max relative difference {err:.2e}")

    model.eval()
    with torch.no_grad():
        compare("eval output", model(x), floats(os.path.join(d, "y_eval.f32")))
    model.train()
    with torch.no_grad():
        compare("training-mode output", model(x), floats(os.path.join(d, "y_train.f32")))
    for layer in (1, 9):
        compare(f"layer {layer} running_mean after it", model[layer].running_mean, floats(os.path.join(d, f"rm{layer}.f32")))
        compare(f"layer {layer} running_var after it", model[layer].running_var, floats(os.path.join(d, f"rv{layer}.f32")))
    print("agree" if worst <= 1e-5 else "DIFFER")
    sys.exit(0 if worst <= 1e-5 else 1)


if __name__ == "__main__":
    main()
