#!/usr/bin/env python3
"""Runs scripts/plot and checks what it wrote against its inputs, through plots.json.

    check_plots.py --plot SCRIPT --out DIR [--peer torch_zoo.json] [--history FILE]... [BENCH_JSON...]
    check_plots.py --plot SCRIPT --bad-input DIR

The first form runs SCRIPT on the inputs into DIR (emptied first), then derives from the
inputs alone, without scripts/lib's code, which charts must exist and which values each
series must hold: every PNG is listed and non-empty, no chart is missing or extra, and the
series equal the inputs (times, GB/s, Giter/s, medians, losses exactly; the copy ceiling is
the context's; the Mandelbrot FP ceilings the log's). The second form checks that bad input
fails with a message naming the file. Exit 77 (CTest's skip) when matplotlib is missing.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys

SKIP = 77
FAILURES = []


def check(condition, message):
    if not condition:
        FAILURES.append(message)
    return condition


def run_plot(script, args):
    p = subprocess.run([script] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


# ---- the inputs, read independently of scripts/lib ----------------------------------------

UNIT_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def size_of(label):
    return 2 ** int(label[2:]) if label.startswith("2^") else int(label)


def bench_cases(doc):
    """(family, variant, size label) -> entry, with its time in us and GPU-ness added."""
    cases = {}
    for b in doc["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        parts = b["name"].split("/")
        key = tuple(parts[:3])
        if b.get("error_occurred") or b.get("error_message"):
            cases.pop(key, None)
            continue
        time_us = b["median_us"] if "median_us" in b else b["real_time"] * UNIT_US[b["time_unit"]]
        cases[key] = dict(b, time_us=time_us, on_gpu="manual_time" in parts[3:], size=size_of(parts[2]))
    return cases


def fractal_log(json_path):
    """The fractal table of the log next to the JSON: (family, variant) -> (Giter/s, fraction),
    and the FP lanes per second it states (FP64, FP32)."""
    path = os.path.splitext(json_path)[0] + ".log"
    rows, lanes = {}, None
    if not os.path.isfile(path):
        return rows, lanes
    text = open(path, encoding="utf-8", errors="replace").read()
    table = text[text.rfind("Fractal cases"):] if "Fractal cases" in text else ""
    m = re.search(r"FP lanes: ([\d.]+) T/s FP64, ([\d.]+) T/s FP32", table)
    if m:
        lanes = (float(m.group(1)) * 1e12, float(m.group(2)) * 1e12)
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| mandelbrot_") and len(cells) == 8:
            rows[(cells[0], cells[2])] = (float(cells[5]), float(cells[6].rstrip("%")) / 100 if cells[6] else 0.0)
    return rows, lanes


# ---- the manifest -------------------------------------------------------------------------

def check_files(out, manifest, stdout):
    listed = [p["file"] for p in manifest["plots"]]
    check(len(listed) == len(set(listed)), f"a PNG is listed twice: {listed}")
    for name in listed:
        path = os.path.join(out, name)
        if check(os.path.isfile(path), f"{name}: listed but not written"):
            with open(path, "rb") as f:
                head = f.read(8)
            check(head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000, f"{name}: not a non-empty PNG")
    on_disk = sorted(f for f in os.listdir(out) if f.endswith(".png"))
    check(on_disk == sorted(listed), f"PNGs on disk {on_disk} != listed {sorted(listed)}")
    printed = [os.path.basename(l) for l in stdout.splitlines() if l.endswith(".png")]
    check(sorted(printed) == sorted(listed), f"printed PNG paths {printed} != listed {listed}")
    for p in manifest["plots"]:
        for panel in p["panels"]:
            check(panel["xlabel"] and panel["ylabel"], f"{p['file']}: an axis without a label")
            for s in panel["series"]:
                check(s["kind"] in ("measured", "peer", "ceiling"), f"{p['file']}: {s['label']}: kind {s['kind']}")
                check(len(s["x"]) == len(s["y"]) > 0, f"{p['file']}: {s['label']}: x and y differ in length or are empty")


def charts_of(manifest, kind, source):
    return [p for p in manifest["plots"] if p["chart"] == kind and source in p["sources"]]


def one_chart(manifest, kind, source, expected, **match):
    """The one chart of `kind` from `source` (with `match`ing keys), when `expected`;
    otherwise checks that there is none."""
    found = [p for p in charts_of(manifest, kind, source) if all(p.get(k) == v for k, v in match.items())]
    what = f"{kind} chart of {source}" + (f" for {match}" if match else "")
    if not expected:
        check(not found, f"a {what} with nothing to plot was written")
        return None
    if check(len(found) == 1, f"expected one {what}, found {len(found)}"):
        return found[0]
    return None


def series_by(panel, key="variant"):
    return {s.get(key): s for s in panel["series"] if s["kind"] != "ceiling"}


def ceilings(panel):
    return [s for s in panel["series"] if s["kind"] == "ceiling"]


def check_series(where, got, x, y, exact=True):
    if not check(got is not None, f"{where}: series missing"):
        return
    check(got["x"] == list(x), f"{where}: x {got['x']} != {list(x)}")
    if exact:
        check(got["y"] == list(y), f"{where}: y {got['y']} != {list(y)}")
    else:
        check(len(got["y"]) == len(y) and all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(got["y"], y)),
              f"{where}: y {got['y']} != {list(y)}")


# ---- what each input must give --------------------------------------------------------------

def check_titles(manifest, path, context):
    gpu = context.get("gpu", "none")
    gpu = "no GPU" if gpu in ("", "none") else gpu
    for p in (p for p in manifest["plots"] if p["sources"][0] == path):
        check(gpu in p["title"] and context["date"][:10] in p["title"],
              f"{p['file']}: the title {p['title']!r} lacks the GPU ({gpu}) or the date")


def check_families(manifest, path, context, cases):
    families = {}
    for (family, variant, _), c in cases.items():
        if not family.startswith(("mandelbrot_", "zoo_")):
            families.setdefault(family, []).append(c)
    check(len(charts_of(manifest, "family", path)) == len(families),
          f"{path}: {len(charts_of(manifest, 'family', path))} family charts for {len(families)} families")
    for family, cs in families.items():
        p = one_chart(manifest, "family", path, True, family=family)
        if not p:
            continue
        panel = p["panels"][0]
        bandwidth = all("GB/s" in c for c in cs)
        got = series_by(panel)
        variants = {c["name"].split("/")[1] for c in cs}
        check(set(got) == variants, f"{p['file']}: variants {sorted(got)} != {sorted(variants)}")
        for v in variants:
            vc = sorted((c for c in cs if c["name"].split("/")[1] == v), key=lambda c: c["size"])
            check_series(f"{p['file']} {v}", got.get(v), [c["size"] for c in vc],
                         [c["GB/s"] if bandwidth else c["time_us"] for c in vc])
        ceiling = float(context.get("copy_ceiling_GBps", 0) or 0)
        want_ceiling = bandwidth and ceiling > 0 and any(c["on_gpu"] for c in cs)
        if check(len(ceilings(panel)) == int(want_ceiling), f"{p['file']}: copy ceiling drawn: {not want_ceiling}"):
            for s in ceilings(panel):
                check(all(y == ceiling for y in s["y"]), f"{p['file']}: copy ceiling {s['y']} != {ceiling}")


def check_mandelbrot(manifest, path, cases):
    cs = [c for (f, _, _), c in cases.items() if f.startswith("mandelbrot_") and "Gitems/s" in c]
    p = one_chart(manifest, "mandelbrot", path, bool(cs))
    if not p:
        return
    panel = p["panels"][0]
    got = series_by(panel)
    variants = {c["name"].split("/")[1] for c in cs}
    check(set(got) == variants, f"{p['file']}: variants {sorted(got)} != {sorted(variants)}")
    for v in variants:
        vc = [c for c in cs if c["name"].split("/")[1] == v]
        check_series(f"{p['file']} {v}", got.get(v), [c["name"].split("/")[0] for c in vc], [c["Gitems/s"] for c in vc])
    rows, lanes = fractal_log(path)
    scenes = list(dict.fromkeys(c["name"].split("/")[0] for c in cs))
    expected = []
    for plain in (False, True):
        want = {}
        for scene in scenes:
            candidates = [r for (f, v), r in rows.items() if f == scene and r[1] > 0
                          and ((v == "plain") if plain else v not in ("plain", "cpu"))]
            if candidates:
                rate, fraction = max(candidates, key=lambda r: r[1])
                want[scene] = rate / fraction
        if want:
            expected.append(want)
    got_ceilings = ceilings(panel)
    if not check(len(got_ceilings) == len(expected), f"{p['file']}: {len(got_ceilings)} ceilings, want {len(expected)}"):
        return
    for s, want in zip(got_ceilings, expected):
        check_series(f"{p['file']} {s['label']}", s, list(want), list(want.values()), exact=False)
        # The ceiling is the one the benchmark states: FP lanes over the instructions of the
        # loop (7 for gpukit in float and double, 63 in double-double, 10 for the plain kernel).
        for scene, value in want.items():
            check(lanes and any(abs(value * 1e9 * ops / l - 1) < 0.01 for ops in (7, 10, 63) for l in lanes),
                  f"{p['file']}: {scene}: ceiling {value} Giter/s is no FP lane rate over 7, 10 or 63 instructions")


def zoo_medians(doc):
    out = {}
    for b in doc["benchmarks"]:
        m = re.match(r"^zoo_(train|forward)_(\w+)/(\w+)/([^/]+)", b["name"])
        if m and "median_us" in b and b.get("run_type", "iteration") == "iteration":
            out[(m.group(2), m.group(1), m.group(3), size_of(m.group(4)))] = b["median_us"]
    return out


def check_zoo(manifest, path, doc, peer_path):
    ours = zoo_medians(doc)
    theirs = {}
    if peer_path:
        theirs = {(r["model"], r["kind"], r["variant"], r["batch"]): r["us"] for r in json.load(open(peer_path))["results"]}
    for kind, on_gpu, chart in (("train", True, "zoo_train_gpu"), ("train", False, "zoo_train_cpu"),
                                ("forward", True, "zoo_forward_gpu")):
        variants = ("graph", "gpu") if on_gpu else ("cpu",)
        keys = [k for k in ours if k[1] == kind and k[2] in variants]
        p = one_chart(manifest, chart, path, bool(keys))
        if not p:
            continue
        panel = p["panels"][0]
        models = list(dict.fromkeys(k[0] for k in ours))
        groups = [f"{m}/{b}" for m in models for b in sorted({k[3] for k in keys if k[0] == m})]
        check(panel["categories"] == groups, f"{p['file']}: groups {panel['categories']} != {groups}")
        # gpukit's and PyTorch's CPU series are both "cpu": the kind tells them apart.
        got = {(s["kind"], s["variant"]): s for s in panel["series"]}

        def expect(table, variant):
            pts = [(g, table.get((g.split("/")[0], kind, variant, int(g.split("/")[1])))) for g in groups]
            return [g for g, v in pts if v is not None], [v for g, v in pts if v is not None]

        want = [("measured", v) for v in variants if expect(ours, v)[0]] + \
               [("peer", v) for v in ("graph_fp32", "graph_tf32", "eager_fp32", "eager_tf32", "cpu")
                if (v == "cpu") != on_gpu and expect(theirs, v)[0]]
        check(sorted(got) == sorted(want), f"{p['file']}: series {sorted(got)} != {sorted(want)}")
        for k in want:
            x, y = expect(theirs if k[0] == "peer" else ours, k[1])
            check_series(f"{p['file']} {k}", got.get(k), x, y)
        if on_gpu and kind == "train" and any(k[0] == "vgg" for k in keys):
            graph = got.get(("measured", "graph"), {"x": [], "y": []})
            vgg = [(x, y) for x, y in zip(graph["x"], graph["y"]) if x.startswith("vgg/")]
            check(vgg and all(y == ours[("vgg", "train", "graph", int(x.split("/")[1]))] for x, y in vgg),
                  f"{p['file']}: gpukit's graph series for vgg is not the JSON's median_us")


def check_speedup(manifest, path, cases):
    want = {}
    for (family, variant, size), c in cases.items():
        cpu = cases.get((family, "cpu", size))
        if variant in ("gpu", "graph") and c["on_gpu"] and cpu and not cpu["on_gpu"]:
            want.setdefault(variant, ([], []))
            want[variant][0].append(f"{family} {size}")
            want[variant][1].append(cpu["time_us"] / c["time_us"])
    p = one_chart(manifest, "speedup", path, bool(want))
    if not p:
        return
    got = series_by(p["panels"][0])
    check(set(got) == set(want), f"{p['file']}: series {sorted(got)} != {sorted(want)}")
    for v, (x, y) in want.items():
        check_series(f"{p['file']} {v}", got.get(v), x, y)


def check_history(manifest, path):
    if path.endswith(".json"):
        cols = json.load(open(path))
    else:
        lines = open(path).read().split()
        header = lines[0].split(",")
        cols = {h: [None if f == "" else float(f) for f in col] for h, col in
                zip(header, zip(*(l.split(",") for l in lines[1:])))}
    p = one_chart(manifest, "history", path, True)
    if not p:
        return
    got = {s["column"]: s for panel in p["panels"] for s in panel["series"]}
    for column in ("loss", "val_loss", "accuracy", "val_accuracy", "images_per_second"):
        pts = [(e, v) for e, v in zip(cols["epoch"], cols[column]) if v is not None]
        if not pts:
            check(column not in got, f"{p['file']}: {column} drawn without values")
            continue
        check_series(f"{p['file']} {column}", got.get(column), [e for e, _ in pts], [v for _, v in pts])


# ---- the two forms ------------------------------------------------------------------------

def check_run(a):
    shutil.rmtree(a.out, ignore_errors=True)
    args = ["--out", a.out] + (["--peer", a.peer] if a.peer else []) + \
        [x for h in a.history for x in ("--history", h)] + a.bench
    rc, out, err = run_plot(a.plot, args)
    manifest_path = os.path.join(a.out, "plots.json")
    if rc == 0 and not os.path.exists(manifest_path) and "matplotlib" in err:
        print(f"skipped: {err.strip()}")
        return SKIP
    if not check(rc == 0 and os.path.exists(manifest_path), f"scripts/plot failed ({rc}):\n{out}\n{err}"):
        return 1
    manifest = json.load(open(manifest_path))
    check_files(a.out, manifest, out)
    for path in a.bench:
        doc = json.load(open(path))
        cases = bench_cases(doc)
        check_titles(manifest, path, doc["context"])
        check_families(manifest, path, doc["context"], cases)
        check_mandelbrot(manifest, path, cases)
        check_zoo(manifest, path, doc, a.peer)
        check_speedup(manifest, path, cases)
    for path in a.history:
        check_history(manifest, path)
    expected_sources = set(a.bench + a.history)
    check(all(p["sources"][0] in expected_sources for p in manifest["plots"]), "a chart of an unknown input")
    print(f"{len(manifest['plots'])} charts checked in {a.out}")
    return 0


def check_bad_input(a):
    """Each bad file must fail, with its name in the message; nothing is drawn."""
    shutil.rmtree(a.bad_input, ignore_errors=True)
    os.makedirs(a.bad_input)
    files = {"not_json.json": "this is not JSON\n", "no_benchmarks.json": '{"context": {}}\n',
             "empty_run.json": '{"context": {}, "benchmarks": []}\n', "bad_history.csv": "epoch,loss\n1,not-a-number\n"}
    for name, text in files.items():
        with open(os.path.join(a.bad_input, name), "w") as f:
            f.write(text)
    d = a.bad_input
    cases = [([os.path.join(d, "not_json.json")], "not_json.json"),
             ([os.path.join(d, "no_benchmarks.json")], "no_benchmarks.json"),
             ([os.path.join(d, "missing.json")], "missing.json"),
             (["--history", os.path.join(d, "bad_history.csv")], "bad_history.csv"),
             (["--peer", os.path.join(d, "no_benchmarks.json"), os.path.join(d, "empty_run.json")], "no_benchmarks.json")]
    for args, name in cases:
        rc, out, err = run_plot(a.plot, ["--out", os.path.join(d, "out")] + args)
        check(rc != 0, f"scripts/plot {' '.join(args)}: exit code 0 on bad input")
        check(name in err, f"scripts/plot {' '.join(args)}: the message does not name {name}: {err!r}")
        print(f"refused {name}: {err.strip().splitlines()[-1] if err.strip() else '(no message)'}")
    check(not os.path.exists(os.path.join(d, "out", "plots.json")), "bad input still wrote plots.json")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plot", required=True)
    ap.add_argument("--out")
    ap.add_argument("--peer")
    ap.add_argument("--history", action="append", default=[])
    ap.add_argument("--bad-input", metavar="DIR")
    ap.add_argument("bench", nargs="*")
    a = ap.parse_args()
    rc = check_bad_input(a) if a.bad_input else check_run(a)
    for f in FAILURES:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if FAILURES else rc


if __name__ == "__main__":
    sys.exit(main())
