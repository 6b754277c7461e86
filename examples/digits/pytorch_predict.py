"""Loads a model file written by `digits train` into PyTorch and predicts like
`digits predict`: the file's tensors go into a torch.nn.Sequential built from its
"gpukit.architecture" metadata (build() of ../cats_vs_dogs/pytorch_predict.py) with
load_state_dict(strict=True), and each image prints as

    IMAGE: class 7 (p = 0.98)

the most probable class (the first of equals, as gpukit) and its probability, from the
model in eval mode (batch norms on their running estimates, dropout off); a model whose
last layer is not a softmax gets one here.

    python3 pytorch_predict.py model.safetensors IMAGE...

The images must already have the model's input size (8 x 8 for scikit-learn's digits):
nothing is resized here, so both programs see the same pixels and print the same lines.
Needs torch, safetensors, numpy and Pillow.
"""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file


def load_build():
    """build(arch) of the cats_vs_dogs script, which knows every layer gpukit writes."""
    path = Path(__file__).resolve().parent.parent / "cats_vs_dogs" / "pytorch_predict.py"
    spec = importlib.util.spec_from_file_location("cats_vs_dogs_pytorch_predict", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path = sys.argv[1]
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    arch = json.loads(meta["gpukit.architecture"])
    model = load_build()(arch)
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    channels, height, width = arch["input"]
    ends_in_softmax = arch["layers"][-1]["type"] == "Softmax"
    classes = json.loads(meta["digits.classes"]) if "digits.classes" in meta else None
    for image_path in sys.argv[2:]:
        img = Image.open(image_path).convert("RGB")
        if img.size != (width, height):
            sys.exit(f"{image_path} is {img.size[0]} x {img.size[1]}, the model takes {width} x {height}")
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) * np.float32(1 / 255)).permute(2, 0, 1).unsqueeze(0)
        with torch.no_grad():
            out = model(x).reshape(-1)
        p = out if ends_in_softmax else torch.softmax(out, dim=0)
        if classes is None or len(classes) != p.numel():
            classes = [str(k) for k in range(p.numel())]
        best = int(torch.argmax(p))
        print(f"{image_path}: class {classes[best]} (p = {p[best].item():.2f})")


if __name__ == "__main__":
    main()
