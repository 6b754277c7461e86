"""Loads a model file written by `cats_vs_dogs train` into PyTorch and predicts like
`cats_vs_dogs predict`: the file's tensors go into a torch.nn.Sequential built from its
"gpukit.architecture" metadata with load_state_dict(strict=True).

    python3 pytorch_predict.py model.safetensors IMAGE...

The images must already have the model's input size (64 x 64 for the article's model):
nothing is resized here, so both programs see the same pixels and print the same lines.
Needs torch, safetensors, numpy and Pillow.
"""
import json
import sys

import torch


class PaddedConv2d(torch.nn.Conv2d):
    """torch.nn.Conv2d after zero padding that Conv2d's own argument cannot express: per side,
    or Keras' 'same' at a stride above 1 (ceil(in / stride) outputs, the odd one of the padding
    after). A subclass, so that the state-dict names stay "k.weight" and "k.bias"."""

    def __init__(self, *args, sides, **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.sides = sides  # "same" or (top, bottom, left, right)

    def forward(self, x):
        if self.sides == "same":
            pads = []
            for size, k, d in zip(x.shape[2:], self.kernel_size, self.dilation):
                s = self.stride[0]
                total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
                pads.append((total // 2, total - total // 2))
            (top, bottom), (left, right) = pads
        else:
            top, bottom, left, right = self.sides
        return super().forward(torch.nn.functional.pad(x, (left, right, top, bottom)))


def conv2d(l):
    """The torch module of a Conv2D entry: its "padding" is a size, "same", "valid" or
    [top, bottom, left, right]; "dilation" is 1 when absent."""
    args = (l["in_channels"], l["out_channels"], tuple(l["kernel_size"]))
    kwargs = dict(stride=l["stride"], dilation=l.get("dilation", 1), bias=l.get("bias", True))
    p = l["padding"]
    if p == "valid":
        p = 0
    if isinstance(p, list) and p[0] == p[1] and p[2] == p[3]:
        p = (p[0], p[2])
    if isinstance(p, (int, tuple)) or (p == "same" and l["stride"] == 1):
        return torch.nn.Conv2d(*args, padding=p, **kwargs)
    return PaddedConv2d(*args, sides=p if p == "same" else tuple(p), **kwargs)


def build(arch):
    layers = []
    for l in arch["layers"]:
        kind = l["type"]
        if kind == "Conv2D":
            layers.append(conv2d(l))
        elif kind == "MaxPooling2D":
            layers.append(torch.nn.MaxPool2d(tuple(l["window"]), tuple(l["stride"])))
        elif kind == "AveragePooling2D":
            layers.append(torch.nn.AvgPool2d(tuple(l["window"]), tuple(l["stride"])))
        elif kind == "GlobalAveragePooling2D":  # one module: the state-dict indices stay gpukit's
            layers.append(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()))
        elif kind == "Dropout":
            layers.append(torch.nn.Dropout(l["p"]))
        elif kind == "BatchNormalization":
            bn = torch.nn.BatchNorm1d if l["dims"] == 1 else torch.nn.BatchNorm2d
            layers.append(bn(l["features"], eps=l["eps"], momentum=l["momentum"]))
        elif kind == "Softmax":
            layers.append(torch.nn.Softmax(dim=1))
        elif kind == "Dense":
            layers.append(torch.nn.Linear(l["in_features"], l["out_features"], bias=l.get("bias", True)))
        elif kind == "Flatten":
            layers.append(torch.nn.Flatten())
        elif kind == "LeakyReLU":
            layers.append(torch.nn.LeakyReLU(l["negative_slope"]))
        elif kind == "GELU":
            layers.append(torch.nn.GELU(approximate=l["approximate"]))
        else:
            layers.append({"ReLU": torch.nn.ReLU, "Sigmoid": torch.nn.Sigmoid, "Tanh": torch.nn.Tanh}[kind]())
    return torch.nn.Sequential(*layers)


def main():
    # Here rather than at the top: build() (which the peer benchmarks and tests import)
    # needs torch alone.
    import numpy as np
    from PIL import Image
    from safetensors import safe_open
    from safetensors.torch import load_file

    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path = sys.argv[1]
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    arch = json.loads(meta["gpukit.architecture"])
    model = build(arch)
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    channels, height, width = arch["input"]
    classes = json.loads(meta.get("cats_vs_dogs.classes", '["0", "1"]'))
    if classes == ["cats", "dogs"]:
        classes = ["cat", "dog"]
    for image_path in sys.argv[2:]:
        img = Image.open(image_path).convert("RGB")
        if img.size != (width, height):
            sys.exit(f"{image_path} is {img.size[0]} x {img.size[1]}, the model takes {width} x {height}")
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) * np.float32(1 / 255)).permute(2, 0, 1).unsqueeze(0)
        with torch.no_grad():
            p = model(x).item()
        print(f"{image_path}: Probability = {p:.2f} Prediction = {classes[1] if p >= 0.5 else classes[0]}")


if __name__ == "__main__":
    main()
