"""Per-backend GPU benchmark: inference time and peak GPU memory per size.

Each measurement runs in its own subprocess with `KERAS_BACKEND` set (a backend is chosen at
import), on random weights at the release widths (48/64), so that one size's memory does not carry
over to the next. Prints a Markdown table; writes the rows as JSON with `--json`.

    python benchmarks/gpu.py [--backends jax torch] [--sizes 256 512 1024 2048]

Inference: `Inpainter.inpaint` on a photo resized to the size with a centre box hole (25% of the
image), batch 1, the median of `--repeats` runs after one warm-up (compilation) run; the time
includes the host transfers, as a user sees it. Training is benchmarks/training.py's (GPU memory,
FLOP per iteration and the share of a peak rate on an accelerator).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from children import accelerator_name, accelerator_peak_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker_inference(backend, size, repeats, block_mb):
    """One size on one backend; returns a row dict."""
    import cv2
    import numpy as np
    from inpaint.generator import build_generator
    from inpaint.imageio import read_image
    from inpaint.inference import Inpainter
    generator = build_generator(48)
    generator.contextual_attention.block_bytes = int(block_mb * 2**20)
    inpainter = Inpainter(generator)
    image = cv2.resize(read_image(os.path.join(ROOT, 'examples', 'input.png')), (size, size))
    mask = np.zeros((size, size), bool)
    mask[size // 4:3 * size // 4, size // 4:3 * size // 4] = True
    start = time.perf_counter()
    inpainter.inpaint(image, mask)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        inpainter.inpaint(image, mask)
        times.append(time.perf_counter() - start)
    return {'kind': 'inference', 'backend': backend, 'size': size, 'seconds': statistics.median(times),
            'first_call_s': first, 'peak_gib': (accelerator_peak_bytes() or float('nan')) / 2**30, 'device': accelerator_name(),
            'block_mb': block_mb}


def _spawn(backend, args, timeout):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL='3',
               XLA_PYTHON_CLIENT_PREALLOCATE='false', PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    command = [sys.executable, os.path.abspath(__file__), '--worker', backend] + args
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'error': f'timed out after {timeout} s'}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    return {'error': (done.stderr.strip().splitlines() or ['no output'])[-1][:200]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backends', nargs='+', default=['jax', 'torch'])
    parser.add_argument('--sizes', nargs='+', type=int, default=[256, 512, 1024, 2048])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--block_mb', type=float, default=128)
    parser.add_argument('--timeout', type=int, default=240, help='seconds per measurement')
    parser.add_argument('--json', help='write the rows here')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('job', nargs='*', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        row = worker_inference(args.worker, int(args.job[1]), args.repeats, args.block_mb)
        print(json.dumps(row))
        return 0
    rows = []
    for backend in args.backends:
        for size in args.sizes:
            row = _spawn(backend, ['inference', str(size), '--repeats', str(args.repeats),
                                   '--block_mb', str(args.block_mb)], args.timeout)
            rows.append({'kind': 'inference', 'backend': backend, 'size': size, **row})
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(rows, handle, indent=1)
    print('\n| backend | measurement | time | rate | peak GPU memory | device |')
    print('|---|---|---|---|---|---|')
    for row in rows:
        if 'error' in row:
            print(f'| {row["backend"]} | {row["size"]} px | failed: {row["error"]} | | | |')
        else:
            print(f'| {row["backend"]} | inference {row["size"]}x{row["size"]} | {row["seconds"] * 1000:.1f} ms '
                  f'(first call {row["first_call_s"]:.1f} s) | {1 / row["seconds"]:.1f} img/s | '
                  f'{row["peak_gib"]:.2f} GiB | {row["device"]} |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
