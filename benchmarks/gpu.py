"""Per-backend GPU benchmark: inference time and peak GPU memory per size, training iterations/s.

Each measurement runs in its own subprocess with `KERAS_BACKEND` set (a backend is chosen at
import), on random weights at the release widths (48/64), so that one size's memory does not carry
over to the next. Prints a Markdown table; writes the rows as JSON with `--json`.

    python benchmarks/gpu.py [--backends jax torch] [--sizes 256 512 1024 2048] [--train]

Inference: `Inpainter.inpaint` on a photo resized to the size with a centre box hole (25% of the
image), batch 1, the median of `--repeats` runs after one warm-up (compilation) run; the time
includes the host transfers, as a user sees it. Training: one D step + one G step at 256x256,
batch 16, the median rate over `--train_iters` iterations after 3 warm-up iterations, in float32
and in mixed bfloat16.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _peak_memory_gib(backend):
    if backend == 'jax':
        import jax
        stats = jax.local_devices()[0].memory_stats() or {}
        return stats.get('peak_bytes_in_use', float('nan')) / 2**30
    if backend == 'torch':
        import torch
        return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float('nan')
    return float('nan')


def _device(backend):
    if backend == 'jax':
        import jax
        return str(jax.local_devices()[0].device_kind)
    if backend == 'torch':
        import torch
        return torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'
    return 'cpu'


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
            'first_call_s': first, 'peak_gib': _peak_memory_gib(backend), 'device': _device(backend),
            'block_mb': block_mb}


def worker_training(backend, mixed, iters):
    import numpy as np
    from inpaint.config import load_config
    from inpaint.gan import GAN
    flist = os.path.join(ROOT, 'benchmarks', '_bench.flist')
    with open(flist, 'w') as handle:
        handle.write(os.path.join(ROOT, 'examples', 'input.png') + '\n')
    overrides = ['batch_size=16', 'img_shapes=[256,256,3]', 'random_seed=True', 'val=False',
                 f'mixed_precision={mixed}', 'log_dir=/tmp/bench_run', f'data_flist.bench=[{flist}]',
                 'dataset=bench']
    gan = GAN(load_config(overrides=overrides))
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (16, 256, 256, 3)).astype(np.float32)
    rates = []
    for index in range(3 + iters):
        start = time.perf_counter()
        gan.d_step(batch, gan.sample_mask(rng))
        gan.g_step(batch, gan.sample_mask(rng))  # returns floats: synchronized
        if index >= 3:
            rates.append(1.0 / (time.perf_counter() - start))
    return {'kind': 'training', 'backend': backend, 'mixed_precision': mixed,
            'it_per_s': statistics.median(rates), 'peak_gib': _peak_memory_gib(backend),
            'device': _device(backend)}


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
    parser.add_argument('--train', action='store_true', help='also measure training')
    parser.add_argument('--train_iters', type=int, default=20)
    parser.add_argument('--timeout', type=int, default=240, help='seconds per measurement')
    parser.add_argument('--json', help='write the rows here')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('job', nargs='*', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.job
        if kind == 'inference':
            row = worker_inference(args.worker, int(rest[0]), args.repeats, args.block_mb)
        else:
            row = worker_training(args.worker, rest[0] == 'True', args.train_iters)
        print(json.dumps(row))
        return 0
    rows = []
    for backend in args.backends:
        for size in args.sizes:
            row = _spawn(backend, ['inference', str(size), '--repeats', str(args.repeats),
                                   '--block_mb', str(args.block_mb)], args.timeout)
            rows.append({'kind': 'inference', 'backend': backend, 'size': size, **row})
            print(json.dumps(rows[-1]), flush=True)
        if args.train:
            for mixed in (False, True):
                row = _spawn(backend, ['training', str(mixed), '--train_iters', str(args.train_iters)],
                             args.timeout)
                rows.append({'kind': 'training', 'backend': backend, 'mixed_precision': mixed, **row})
                print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(rows, handle, indent=1)
    print('\n| backend | measurement | time | rate | peak GPU memory | device |')
    print('|---|---|---|---|---|---|')
    for row in rows:
        if 'error' in row:
            what = f'{row["size"]} px' if row['kind'] == 'inference' else 'training'
            print(f'| {row["backend"]} | {what} | failed: {row["error"]} | | | |')
        elif row['kind'] == 'inference':
            print(f'| {row["backend"]} | inference {row["size"]}x{row["size"]} | {row["seconds"] * 1000:.1f} ms '
                  f'(first call {row["first_call_s"]:.1f} s) | {1 / row["seconds"]:.1f} img/s | '
                  f'{row["peak_gib"]:.2f} GiB | {row["device"]} |')
        else:
            dtype = 'bfloat16' if row['mixed_precision'] else 'float32'
            print(f'| {row["backend"]} | training 256x256 b16 {dtype} | {1000 / row["it_per_s"]:.0f} ms/it | '
                  f'{row["it_per_s"]:.2f} it/s | {row["peak_gib"]:.2f} GiB | {row["device"]} |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
