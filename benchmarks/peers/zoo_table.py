#!/usr/bin/env python3
"""The model zoo side by side: gpukit (gpukit_bench's JSON) against PyTorch (torch_zoo.py's JSON).

    python3 benchmarks/peers/zoo_table.py GPUKIT_BENCH.json TORCH_ZOO.json [--out zoo.md]

One row per model and batch: gpukit's training step as one CUDA graph and eager, with
images/s and TFLOP/s, next to PyTorch's whole-step graph and eager in strict FP32 and in
TF32; "x" columns are PyTorch's time over gpukit's (above 1: gpukit is faster). Then the
forward pass, gpukit's models in tf32 and bf16 against PyTorch's TF32 and bf16 autocast
(when the run has them), and
the CPU fallback against PyTorch on the CPU.
"""
import argparse
import json
import re
import sys


def gpukit_medians(path):
    doc = json.load(open(path))
    out, flops = {}, {}
    for b in doc.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue  # aggregates of --benchmark_repetitions (a stddev is not a median)
        m = re.match(r"^zoo_(train|forward)_(\w+)/(\w+)/([^/]+)", b.get("name", ""))
        if not m or "median_us" not in b:
            continue
        kind, model, variant, size = m.groups()
        batch = 2 ** int(size[2:]) if size.startswith("2^") else int(size)
        out[(model, kind, variant, batch)] = b["median_us"]
        if "GFLOP/s" in b:
            flops[(model, kind, variant, batch)] = b["GFLOP/s"]
    return out, flops, doc.get("context", {})


def torch_medians(path):
    """torch_zoo.py's medians by (model, kind, variant, batch), and its meta (versions, date)."""
    doc = json.load(open(path))
    return {(r["model"], r["kind"], r["variant"], r["batch"]): r["us"] for r in doc["results"]}, doc["meta"]


def model_order(medians):
    """The models of gpukit_medians' keys in the order the benchmark ran them."""
    models = []
    for (model, _, _, _) in medians:
        if model not in models:
            models.append(model)
    return models


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gpukit")
    ap.add_argument("torch")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    g, gflops, context = gpukit_medians(a.gpukit)
    tm, meta = torch_medians(a.torch)
    models = model_order(g)
    batches = sorted({k[3] for k in g if k[2] != "cpu"})

    def us(v):
        return f"{v:.1f}" if v is not None else "-"

    def ratio(peer, ours):
        return f"{peer / ours:.2f}x" if peer and ours else "-"

    lines = [f"GPU: {context.get('gpu', '?')}; PyTorch {meta.get('torch')} (cuDNN {meta.get('cudnn')}), "
             f"{meta.get('date')}. Times are medians per call in us, L2 flushed before each; "
             "x = PyTorch's time / gpukit's.", "",
             "Training step (check, forward, loss, backward, Adam):", "",
             "| model | batch | gpukit graph | images/s | TFLOP/s | torch graph FP32 | x | torch graph TF32 | x | "
             "gpukit eager | torch eager FP32 | x | torch eager TF32 | x |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model in models:
        for b in batches:
            gg = g.get((model, "train", "graph", b))
            ge = g.get((model, "train", "gpu", b))
            tf = tm.get((model, "train", "graph_fp32", b))
            tt = tm.get((model, "train", "graph_tf32", b))
            ef = tm.get((model, "train", "eager_fp32", b))
            et = tm.get((model, "train", "eager_tf32", b))
            fl = gflops.get((model, "train", "graph", b))
            ips = f"{b / gg * 1e6:,.0f}" if gg else "-"
            lines.append(f"| {model} | {b} | {us(gg)} | {ips} | {fl / 1e3:.1f} | " if fl else f"| {model} | {b} | {us(gg)} | {ips} | - | ")
            lines[-1] += (f"{us(tf)} | {ratio(tf, gg)} | {us(tt)} | {ratio(tt, gg)} | {us(ge)} | {us(ef)} | "
                          f"{ratio(ef, ge)} | {us(et)} | {ratio(et, ge)} |")
    lines += ["", "Forward pass:", "",
              "| model | batch | gpukit graph | torch graph FP32 | x | torch graph TF32 | x | gpukit eager | torch eager FP32 | x |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model in models:
        for b in batches:
            gg = g.get((model, "forward", "graph", b))
            ge = g.get((model, "forward", "gpu", b))
            tf = tm.get((model, "forward", "graph_fp32", b))
            tt = tm.get((model, "forward", "graph_tf32", b))
            ef = tm.get((model, "forward", "eager_fp32", b))
            lines.append(f"| {model} | {b} | {us(gg)} | {us(tf)} | {ratio(tf, gg)} | {us(tt)} | {ratio(tt, gg)} | "
                         f"{us(ge)} | {us(ef)} | {ratio(ef, ge)} |")
    tensor_core_tables = (
        ("graph_tf32", "TF32 products (gpukit's model in nn::precision::tf32 against PyTorch with TF32 allowed)"),
        ("graph_bf16", "BF16 products (gpukit's model in nn::precision::bf16 against PyTorch's bf16 autocast "
                       "with fused Adam)"))
    for variant, title in tensor_core_tables:
        if not any(k[2] == variant for k in g):
            continue
        lines += ["", title + ", one CUDA graph each:", "",
                  "| model | batch | gpukit train | TFLOP/s | torch train | x | vs gpukit fp32 | gpukit forward | "
                  "torch forward | x |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for model in models:
            for b in batches:
                gt = g.get((model, "train", variant, b))
                g32 = g.get((model, "train", "graph", b))
                tt = tm.get((model, "train", variant, b))
                fl = gflops.get((model, "train", variant, b))
                gf = g.get((model, "forward", variant, b))
                tfw = tm.get((model, "forward", variant, b))
                lines.append(f"| {model} | {b} | {us(gt)} | " + (f"{fl / 1e3:.1f}" if fl else "-") +
                             f" | {us(tt)} | {ratio(tt, gt)} | {ratio(g32, gt)} | {us(gf)} | {us(tfw)} | "
                             f"{ratio(tfw, gf)} |")
    lines += ["", f"CPU fallback, training step ({meta.get('cpu_threads')} threads for PyTorch):", "",
              "| model | batch | gpukit CPU | torch CPU | x |", "|---|---:|---:|---:|---:|"]
    for model in models:
        for (m, kind, variant, b), v in g.items():
            if m == model and kind == "train" and variant == "cpu":
                p = tm.get((model, "train", "cpu", b))
                lines.append(f"| {model} | {b} | {us(v)} | {us(p)} | {ratio(p, v)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)


if __name__ == "__main__":
    sys.exit(main())
