#!/usr/bin/env python3
"""PyTorch on gpukit's model zoo: the peer of benchmarks/zoo_bench.cu.

    python3 benchmarks/peers/torch_zoo.py [--zoo benchmarks/zoo/models.json] [--out torch_zoo.json]
                                          [--models vgg,mlp] [--cpu-threads N] [--no-cpu] [--no-gpu]

Builds each model of models.json as a torch.nn.Sequential (the layer schema of gpukit's
model files: Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Dense, Flatten,
Dropout, BatchNormalization, ReLU, Sigmoid, Tanh), and times, at each
of the zoo's batch sizes on the GPU,
  train/eager_fp32   forward, loss, backward and Adam, eager, strict FP32 (no TF32 anywhere)
  train/graph_fp32   the whole step as one CUDA graph (Adam with capturable=True), strict FP32
  train/eager_tf32   as eager_fp32 with TF32 on for convolutions and matrix products
  train/graph_tf32   as graph_fp32 with TF32
  train/graph_bf16   the forward pass under bf16 autocast (the loss in FP32, outside it: BCELoss
                     refuses autocast), fused capturable Adam on the FP32 parameters, one graph
  forward/eager_fp32, forward/graph_fp32, forward/graph_tf32, forward/graph_bf16
                     the forward pass alone (no grad)
and on the CPU (torch.set_num_threads(N), N = --cpu-threads or all cores) train/cpu at the
smallest batch. cudnn.benchmark is on (the fastest algorithms for fixed shapes). Every GPU
call is timed like gpukit's harness: the L2 cache flushed first (a memset of twice its size),
CUDA events around the one call, the median over the repetitions. Inputs are uniform in
[0, 1), labels fixed classes; binary cross-entropy models end in their Sigmoid (BCELoss),
softmax cross-entropy models take CrossEntropyLoss on their logits.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "cats_vs_dogs"))
from pytorch_predict import build as build_model  # noqa: E402


def build(layers):
    """The torch.nn.Sequential of a zoo model's layers, as the model-file reader builds it."""
    return build_model({"layers": layers})


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def batch_for(spec, batch, device):
    g = torch.Generator(device="cpu").manual_seed(31)
    c, h, w = spec["input"]
    x = torch.rand(batch, c, h, w, generator=g).to(device)
    classes = spec["classes"]
    if spec["loss"] == "binary_crossentropy":
        y = (torch.arange(batch) % 2).float().reshape(batch, 1).to(device)
        loss = torch.nn.BCELoss()
    else:
        y = ((torch.arange(batch) * 7 + 3) % classes).to(device)
        loss = torch.nn.CrossEntropyLoss()
    return x, y, loss


class Flusher:
    """Writes twice the L2's size before each timed call, as gpukit's harness does."""

    def __init__(self):
        l2 = torch.cuda.get_device_properties(0).L2_cache_size
        self.buf = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")

    def __call__(self):
        self.buf.fill_(0x5A)


def time_gpu(call, flush, min_seconds=0.3, min_reps=20, max_reps=2000):
    for _ in range(10):  # warm-up: algorithm search, allocator, graph upload
        call()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    began = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - began < min_seconds):
        flush()
        start.record()
        call()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1e3)  # us
    return statistics.median(times)


def time_cpu(call, min_seconds=1.0, min_reps=3):
    call()
    times = []
    began = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - began < min_seconds:
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def eager_step(model, opt, loss_fn, x, y):
    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def autocast(bf16):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)


def graph_step(model, loss_fn, x, y, bf16=False):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True, fused=bf16 or None)

    def loss():
        with autocast(bf16):
            out = model(x)
        return loss_fn(out.float(), y)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            loss().backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        loss().backward()
        opt.step()
    return g.replay


def graph_forward(model, x, bf16=False):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad(), autocast(bf16):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g), torch.no_grad(), autocast(bf16):
        model(x)
    return g.replay


def eager_forward(model, x):
    def forward():
        with torch.no_grad():
            model(x)
    return forward


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", default=os.path.join(here, "..", "zoo", "models.json"))
    ap.add_argument("--out", default="torch_zoo.json")
    ap.add_argument("--models", default="")
    ap.add_argument("--cpu-threads", type=int, default=0)
    ap.add_argument("--no-cpu", action="store_true")
    ap.add_argument("--no-gpu", action="store_true")
    args = ap.parse_args()
    zoo = json.load(open(args.zoo))
    wanted = [m for m in args.models.split(",") if m]
    torch.backends.cudnn.benchmark = True
    results = []
    meta = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
            "cpu_threads": args.cpu_threads or os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    have_gpu = torch.cuda.is_available() and not args.no_gpu
    if have_gpu:
        meta["gpu"] = torch.cuda.get_device_name(0)
        flush = Flusher()
    for spec in zoo["models"]:
        if wanted and spec["name"] not in wanted:
            continue
        model_cpu = build(spec["layers"])
        shape = torch.zeros(1, *spec["input"])
        spec["classes"] = model_cpu.eval()(shape).shape[1]  # eval: a batch norm takes one sample there
        model_cpu.train()

        def record(kind, variant, batch, us):
            results.append({"model": spec["name"], "kind": kind, "variant": variant, "batch": batch, "us": us})
            print(f"{spec['name']:8s} {kind:7s} {variant:11s} batch {batch:4d}: {us:10.1f} us", flush=True)

        if have_gpu:
            for batch in zoo["batches"]:
                for precision in ("fp32", "tf32"):
                    set_tf32(precision == "tf32")
                    torch.manual_seed(0)
                    model = build(spec["layers"]).cuda()
                    x, y, loss_fn = batch_for(spec, batch, "cuda")
                    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                    record("train", "eager_" + precision, batch, time_gpu(eager_step(model, opt, loss_fn, x, y), flush))
                    record("train", "graph_" + precision, batch, time_gpu(graph_step(model, loss_fn, x, y), flush))
                    if precision == "fp32":
                        record("forward", "eager_fp32", batch, time_gpu(eager_forward(model, x), flush))
                    record("forward", "graph_" + precision, batch, time_gpu(graph_forward(model, x), flush))
                    del model, opt
                    torch.cuda.empty_cache()
                set_tf32(False)
                torch.manual_seed(0)
                model = build(spec["layers"]).cuda()
                x, y, loss_fn = batch_for(spec, batch, "cuda")
                record("train", "graph_bf16", batch, time_gpu(graph_step(model, loss_fn, x, y, bf16=True), flush))
                record("forward", "graph_bf16", batch, time_gpu(graph_forward(model, x, bf16=True), flush))
                del model
                torch.cuda.empty_cache()
        if not args.no_cpu:
            threads = args.cpu_threads or os.cpu_count()
            torch.set_num_threads(threads)
            batch = zoo["batches"][0]
            torch.manual_seed(0)
            model = build(spec["layers"])
            x, y, loss_fn = batch_for(spec, batch, "cpu")
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            record("train", "cpu", batch, time_cpu(eager_step(model, opt, loss_fn, x, y)))
    json.dump({"meta": meta, "results": results}, open(args.out, "w"), indent=1)
    print(f"written {args.out}")


if __name__ == "__main__":
    sys.exit(main())
