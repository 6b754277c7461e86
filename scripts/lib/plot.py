#!/usr/bin/env python3
"""Charts of gpukit's benchmark results and training histories (run through scripts/plot).

    scripts/plot [--out DIR] [--peer torch_zoo.json] [--history FILE]... [BENCH_JSON...]

BENCH_JSON: gpukit_bench's --benchmark_out_format=json output. Its Mandelbrot ceilings come
from the log of the same run next to it (NAME.log, as scripts/bench writes it). --peer:
benchmarks/peers/torch_zoo.py's JSON, drawn next to the zoo cases. --history: a history
written by fit() (CSV or JSON). Writes PNGs and plots.json (every PNG with its title, axes
and the values of every series) into DIR, by default the folder of the first BENCH_JSON
(else of the first history).
"""
import argparse
import json
import os
import sys

# The modules next to this one, without leaving __pycache__ folders in the checkout.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_charts  # noqa: E402
from plot_inputs import InputError, load_bench, load_history, load_peer, sibling_log  # noqa: E402

MATPLOTLIB_HINT = ("scripts/plot: matplotlib is not installed for {python}: no charts drawn.\n"
                   "  Debian/Ubuntu: sudo apt-get install python3-matplotlib\n"
                   "  or:            pip install matplotlib")

# One colour per series label in every chart, so that "gpukit GPU" looks the same everywhere.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="scripts/plot", description=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", nargs="*", metavar="BENCH_JSON", help="gpukit_bench's Google Benchmark JSON")
    ap.add_argument("--out", metavar="DIR", help="where the PNGs and plots.json go")
    ap.add_argument("--peer", metavar="torch_zoo.json", help="PyTorch's zoo results (benchmarks/peers/torch_zoo.py)")
    ap.add_argument("--history", action="append", default=[], metavar="FILE", help="a training history (CSV or JSON)")
    a = ap.parse_args(argv)
    if not a.bench and not a.history:
        ap.error("nothing to plot: give at least one BENCH_JSON or --history FILE")
    a.bench, a.history = list(dict.fromkeys(a.bench)), list(dict.fromkeys(a.history))  # each file once
    return a


def unique_stems(paths):
    """A name per input for its charts' files: the file's stem, made unique where two inputs
    share it by their extension (run.csv, run.json), then their folder, then both."""
    def names(p):
        base, ext = os.path.splitext(os.path.basename(p))
        folder = os.path.basename(os.path.dirname(os.path.abspath(p)))
        ext = ext.lstrip(".")
        return [base, f"{base}_{ext}", f"{folder}_{base}", f"{folder}_{base}_{ext}"]
    stems = {}
    for p in paths:
        levels = range(4)
        level = next((i for i in levels if sum(names(q)[i] == names(p)[i] for q in paths) == 1), None)
        # The same file twice, or names alike at every level: number them.
        stems[p] = names(p)[level] if level is not None else f"{names(p)[3]}_{len(stems) + 1}"
    return stems


def build_charts(runs, peer, histories, stems):
    charts = []
    for run in runs:
        stem = stems[run.path]
        for part in (plot_charts.family_charts(run, stem), [plot_charts.mandelbrot_chart(run, stem)],
                     plot_charts.zoo_charts(run, stem, peer), [plot_charts.speedup_chart(run, stem)]):
            charts.extend(c for c in part if c)
    for h in histories:
        c = plot_charts.history_chart(h, stems[h.path])
        if c:
            charts.append(c)
    return charts


# ---- drawing -----------------------------------------------------------------------------

def colour_for(label, colours):
    return colours.setdefault(label, PALETTE[len(colours) % len(PALETTE)])


def draw_lines(ax, p, colours):
    for s in p["series"]:
        if s["kind"] == "ceiling":
            ax.axhline(s["y"][0], color="black", linestyle="--", linewidth=1.2, label=f"{s['label']} ({s['y'][0]:.0f})")
            continue
        style = "--" if s["kind"] == "peer" or s.get("dashed") else "-"
        ax.plot(s["x"], s["y"], style, marker="s" if s["kind"] == "peer" else "o", color=colour_for(s["label"], colours),
                label=s["label"])
    if p.get("xscale") == "log2":
        ax.set_xscale("log", base=2)
    elif p.get("xscale") == "log":
        ax.set_xscale("log")
    if p.get("xinteger"):
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
    if p.get("xticks"):
        ax.set_xticks(p["xticks"])
        ax.set_xticklabels(p["xticklabels"])
        ax.minorticks_off()  # the sizes themselves are the ticks


def draw_bars(ax, p, colours, horizontal=False):
    categories = p["categories"]
    position = {c: i for i, c in enumerate(categories)}
    bar_series = [s for s in p["series"] if s["kind"] != "ceiling"]
    # A group spans at most 0.8 of a category; few series keep slim bars.
    width = min(0.8 / max(1, len(bar_series)), 0.3)
    first = -width * len(bar_series) / 2
    log = p.get("xscale" if horizontal else "yscale") == "log"
    for i, s in enumerate(bar_series):
        at = [position[x] + first + width * (i + 0.5) for x in s["x"]]
        style = dict(color=colour_for(s["label"], colours), label=s["label"], log=log,
                     hatch="//" if s["kind"] == "peer" else None, edgecolor="white" if s["kind"] == "peer" else None)
        if horizontal:
            ax.barh(at, s["y"], height=width, **style)
            if p.get("bar_labels"):
                for y, v in zip(at, s["y"]):
                    ax.text(v, y, " " + p["bar_labels"].format(v), va="center", fontsize=6)
        else:
            ax.bar(at, s["y"], width=width, **style)
    for j, s in enumerate(x for x in p["series"] if x["kind"] == "ceiling"):
        for k, (x, y) in enumerate(zip(s["x"], s["y"])):
            ax.hlines(y, position[x] - 0.45, position[x] + 0.45, colors="black", linestyles="--" if j == 0 else ":",
                      linewidth=1.5, label=s["label"] if k == 0 else None)
    ticks = list(range(len(categories)))
    labels = p.get("xticklabels", categories)
    if horizontal:
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()  # the first case at the top, as in the table
    else:
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, fontsize=8)


def readable_log_ticks(axis, values):
    """Labels at 1, 2 and 5 of each decade where the values span less than three decades
    (matplotlib labels only the powers of ten, which may leave a single label)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    values = [v for v in values if v and v > 0]
    if values and max(values) / min(values) < 1e3:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def draw_panel(ax, p, colours):
    if p["style"] == "lines":
        draw_lines(ax, p, colours)
    else:
        draw_bars(ax, p, colours, horizontal=p["style"] == "hbars")
    values = [v for s in p["series"] for v in s["y"]]
    if p["style"] == "hbars":
        if p.get("xscale") == "log":
            readable_log_ticks(ax.xaxis, values)
    elif p.get("yscale") == "log":
        ax.set_yscale("log")
        readable_log_ticks(ax.yaxis, values)
    ax.set_xlabel(p["xlabel"])
    ax.set_ylabel(p["ylabel"])
    if p.get("title"):
        ax.set_title(p["title"], fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if p["style"] == "bars":
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # bars fill the plot area
    else:
        ax.legend(fontsize=7, loc="best")


def figure_size(c):
    rows, cols = c["layout"]
    p = c["panels"][0]
    if p["style"] == "hbars":
        return 11, max(4.0, 0.22 * len(p["categories"]) * max(1, len(p["series"])) + 1.5)
    if p["style"] == "bars":
        return max(10.0, 0.9 * len(p["categories"]) + 4), 6.5
    return 5.2 * cols if cols > 1 else 10, 5.5 * rows


def render(c, out_dir, plt):
    rows, cols = c["layout"]
    fig, axes = plt.subplots(rows, cols, figsize=figure_size(c), squeeze=False)
    colours = {}
    for ax, p in zip(axes.flat, c["panels"]):
        draw_panel(ax, p, colours)
    fig.suptitle(c["title"], fontsize=11)
    fig.tight_layout()
    path = os.path.join(out_dir, c["file"])
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def import_pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), or None."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_manifest(out_dir, charts, inputs):
    manifest = {"generator": "scripts/plot", "inputs": inputs, "plots": charts,
                "notes": "series x and y are the plotted values; kind: measured (gpukit), peer, ceiling; "
                         "in an hbars panel the categories (x) run down the vertical axis"}
    path = os.path.join(out_dir, "plots.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return path


def main(argv):
    a = parse_args(argv)
    # Every input is read and checked before anything is drawn or written.
    try:
        runs = [load_bench(p) for p in a.bench]
        peer = load_peer(a.peer) if a.peer else None
        histories = [load_history(p) for p in a.history]
    except InputError as e:
        print(f"scripts/plot: {e}", file=sys.stderr)
        return 1
    for run in runs:
        for name, message in run.errors:
            print(f"scripts/plot: {run.path}: {name} has no figure ({message})", file=sys.stderr)
        if any(c.family.startswith("mandelbrot_") and c.on_gpu for c in run.cases) and not run.log_path:
            print(f"scripts/plot: {run.path}: no FP ceilings on the Mandelbrot chart (they are printed in the "
                  f"run's log, and no matching {sibling_log(run.path)} is next to it)", file=sys.stderr)
    if peer and not any(run.zoo for run in runs):
        print(f"scripts/plot: {peer.path}: no zoo cases in the benchmark JSON to set it against", file=sys.stderr)
    plt = import_pyplot()
    if plt is None:
        print(MATPLOTLIB_HINT.format(python=sys.executable), file=sys.stderr)
        return 0  # charts are optional: scripts/bench must not fail for want of them
    out_dir = a.out or os.path.dirname(os.path.abspath((a.bench or a.history)[0]))
    os.makedirs(out_dir, exist_ok=True)
    stems = unique_stems(a.bench + a.history)
    charts = build_charts(runs, peer, histories, stems)
    written = [render(c, out_dir, plt) for c in charts]
    inputs = {"bench": a.bench, "peer": a.peer, "history": a.history}
    manifest = write_manifest(out_dir, charts, inputs)
    if not written:
        print("scripts/plot: nothing to plot in the inputs; no charts written", file=sys.stderr)
    print(f"{len(written)} charts, listed in {manifest}:")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
