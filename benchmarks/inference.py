"""Times DeepFill v2 inference per image size and prints a Markdown table.

Each size runs in its own subprocess (`--one SIZE`), so its peak RSS is its own and not the
maximum over everything run before it; a baseline subprocess (`--baseline`) only imports
TensorFlow and builds the model, so the table can show the inference's own increment. The parent
imports nothing heavy: on Linux a child started with vfork/posix_spawn carries the parent's RSS
high-water mark across `exec` into its `ru_maxrss`, so a parent holding TensorFlow would inflate
every child's figure.

Per size, with random (Glorot, seed 0) weights at width `--cnum`:
  * warm-up: the first `Inpainter.inpaint` call, which includes tracing the tf.function;
  * inpaint: median of `--runs` calls of `Inpainter.inpaint` (pads, runs, rounds, composites) on
    a random-content RGB uint8 image with a centred box mask of 25% of the area;
  * predict: median of `--runs` calls of the raw `Inpainter.predict` on the same input;
  * ratio: the size's inpaint median over the 256x256 one measured in the same run.

Usage:
    .venv/bin/python benchmarks/inference.py [--sizes 256,512,1024] [--runs 3] [--cnum 48]

Exit code 0 when every size ran, 1 when any size failed (the table names the reason).
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from children import emit, error_reason, gib, peak_rss_bytes, spawn

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='256,512,1024',
                        help='comma-separated square sizes in pixels, multiples of 8')
    parser.add_argument('--runs', type=int, default=3, help='timed runs per size after the warm-up')
    parser.add_argument('--cnum', type=int, default=48, help='generator base width (48 = release)')
    parser.add_argument('--one', type=int, metavar='SIZE', help=argparse.SUPPRESS)  # child mode
    parser.add_argument('--baseline', action='store_true', help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(',') if s.strip()]
    if not args.sizes or any(s <= 0 or s % 8 for s in args.sizes):
        parser.error(f'--sizes must be positive multiples of 8, got {args.sizes}')
    if args.runs < 1:
        parser.error('--runs must be at least 1')
    return args


# === Child side: imports TensorFlow ===

def _build(cnum):
    sys.path.insert(0, str(REPO))
    import keras
    import tensorflow as tf

    from inpaint.generator import build_generator
    from inpaint.inference import Inpainter

    keras.utils.set_random_seed(0)  # default initializers are Glorot: repeatable random weights
    return tf, Inpainter(build_generator(cnum))


def run_baseline(cnum):
    """Child: import TF, build the model, report the peak RSS and the environment."""
    tf, _ = _build(cnum)
    emit({'peak_rss': peak_rss_bytes(), 'tf_version': tf.__version__,
           'intra_op_threads': tf.config.threading.get_intra_op_parallelism_threads(),
           'inter_op_threads': tf.config.threading.get_inter_op_parallelism_threads()})


def run_one(size, runs, cnum):
    """Child: time one size and report its figures; on an exception, report the phase and reason
    and re-raise (the traceback goes to stderr, the exit code is 1)."""
    import numpy as np

    phase = 'build'
    try:
        _, inpainter = _build(cnum)
        from inpaint.inference import to_network

        rng = np.random.default_rng(size)
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), bool)
        lo, hi = size // 4, size - size // 4  # side size/2: a quarter of the area, centred
        mask[lo:hi, lo:hi] = True
        image_bgr = to_network(image[None])
        mask_f = mask[None, :, :, None].astype(np.float32)

        def timed(fn):
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        phase = 'warm-up'
        warmup = timed(lambda: inpainter.inpaint(image, mask))
        phase = 'inpaint'
        inpaint_times = [timed(lambda: inpainter.inpaint(image, mask)) for _ in range(runs)]
        phase = 'predict'
        predict_times = [timed(lambda: inpainter.predict(image_bgr, mask_f)) for _ in range(runs)]
    except Exception as error:
        emit({'size': size, 'error': f'{phase}: {error_reason(error)}',
               'peak_rss': peak_rss_bytes()})
        raise
    emit({'size': size, 'warmup': warmup,
           'inpaint': statistics.median(inpaint_times), 'inpaint_runs': inpaint_times,
           'predict': statistics.median(predict_times), 'predict_runs': predict_times,
           'peak_rss': peak_rss_bytes()})


# === Parent side: standard library only ===

def spread(result, key):
    """'median (min-max)' of a child's timed runs, so the noise is visible next to the median."""
    runs = result[f'{key}_runs']
    if len(runs) == 1:
        return f'{result[key]:.2f}'
    return f'{result[key]:.2f} ({min(runs):.2f}-{max(runs):.2f})'


def table(results, failures, base_size, baseline_rss, runs):
    base = results.get(base_size)
    rows = [f'| size | warm-up incl. tracing (s) | inpaint (s/image, median of {runs}) '
            f'| predict (s/image, median of {runs}) | inpaint time / {base_size}x{base_size} '
            f'| peak RSS | over baseline |',
            '|---|---:|---:|---:|---:|---:|---:|']
    for size in sorted(set(results) | set(failures)):
        label = f'{size}x{size}'
        if size in failures:
            reason = failures[size].replace('|', '\\|')  # keep the Markdown row intact
            rows.append(f'| {label} | failed: {reason} | | | | | |')
            continue
        r = results[size]
        ratio = f'{r["inpaint"] / base["inpaint"]:.1f}x' if base else 'n/a'
        over = gib(r['peak_rss'] - baseline_rss) if baseline_rss is not None else 'n/a'
        rows.append(f'| {label} | {r["warmup"]:.2f} | {spread(r, "inpaint")} | {spread(r, "predict")} '
                    f'| {ratio} | {gib(r["peak_rss"])} | {over} |')
    return '\n'.join(rows)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.baseline:
        run_baseline(args.cnum)
        return 0
    if args.one is not None:
        run_one(args.one, args.runs, args.cnum)
        return 0

    start, load_before = time.perf_counter(), os.getloadavg()[0]
    baseline, baseline_error = spawn(__file__, ['--cnum', str(args.cnum), '--baseline'])
    results, failures = {}, {}
    for size in args.sizes:
        print(f'running {size}x{size} ...', file=sys.stderr, flush=True)
        result, error = spawn(__file__, ['--cnum', str(args.cnum), '--one', str(size),
                                         '--runs', str(args.runs)])
        if error:
            failures[size] = error
        else:
            results[size] = result
    total, load_after = time.perf_counter() - start, os.getloadavg()[0]

    base_size = 256 if 256 in args.sizes else args.sizes[0]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    print(f'# DeepFill v2 inference, cnum={args.cnum}, random (Glorot) weights, batch 1\n')
    if baseline:
        threads = (f'TF intra-op threads {baseline["intra_op_threads"] or "default (= cores)"}, '
                   f'inter-op {baseline["inter_op_threads"] or "default"}')
        print(f'TensorFlow {baseline["tf_version"]}; CPU threads available: {cpus} '
              f'(os.cpu_count() = {os.cpu_count()}); {threads}.')
        print(f'Baseline child (import TF + build the model, no inference): peak RSS '
              f'{gib(baseline["peak_rss"])}.')
    else:
        print(f'CPU threads available: {cpus}. Baseline child failed: {baseline_error}.')
    print(f'1-minute load average {load_before:.2f} before, {load_after:.2f} after (the benchmark '
          f'alone adds up to {cpus}; more means other processes shared the cores and the times '
          f'are inflated).')
    print('Mask: centred box, 25% of the area. Each size runs in its own process; peak RSS is '
          'that process\'s ru_maxrss.\n')
    print(table(results, failures, base_size, baseline['peak_rss'] if baseline else None,
                args.runs))
    print(f'\nTotal benchmark time: {total:.0f} s.')
    return 1 if failures or baseline_error else 0


if __name__ == '__main__':
    sys.exit(main())
