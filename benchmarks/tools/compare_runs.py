#!/usr/bin/env python3
"""Two gpukit_bench JSON files of the same cases side by side (medians per call, us).

    python3 benchmarks/tools/compare_runs.py BEFORE.json AFTER.json

"before/after" above 1: the second run is faster. Only cases present in both are listed.
"""
import json
import re
import sys


def medians(path):
    out = {}
    for b in json.load(open(path))['benchmarks']:
        if b.get('run_type', 'iteration') != 'iteration' or 'median_us' not in b:
            continue
        out[re.sub(r'/min_time.*', '', b['name'])] = b['median_us']
    return out


if __name__ == '__main__':
    before, after = medians(sys.argv[1]), medians(sys.argv[2])
    print(f"{'case':45s} {'before us':>10s} {'after us':>10s} {'before/after':>12s}")
    for k in sorted(before):
        if k in after:
            print(f"{k:45s} {before[k]:10.1f} {after[k]:10.1f} {before[k] / after[k]:12.3f}")
