"""What scripts/plot reads: gpukit_bench's Google Benchmark JSON (with the log the same run
printed next to it), torch_zoo.py's JSON and the training histories that fit() writes.

Standard library only, so that bad input is reported before matplotlib is needed. Every
problem with a file raises InputError with a message that starts with the file's name.
"""
import csv
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

# benchmarks/peers/zoo_table.py pairs gpukit's zoo cases with PyTorch's: the charts use its
# readers instead of a second copy of them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks", "peers"))
import zoo_table  # noqa: E402


class InputError(Exception):
    """A file that cannot be plotted."""


# Google Benchmark's time units, in microseconds.
_US_PER_UNIT = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


@dataclass
class Case:
    """One finished gpukit_bench case, "<family>/<variant>/<size>" (benchmarks/support/harness.hpp)."""
    family: str
    variant: str
    size: int
    size_label: str   # as the harness prints it: "2^24" or the number
    on_gpu: bool      # timed with CUDA events (Google Benchmark's manual time)
    time_us: float    # the harness's median when recorded (median_us), else Google Benchmark's mean
    counters: Dict[str, float]

    @property
    def time_is_median(self) -> bool:
        return "median_us" in self.counters


@dataclass
class FractalRow:
    """One row of the fractal table gpukit_bench prints at exit (benchmarks/fractal_bench.cu)."""
    giter_per_s: float
    of_ceiling: float  # fraction of the FP issue ceiling; 0 where the table shows none


@dataclass
class BenchRun:
    path: str
    context: dict
    cases: List[Case]
    errors: List[Tuple[str, str]]              # (case name, message) of cases without a figure
    fractal_rows: Dict[Tuple[str, str], FractalRow] = field(default_factory=dict)
    log_path: Optional[str] = None
    zoo: Dict[Tuple[str, str, str, int], float] = field(default_factory=dict)  # zoo_table.gpukit_medians

    @property
    def gpu(self) -> str:
        name = str(self.context.get("gpu", "")).strip()
        return "no GPU" if name in ("", "none") else name

    @property
    def date(self) -> str:
        return str(self.context.get("date", ""))[:10]

    @property
    def cpu_threads(self) -> str:
        return str(self.context.get("cpu_threads", self.context.get("num_cpus", "?")))

    @property
    def copy_ceiling_gbps(self) -> Optional[float]:
        """The device-to-device copy ceiling the run measured; None without a GPU."""
        try:
            value = float(self.context["copy_ceiling_GBps"])
        except (KeyError, TypeError, ValueError):
            return None
        return value if value > 0 else None


@dataclass
class PeerRun:
    path: str
    medians: Dict[Tuple[str, str, str, int], float]  # (model, kind, variant, batch) -> us
    meta: dict


@dataclass
class History:
    path: str
    columns: Dict[str, List[Optional[float]]]  # "epoch", "loss", ...; None where a value is missing


def _read_json(path: str):
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not JSON (not even UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def parse_size(label: str) -> Optional[int]:
    """The harness's size label as a number: "2^24" -> 16777216, "2000" -> 2000."""
    if re.fullmatch(r"2\^\d+", label):
        return 2 ** int(label[2:])
    if re.fullmatch(r"\d+", label):
        return int(label)
    return None


def _case_from(entry: dict) -> Optional[Case]:
    """The Case of one "iteration" entry, or None for names the harness does not make."""
    parts = str(entry.get("name", "")).split("/")
    if len(parts) < 3 or parse_size(parts[2]) is None:
        return None
    counters = {k: v for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "median_us" in counters:
        time_us = float(counters["median_us"])
    else:
        time_us = float(entry.get("real_time", 0.0)) * _US_PER_UNIT.get(entry.get("time_unit", "ns"), 1e-3)
    # The harness registers GPU cases with UseManualTime (CUDA events) and CPU cases with
    # UseRealTime; Google Benchmark appends that to the name.
    return Case(parts[0], parts[1], parse_size(parts[2]), parts[2], "manual_time" in parts[3:], time_us, counters)


def _is_error(entry: dict) -> bool:
    # Google Benchmark 1.7 marks SkipWithError with error_occurred; 1.8 also writes
    # error_message for SkipWithMessage. Either way the case has no figure.
    return bool(entry.get("error_occurred")) or bool(entry.get("error_message"))


def load_bench(path: str) -> BenchRun:
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise InputError(f'{path}: no "benchmarks" list: not Google Benchmark JSON '
                         "(gpukit_bench --benchmark_out=FILE --benchmark_out_format=json)")
    context = doc.get("context") if isinstance(doc.get("context"), dict) else {}
    cases: Dict[Tuple[str, str, str], Case] = {}
    errors = []
    for entry in doc["benchmarks"]:
        if not isinstance(entry, dict) or entry.get("run_type", "iteration") != "iteration":
            continue  # aggregates of repetitions: the harness's own table keeps the last run too
        case = _case_from(entry)
        key = (case.family, case.variant, case.size_label) if case else None
        if _is_error(entry):
            errors.append((str(entry.get("name", "?")), str(entry.get("error_message", ""))))
            cases.pop(key, None)  # an earlier repetition's figure is not this run's
        elif case is not None:
            cases[key] = case  # a later repetition replaces an earlier one, as in the harness
    run = BenchRun(path, context, list(cases.values()), errors)
    run.zoo = zoo_table.gpukit_medians(path)[0]
    _attach_fractal_log(run)
    return run


def sibling_log(path: str) -> str:
    """Where gpukit_bench's printed output lives: scripts/bench tees it next to the JSON
    (gpukit_bench.json, gpukit_bench.log); the recorded runs follow the same naming."""
    return os.path.splitext(path)[0] + ".log"


def _parse_fractal_table(lines) -> Dict[Tuple[str, str], FractalRow]:
    rows = {}
    in_table = False
    for line in lines:
        if line.startswith("Fractal cases"):
            in_table, rows = True, {}  # the last table of the log is this run's
            continue
        if not in_table:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            if not line.startswith("FP lanes"):
                in_table = False
            continue
        if len(cells) != 8 or cells[0] in ("case", "") or cells[0].startswith("---"):
            continue
        try:
            giter = float(cells[5])
            fraction = float(cells[6].rstrip("%")) / 100 if cells[6] else 0.0
        except ValueError:
            continue
        rows[(cells[0], cells[2])] = FractalRow(giter, fraction)
    return rows


def _attach_fractal_log(run: BenchRun) -> None:
    """The FP issue ceiling of the Mandelbrot cases is neither a counter nor in the context:
    gpukit_bench prints it at exit, per case, as Giter/s and "of FP ceiling". Read it from
    the run's log when the log's figures are this JSON's (else it is another run's log)."""
    log = sibling_log(run.path)
    if not os.path.isfile(log):
        return
    with open(log, encoding="utf-8", errors="replace") as f:
        rows = _parse_fractal_table(f)
    for case in run.cases:
        row = rows.get((case.family, case.variant))
        rate = case.counters.get("Gitems/s")
        # The table prints Giter/s with two decimals: 0.5% covers its rounding.
        if row and rate and not math.isclose(row.giter_per_s, rate, rel_tol=5e-3, abs_tol=0.006):
            return
    run.fractal_rows = rows
    run.log_path = log


def load_peer(path: str) -> PeerRun:
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise InputError(f'{path}: no "results" list: not the JSON of benchmarks/peers/torch_zoo.py')
    for r in doc["results"]:
        if not isinstance(r, dict) or not {"model", "kind", "variant", "batch", "us"} <= set(r):
            raise InputError(f"{path}: a result without model, kind, variant, batch and us: {r!r}")
    medians, meta = zoo_table.torch_medians(path)
    return PeerRun(path, medians, meta if isinstance(meta, dict) else {})


# The columns fit() writes, in its order (the C++ side: include/gpukit/train/).
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "images_per_second", "seconds",
                   "learning_rate")


def _number(path: str, where: str, value) -> Optional[float]:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None  # no validation set: empty CSV field, JSON null
    if isinstance(value, bool):
        raise InputError(f"{path}: {where}: {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}: {value!r} is not a number") from None


def _history_from_csv(path: str, text: str) -> Dict[str, List[Optional[float]]]:
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    if header[:2] != ["epoch", "loss"]:
        raise InputError(f"{path}: not a training history (the header must start with epoch,loss; "
                         f"expected {','.join(HISTORY_COLUMNS)})")
    columns = {name: [] for name in header}
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(f"{path}: line {line_no}: {len(row)} fields, the header has {len(header)}")
        for name, value in zip(header, row):
            columns[name].append(_number(path, f"line {line_no}, {name}", value))
    return columns


def _history_from_json(path: str, doc) -> Dict[str, List[Optional[float]]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("epoch"), list) or not isinstance(doc.get("loss"), list):
        raise InputError(f'{path}: not a training history (no "epoch" and "loss" lists)')
    columns = {}
    for name, values in doc.items():
        if not isinstance(values, list):
            continue
        if len(values) != len(doc["epoch"]):
            raise InputError(f'{path}: "{name}" has {len(values)} values for {len(doc["epoch"])} epochs')
        columns[name] = [_number(path, f"{name}[{i}]", v) for i, v in enumerate(values)]
    return columns


def load_history(path: str) -> History:
    """A history in either format: by the extension, else by the content."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a training history (not UTF-8 text)") from None
    ext = os.path.splitext(path)[1].lower()
    as_json = ext == ".json" or (ext != ".csv" and text.lstrip().startswith("{"))
    columns = _history_from_json(path, _read_json(path)) if as_json else _history_from_csv(path, text)
    if not columns["epoch"] or any(e is None for e in columns["epoch"]) or all(v is None for v in columns["loss"]):
        raise InputError(f"{path}: a training history without epochs or losses")
    return History(path, columns)
