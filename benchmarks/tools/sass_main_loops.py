#!/usr/bin/env python3
"""Instructions per pipeline stage in the implicit GEMM's main loops, from cuobjdump's SASS.

    cuobjdump -sass build/benchmarks/gpukit_bench | python3 benchmarks/tools/sass_main_loops.py [--tiles 128x256,128x128,64x256]

For each igemm_kernel of the listed tiles: the main loop (the backward branch whose body
holds the most tensor-core instructions), its instruction count, HMMA count and opcodes by
frequency: what a stage costs besides its products.
"""
import argparse
import collections
import re
import sys

MATHS = ['FMA', '3xTF32', 'TF32', 'BF16']


def main_loop(lines):
    ins = []
    for line in lines:
        m = re.match(r'\s*/\*([0-9a-f]{4,})\*/\s+(.*?);', line)
        if m:
            text = m.group(2).strip()
            op = re.sub(r'^@!?U?P\w+\s+', '', text).split()[0]
            ins.append((int(m.group(1), 16), op, text))
    best = None
    for a, op, text in ins:
        if op.startswith('BRA'):
            t = re.search(r'0x([0-9a-f]+)', text)
            if t and int(t.group(1), 16) < a:
                body = [x for x in ins if int(t.group(1), 16) <= x[0] <= a]
                hmma = sum(1 for x in body if x[1].startswith('HMMA'))
                if best is None or hmma > best[0]:
                    best = (hmma, body)
    return best


def report(name, lines, tiles):
    m = re.search(r'igemm_kernelILi(\d+)ELi(\d+)E.*?igemm_mathE(\d)\w*?(conv_\w+?_map|dense_\w+?_map)(_tILb(\d)E)?', name)
    if not m or f"{m.group(1)}x{m.group(2)}" not in tiles:
        return
    best = main_loop(lines)
    if not best:
        return
    hmma, body = best
    ops = collections.Counter(x[1].split('.')[0] for x in body)
    mask = {'1': ' (tap mask)', '0': ''}.get(m.group(6) or '', '')
    print(f"{m.group(4)}{mask} {m.group(1)}x{m.group(2)} {MATHS[int(m.group(3))]}: {len(body)} instructions, HMMA {hmma}")
    print('   ' + ', '.join(f'{k} {v}' for k, v in ops.most_common(24)))


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--tiles', default='128x256,128x128,64x256')
    tiles = set(ap.parse_args().tiles.split(','))
    name, lines = None, []
    for line in sys.stdin:
        if 'Function :' in line:
            if name:
                report(name, lines, tiles)
            name, lines = line.strip(), []
        elif name is not None:
            lines.append(line)
    if name:
        report(name, lines, tiles)
