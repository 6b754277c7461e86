#!/usr/bin/env python3
"""Per-kernel table of an Nsight Compute CSV of gpukit_zoo_step (one training step).

    ncu --clock-control none --profile-from-start off --csv --log-file step.csv \\
        --metrics gpu__time_duration.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,\\
    sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,\\
    sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,\\
    launch__registers_per_thread,launch__grid_size \\
        build/benchmarks/gpukit_zoo_step --models vgg --batches 256 --precision fp32
    python3 benchmarks/tools/ncu_summary.py step.csv [more.csv ...]

Each kernel in launch order with its time, issue-slot, tensor-pipe, occupancy and DRAM use,
registers and grid; implicit-GEMM kernels are named by product, tile, math and warp grid;
then the time summed per kernel kind. (Profiled kernels run one at a time with caches
flushed, so the total exceeds a graph replay's time.)
"""
import collections
import csv
import re
import sys

MATHS = ['FMA', '3xTF32', 'TF32', 'BF16']


def short(name):
    m = re.search(r'igemm_kernel<(\d+), (\d+), (\d), (\w+_map), (\d+), (\d+), (\d), (\d)>', name)
    if m:
        return f"igemm {m.group(4)} {m.group(1)}x{m.group(2)} {MATHS[int(m.group(3))]} warps {m.group(7)}x{m.group(8)}"
    name = re.sub(r'\(.*', '', name)
    name = re.sub(r'<.*', '', name)
    return name.replace('void ', '')[:60]


def summarise(path):
    rows = list(csv.reader(line for line in open(path) if line.startswith('"')))
    if not rows:
        print(f"{path}: no rows")
        return
    head = {k: i for i, k in enumerate(rows[0])}
    kernels = collections.OrderedDict()
    for r in rows[1:]:
        if len(r) < len(head):
            continue
        d = kernels.setdefault(r[head['ID']], {'name': r[head['Kernel Name']]})
        value = r[head['Metric Value']].replace(',', '')
        try:
            value = float(value)
        except ValueError:
            pass
        if r[head['Metric Name']] == 'gpu__time_duration.sum':  # to microseconds
            unit = r[head['Metric Unit']]
            value = value / 1000.0 if unit in ('ns', 'nsecond') else value * 1000.0 if unit in ('ms', 'msecond') else value
        d[r[head['Metric Name']]] = value
    total = sum(d.get('gpu__time_duration.sum', 0) for d in kernels.values())
    print(f"== {path}: {len(kernels)} kernels, {total:.1f} us")
    print(f"{'id':>4} {'us':>8} {'%':>5} {'issue%':>6} {'tensor%':>7} {'warps%':>6} {'dram%':>5} {'regs':>4} {'grid':>7}  kernel")
    get = lambda d, m: d.get(m, float('nan'))
    for k, d in kernels.items():
        t = d.get('gpu__time_duration.sum', 0)
        print(f"{k:>4} {t:8.1f} {100 * t / total:5.1f} "
              f"{get(d, 'smsp__issue_active.avg.pct_of_peak_sustained_active'):6.1f} "
              f"{get(d, 'sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active'):7.1f} "
              f"{get(d, 'sm__warps_active.avg.pct_of_peak_sustained_active'):6.1f} "
              f"{get(d, 'dram__throughput.avg.pct_of_peak_sustained_elapsed'):5.1f} "
              f"{get(d, 'launch__registers_per_thread'):4.0f} {get(d, 'launch__grid_size'):7.0f}  {short(d['name'])}")
    per_kind = collections.Counter()
    for d in kernels.values():
        per_kind[short(d['name'])] += d.get('gpu__time_duration.sum', 0)
    print("-- by kernel:")
    for name, t in per_kind.most_common():
        print(f"  {t:8.1f} us {100 * t / total:5.1f}%  {name}")


if __name__ == '__main__':
    for p in sys.argv[1:]:
        summarise(p)
