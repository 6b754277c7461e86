"""The charts scripts/plot draws, as plain data: a chart is a dict with its file name, title
and panels; a panel has its axis labels and scales and the series it plots (label, kind, x,
y). The renderer (plot.py) draws exactly these series and writes the same dicts into
plots.json, so the manifest is what is on the page. Standard library only.

Series kinds: "measured" (gpukit's own paths), "peer" (what gpukit is compared with: CUB,
plain kernels and loops, PyTorch) and "ceiling" (a bound the run measured or states).
"""
import math
import os
from typing import Dict, List, Optional

from plot_inputs import BenchRun, Case, History, PeerRun, zoo_table  # zoo_table: benchmarks/peers

# Variants that are what gpukit is measured against, not its own paths (benchmarks/*.cu).
PEER_VARIANTS = {"cub", "plain", "omp_loop", "four_ops", "cudaMemcpy", "model_only"}

VARIANT_LABELS = {
    "gpu": "gpukit GPU", "graph": "gpukit GPU, one CUDA graph", "cpu": "gpukit CPU fallback",
    "gpu_no_ws": "gpukit GPU, no workspace", "gpu_simple": "gpukit, one pixel per thread",
    "gpu_ilp2": "gpukit, two pixels per thread", "gpu_refill": "gpukit, lane refill",
    "gpu_device": "gpukit, images on the GPU", "gpu_staged": "gpukit, staged through pinned memory",
    "model_only": "model steps alone, no data pipeline", "gpu_rescale": "gpukit GPU, rescale only",
    "omp": "gpukit, all CPU threads", "serial": "gpukit, one CPU thread",
    "cub": "CUB", "plain": "plain kernel", "omp_loop": "plain OpenMP loop", "four_ops": "four separate ops",
    "cudaMemcpy": "cudaMemcpy",
}
# Legend order: gpukit's GPU paths, its CPU path, then the peers.
VARIANT_ORDER = ["gpu", "graph", "gpu_no_ws", "gpu_simple", "gpu_ilp2", "gpu_refill", "gpu_device", "gpu_staged",
                 "gpu_rescale", "cpu", "omp", "serial", "cub", "plain", "four_ops", "omp_loop", "cudaMemcpy",
                 "model_only"]

# What a case's size counts, by family prefix (the default: elements).
SIZE_MEANING = [("nn_adam", "parameters"), ("nn_", "batch"), ("zoo_", "batch"), ("train_", "batch"),
                ("augment", "batch"), ("io_", "images"), ("mandelbrot_", "pixels")]

# Families with a chart of their own kind instead of one per family.
SPECIAL_PREFIXES = ("mandelbrot_", "zoo_")


def variant_label(variant: str) -> str:
    return VARIANT_LABELS.get(variant, variant)


def variant_rank(variant: str):
    return (VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER), variant)


def kind_of(variant: str) -> str:
    return "peer" if variant in PEER_VARIANTS else "measured"


def size_meaning(family: str) -> str:
    return next((meaning for prefix, meaning in SIZE_MEANING if family.startswith(prefix)), "elements")


def scale_for(values) -> str:
    """Log where the values span a decade or more (and can be on a log axis), else linear."""
    values = [v for v in values if v is not None]
    if not values or min(values) <= 0:
        return "linear"
    return "log" if max(values) / min(values) >= 10 else "linear"


def series(label: str, kind: str, x: list, y: list, **extra) -> dict:
    return dict(label=label, kind=kind, x=list(x), y=list(y), **extra)


def panel(xlabel: str, ylabel: str, series_list: List[dict], style: str = "lines", title: str = "", **extra) -> dict:
    return dict(title=title, xlabel=xlabel, ylabel=ylabel, style=style, series=series_list, **extra)


def chart(file: str, kind: str, title: str, sources: List[str], panels: List[dict], layout=(1, 1), **extra) -> dict:
    return dict(file=file, chart=kind, title=title, sources=sources, layout=list(layout), panels=panels, **extra)


def run_subtitle(run: BenchRun) -> str:
    """The machine and the date of a run, for every title."""
    return f"{run.gpu}, {run.date}, {run.cpu_threads} CPU threads"


def _time_axis_label(cases: List[Case]) -> str:
    what = "median" if all(c.time_is_median for c in cases) else "mean"
    return f"{what} time per call (us)"


# ---- one chart per op family: time or bandwidth against size -----------------------------

def family_chart(run: BenchRun, stem: str, family: str, cases: List[Case]) -> Optional[dict]:
    # Bandwidth cases (the harness counted their bytes) are drawn as GB/s against the copy
    # ceiling of the same run, which is what the harness's table compares them with.
    bandwidth = all("GB/s" in c.counters for c in cases)
    by_variant: Dict[str, List[Case]] = {}
    for c in sorted(cases, key=lambda c: c.size):
        by_variant.setdefault(c.variant, []).append(c)
    lines = []
    for variant in sorted(by_variant, key=variant_rank):
        vc = by_variant[variant]
        y = [c.counters["GB/s"] for c in vc] if bandwidth else [c.time_us for c in vc]
        lines.append(series(variant_label(variant), kind_of(variant), [c.size for c in vc], y, variant=variant,
                            on_gpu=vc[0].on_gpu))
    if not lines:
        return None
    sizes = sorted({c.size for c in cases})
    if bandwidth and run.copy_ceiling_gbps and any(c.on_gpu for c in cases):
        lines.append(series("device-to-device copy ceiling", "ceiling", [sizes[0], sizes[-1]],
                            [run.copy_ceiling_gbps] * 2))
    labels = {c.size: c.size_label for c in cases}
    p = panel(f"{size_meaning(family)} per call", "GB/s (bytes read + written / median time)" if bandwidth
              else _time_axis_label(cases), lines,
              xscale="log2" if scale_for(sizes) == "log" else "linear",
              yscale=scale_for([v for s in lines for v in s["y"]]),
              xticks=sizes, xticklabels=[labels[s] for s in sizes])
    what = "bandwidth" if bandwidth else "time per call"
    return chart(f"{stem}_{family}.png", "family", f"{family}: {what} by size\n{run_subtitle(run)}", [run.path], [p],
                 family=family)


def family_charts(run: BenchRun, stem: str) -> List[dict]:
    families: Dict[str, List[Case]] = {}
    for c in run.cases:
        if not c.family.startswith(SPECIAL_PREFIXES):
            families.setdefault(c.family, []).append(c)
    charts = [family_chart(run, stem, f, cs) for f, cs in families.items()]
    return [c for c in charts if c]


# ---- Mandelbrot: iterations per second per scene and strategy ------------------------------

def fractal_ceilings(run: BenchRun, scenes: List[str], gpukit_loop: bool) -> Dict[str, float]:
    """The FP issue ceiling per scene in Giter/s, as gpukit_bench states it: a case's Giter/s
    over its "of FP ceiling" (SMs x clock x FP lanes / FP instructions per iteration). All of
    gpukit's strategies run one loop, so they share a ceiling: the row with the largest
    fraction carries the fewest rounding digits. The plain kernel's loop has its own."""
    out = {}
    for scene in scenes:
        rows = [row for (family, variant), row in run.fractal_rows.items()
                if family == scene and row.of_ceiling > 0
                and (variant not in ("plain", "cpu") if gpukit_loop else variant == "plain")]
        if rows:
            best = max(rows, key=lambda r: r.of_ceiling)
            out[scene] = best.giter_per_s / best.of_ceiling
    return out


MANDELBROT_LABELS = {"gpu": "gpukit GPU, automatic strategy", "plain": "plain kernel (the article's loop)"}


def mandelbrot_chart(run: BenchRun, stem: str) -> Optional[dict]:
    cases = [c for c in run.cases if c.family.startswith("mandelbrot_") and "Gitems/s" in c.counters]
    if not cases:
        return None
    scenes = list(dict.fromkeys(c.family for c in cases))
    bars = []
    for variant in sorted({c.variant for c in cases}, key=variant_rank):
        vc = [c for c in cases if c.variant == variant]
        label = MANDELBROT_LABELS.get(variant, variant_label(variant))
        bars.append(series(label, kind_of(variant), [c.family for c in vc],
                           [c.counters["Gitems/s"] for c in vc], variant=variant))
    for gpukit_loop, label in ((True, "FP issue ceiling, gpukit's loop"), (False, "FP issue ceiling, plain kernel's loop")):
        ceilings = fractal_ceilings(run, scenes, gpukit_loop)
        if ceilings:
            bars.append(series(label, "ceiling", list(ceilings), list(ceilings.values()),
                               derived_from=run.log_path))
    p = panel("scene", "Giter/s (iterations iterated; the plain kernel counts the article's loop)", bars,
              style="bars", categories=scenes, xticklabels=[s[len("mandelbrot_"):] for s in scenes],
              yscale=scale_for([v for s in bars for v in s["y"]]))
    return chart(f"{stem}_mandelbrot.png", "mandelbrot",
                 f"Mandelbrot: iterations per second by scene and strategy (the CPU renders downscaled scenes)\n"
                 f"{run_subtitle(run)}", [run.path] + ([run.log_path] if run.log_path else []), [p])


# ---- the model zoo against PyTorch ---------------------------------------------------------

TORCH_LABELS = {"graph_fp32": "PyTorch graph, strict FP32", "graph_tf32": "PyTorch graph, TF32",
                "eager_fp32": "PyTorch eager, strict FP32", "eager_tf32": "PyTorch eager, TF32", "cpu": "PyTorch CPU"}
ZOO_LABELS = {"graph": "gpukit, one CUDA graph", "gpu": "gpukit eager", "cpu": "gpukit CPU fallback"}


def _zoo_series(medians: dict, groups: List[str], kind: str, variant: str, label: str, what: str) -> Optional[dict]:
    """The medians of one variant at the groups ("model/batch") where it was measured."""
    points = [(g, medians.get((g.split("/")[0], kind, variant, int(g.split("/")[1])))) for g in groups]
    points = [(g, v) for g, v in points if v is not None]
    return series(label, what, [g for g, _ in points], [v for _, v in points], variant=variant) if points else None


def zoo_chart(run: BenchRun, stem: str, peer: Optional[PeerRun], kind: str, on_gpu: bool) -> Optional[dict]:
    """gpukit's zoo cases of one kind ("train", "forward") on the GPU or the CPU, one group
    of bars per model and batch, next to PyTorch's variants at the same model and batch."""
    ours = ["graph", "gpu"] if on_gpu else ["cpu"]
    keys = [k for k in run.zoo if k[1] == kind and k[2] in ours]
    if not keys:
        return None
    groups = [f"{m}/{b}" for m in zoo_table.model_order(run.zoo) for b in sorted({k[3] for k in keys if k[0] == m})]
    bars = [_zoo_series(run.zoo, groups, kind, v, ZOO_LABELS[v], "measured") for v in ours]
    if peer:
        bars += [_zoo_series(peer.medians, groups, kind, v, TORCH_LABELS[v], "peer")
                 for v in TORCH_LABELS if (v == "cpu") != on_gpu]
    bars = [b for b in bars if b]
    what = "training step (check, forward, loss, backward, Adam)" if kind == "train" else "forward pass"
    where = "GPU" if on_gpu else "CPU"
    subtitle = run_subtitle(run)
    if peer:
        subtitle += f"; PyTorch {peer.meta.get('torch', '?')}"
        if not on_gpu:
            subtitle += f" on {peer.meta.get('cpu_threads', '?')} CPU threads"
    p = panel("model / batch", "median time per call (us)", bars, style="bars", categories=groups,
              xticklabels=[g.replace("/", "\nbatch ") for g in groups],
              yscale=scale_for([v for s in bars for v in s["y"]]))
    return chart(f"{stem}_zoo_{kind}_{where.lower()}.png", f"zoo_{kind}_{where.lower()}",
                 f"Model zoo, {what}, {where}\n{subtitle}", [run.path] + ([peer.path] if peer else []), [p])


def zoo_charts(run: BenchRun, stem: str, peer: Optional[PeerRun]) -> List[dict]:
    charts = [zoo_chart(run, stem, peer, "train", True), zoo_chart(run, stem, peer, "train", False),
              zoo_chart(run, stem, peer, "forward", True)]
    return [c for c in charts if c]


# ---- GPU over CPU ------------------------------------------------------------------------

# gpukit's GPU paths that the speedup chart sets against its CPU path: the automatic one,
# eager, and the CUDA graph where there is one.
SPEEDUP_VARIANTS = ("gpu", "graph")


def speedup_chart(run: BenchRun, stem: str) -> Optional[dict]:
    cpu = {(c.family, c.size): c for c in run.cases if c.variant == "cpu" and not c.on_gpu}
    groups, by_variant = [], {v: ([], []) for v in SPEEDUP_VARIANTS}
    for c in run.cases:
        if c.variant in SPEEDUP_VARIANTS and c.on_gpu and (c.family, c.size) in cpu and c.time_us > 0:
            group = f"{c.family} {c.size_label}"
            if group not in groups:
                groups.append(group)
            by_variant[c.variant][0].append(group)
            by_variant[c.variant][1].append(cpu[(c.family, c.size)].time_us / c.time_us)
    bars = [series(variant_label(v), "measured", x, y, variant=v) for v, (x, y) in by_variant.items() if x]
    if not bars:
        return None
    p = panel("speedup: CPU fallback's time / GPU time (same case, same size)", "case and size", bars, style="hbars",
              categories=groups, xscale=scale_for([v for s in bars for v in s["y"]]), bar_labels="{:.3g}x")
    return chart(f"{stem}_speedup.png", "speedup", f"gpukit: GPU over CPU fallback\n{run_subtitle(run)}",
                 [run.path], [p])


# ---- training curves ---------------------------------------------------------------------

def _curve(h: History, column: str, label: str, dashed: bool) -> Optional[dict]:
    values = h.columns.get(column)
    if not values:
        return None
    points = [(e, v) for e, v in zip(h.columns["epoch"], values) if v is not None and math.isfinite(v)]
    if not points:
        return None  # e.g. val_loss without a validation set
    return series(label, "measured", [e for e, _ in points], [v for _, v in points], column=column, dashed=dashed)


def history_chart(h: History, stem: str) -> Optional[dict]:
    wanted = [("loss", [("loss", "training loss"), ("val_loss", "validation loss")]),
              ("accuracy", [("accuracy", "training accuracy"), ("val_accuracy", "validation accuracy")]),
              ("images/s", [("images_per_second", "training images/s")])]
    panels = []
    for ylabel, columns in wanted:
        curves = [c for c in (_curve(h, col, label, col.startswith("val_")) for col, label in columns) if c]
        if curves:
            panels.append(panel("epoch", ylabel, curves, title=ylabel, xscale="linear", xinteger=True,
                                yscale=scale_for([v for s in curves for v in s["y"]]) if ylabel == "loss" else "linear"))
    if not panels:
        return None
    return chart(f"{stem}_training.png", "history", f"Training history: {os.path.basename(h.path)}", [h.path], panels,
                 layout=(1, len(panels)))
