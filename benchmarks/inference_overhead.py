"""How much of `Inpainter.inpaint`'s time is spent outside the network (TensorFlow only).

`benchmarks/inference.py` times whole calls, whose spread from one process to the next (10-20% on
a shared CPU) hides a small per-call cost of the Python around the network: input checks, the
restricted path's planning, padding, compositing. This benchmark profiles `--calls` calls of
`Inpainter.inpaint` per size in one process and splits each call's time into the part inside
TensorFlow's eager execute (`TFE_Py_Execute`: the compiled network and its stages) and the rest.
Run it on two trees in the same sitting to compare their wrappers:

    .venv/bin/python benchmarks/inference_overhead.py
    .venv/bin/python /path/to/other/tree/benchmarks/inference_overhead.py

Each tree's package is imported from the tree that holds this script. The times include
cProfile's own cost, which inflates the outside part; compare trees, not absolute figures.

Usage:
    .venv/bin/python benchmarks/inference_overhead.py [--sizes 256,512] [--calls 30] [--cnum 4]
"""
import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXECUTE = 'TFE_Py_Execute'  # TensorFlow's entry point for running an op or a compiled function


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='256,512', help='comma-separated square sizes in pixels')
    parser.add_argument('--calls', type=int, default=30, help='profiled calls per size')
    parser.add_argument('--cnum', type=int, default=4,
                        help='generator base width: small keeps the network from hiding the rest')
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(',') if s.strip()]
    return args


def split_call_time(inpainter, image, mask, calls):
    """Returns (total, inside the execute) seconds per `inpainter.inpaint(image, mask)` call."""
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    for _ in range(calls):
        inpainter.inpaint(image, mask)
    profile.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (calls, ..., own time, ...)
    inside = sum(own for (_, _, name), (_, _, own, _, _) in stats.items() if EXECUTE in name)
    return total / calls, inside / calls


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    os.environ['KERAS_BACKEND'] = 'tensorflow'
    sys.path.insert(0, str(REPO))
    import keras
    import numpy as np

    from inpaint.generator import build_generator
    from inpaint.inference import Inpainter

    keras.utils.set_random_seed(0)
    inpainter = Inpainter(build_generator(args.cnum))
    print(f'# Inpainter.inpaint per call, cnum={args.cnum}, {REPO}\n')
    print(f'| size | whole call (ms, profiled) | inside {EXECUTE} (ms) | outside (ms) |')
    print('|---|---:|---:|---:|')
    for size in args.sizes:
        image = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), bool)
        mask[size // 4:size - size // 4, size // 4:size - size // 4] = True  # a quarter of the area
        for _ in range(3):  # compile and settle
            inpainter.inpaint(image, mask)
        total, inside = split_call_time(inpainter, image, mask, args.calls)
        print(f'| {size}x{size} | {total * 1e3:.1f} | {inside * 1e3:.1f} '
              f'| {(total - inside) * 1e3:.1f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
