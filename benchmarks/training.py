"""Times DeepFill v2 training iterations (one D step + one G step) and prints a Markdown table.

Each setting runs in its own subprocess (`--one SIZE:BATCH`), so its peak RSS is its own; the
parent imports nothing heavy (see benchmarks/inference.py on why a parent holding TensorFlow would
inflate its children's `ru_maxrss`).

Per setting, a `GAN` (`inpaint.gan`) is built from `--config` (the project's inpaint.yml; a run's
train.yml gives that run's losses and precision) and its `--set` overrides, with img_shapes SIZE x SIZE,
batch_size BATCH, the box mask scaled as at 256 (height = width = SIZE / 2, max_delta = SIZE / 8)
and the given widths; its data are random (uniform 0..255, a new pair of batches per iteration, so
no file decoding is timed) and its masks the real training masks (drawn in NumPy each step, as
the training loop does, and included in the time):
  * warm-up: the first `--warmup` iterations, which include tracing the two tf.functions;
  * s/iter: median over the timed iterations (at least `--iters`, and at least `--min_seconds`
    of them) of D step + G step, and each step's own median;
  * iter/s = 1 / (s/iter); images/s = 2 * BATCH / (s/iter), since an iteration consumes one
    batch for the discriminator and another for the generator, as the original;
  * ratio: s/iter over the reference setting's (the first of `--sizes`), measured in the same run;
  * on an accelerator, its peak memory (JAX's `peak_bytes_in_use`, PyTorch's
    `max_memory_allocated`); on JAX, the FLOP of one iteration as XLA counts the two compiled
    steps (`GAN.step_flops`), the rate they reach and, with `--peak_tflops`, its share of that
    peak (e.g. 790 for an H100's or H200's dense bfloat16 matrix rate).

Usage:
    .venv/bin/python benchmarks/training.py [--sizes 64:4,256:16] [--iters 2] [--min_seconds 5]
        [--warmup 1] [--mixed_precision] [--peak_tflops T] [--json FILE] [--config YML] [--set K=V]
        [--cnum_generator 48] [--cnum_discriminator 64]

Exit code 0 when every setting ran, 1 when any failed (the table names the reason).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from children import accelerator_name, accelerator_peak_bytes, emit, error_reason, peak_rss_bytes, spawn

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='64:4,256:16',
                        help='comma-separated SIZE:BATCH settings (SIZE a multiple of 8); the first is '
                             'the reference of the ratio column')
    parser.add_argument('--iters', type=int, default=2, help='timed iterations per setting (at least)')
    parser.add_argument('--min_seconds', type=float, default=5.0,
                        help='keep timing iterations until this many seconds have passed')
    parser.add_argument('--warmup', type=int, default=1, help='untimed iterations first (tracing)')
    parser.add_argument('--cnum_generator', type=int, default=48, help='generator width (48 = release)')
    parser.add_argument('--cnum_discriminator', type=int, default=64, help='discriminator width (64 = release)')
    parser.add_argument('--mixed_precision', action='store_true',
                        help='bfloat16 compute with float32 weights (the config key mixed_precision)')
    parser.add_argument('--peak_tflops', type=float,
                        help="the device's peak rate, for the share column (H100/H200 bfloat16: 790)")
    parser.add_argument('--json', help='also write the results here (a list of dicts)')
    parser.add_argument('--config', default=str(REPO / 'inpaint.yml'), help='the YAML config (default: inpaint.yml)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key before the setting\'s own keys (repeatable)')
    parser.add_argument('--timeout', type=float, default=1200, help='seconds allowed per setting')
    parser.add_argument('--one', metavar='SIZE:BATCH', help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args(argv)
    try:
        args.settings = [_setting(item) for item in args.sizes.split(',') if item.strip()]
    except ValueError:
        parser.error(f'--sizes must be SIZE:BATCH pairs such as 64:4,256:16, got {args.sizes!r}')
    if not args.settings or any(size <= 0 or size % 8 or batch < 1 for size, batch in args.settings):
        parser.error(f'--sizes: sizes must be positive multiples of 8 and batches >= 1, got {args.sizes!r}')
    if args.iters < 1 or args.warmup < 1:
        parser.error('--iters and --warmup must be at least 1')
    return args


def _setting(text):
    size, batch = text.strip().split(':')
    return int(size), int(batch)


# === Child side: imports TensorFlow ===

def run_one(size, batch, args):
    sys.path.insert(0, str(REPO))
    import numpy as np

    from inpaint.config import load_config
    from inpaint.gan import GAN

    with tempfile.TemporaryDirectory() as log_dir:
        config = load_config(args.config, args.set + [
            f'img_shapes=[{size},{size},3]', f'batch_size={batch}', f'height={size // 2}',
            f'width={size // 2}', f'max_delta_height={size // 8}', f'max_delta_width={size // 8}',
            f'cnum_generator={args.cnum_generator}', f'cnum_discriminator={args.cnum_discriminator}',
            f'log_dir={log_dir}', 'random_seed=True', f'mixed_precision={args.mixed_precision}'])
        gan = GAN(config)
        rng = np.random.default_rng(0)

        def iteration():
            batches = rng.uniform(0, 255, (2, batch, size, size, 3)).astype(np.float32)
            start = time.perf_counter()
            gan.d_step(batches[0], gan.sample_mask(rng))
            middle = time.perf_counter()
            gan.g_step(batches[1], gan.sample_mask(rng))
            end = time.perf_counter()
            return end - start, middle - start, end - middle

        start = time.perf_counter()
        for _ in range(args.warmup):
            iteration()
        warmup = time.perf_counter() - start
        timed, start = [], time.perf_counter()
        while len(timed) < args.iters or time.perf_counter() - start < args.min_seconds:
            timed.append(iteration())
        try:  # a count the compiler does not give (another JAX) must not lose the timing
            flops = gan.step_flops(np.zeros((batch, size, size, 3), np.float32), gan.sample_mask(rng))
        except Exception as error:  # pylint: disable=broad-except
            print(f'no FLOP count: {error_reason(error)}', file=sys.stderr)
            flops = None
    return {'size': size, 'batch': batch, 'warmup_s': warmup,
            'iter_s': statistics.median(t[0] for t in timed),
            'd_step_s': statistics.median(t[1] for t in timed),
            'g_step_s': statistics.median(t[2] for t in timed),
            'timed': len(timed), 'peak_rss': peak_rss_bytes(), 'flops': flops,
            'accelerator_peak': accelerator_peak_bytes(), 'device': accelerator_name()}


# === Parent side ===

def run_setting(size, batch, args):
    """The setting's child result, or {'size', 'batch', 'error'} when it failed."""
    result, error = spawn(Path(__file__).resolve(), [
        '--one', f'{size}:{batch}', '--iters', str(args.iters),
        '--min_seconds', str(args.min_seconds), '--warmup', str(args.warmup),
        '--cnum_generator', str(args.cnum_generator),
        '--cnum_discriminator', str(args.cnum_discriminator)]
        + ['--config', args.config] + [f'--set={item}' for item in args.set]
        + (['--mixed_precision'] if args.mixed_precision else []), timeout=args.timeout)
    return result or {'size': size, 'batch': batch, 'error': error[:200]}


def images_per_second(result):
    """Images an iteration consumes (a D batch and a G batch) per second."""
    return 2 * result['batch'] / result['iter_s']


def table(results, args):
    reference = results[0] if 'error' not in results[0] else None
    lines = ['| setting | s/iter | D step s | G step s | iter/s | images/s | timed iters | warm-up s | '
             'peak RSS | ratio vs reference | accelerator memory | GFLOP/iter | TFLOP/s | share of peak |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    precision = 'bfloat16' if args.mixed_precision else 'float32'
    for result in results:
        name = (f'{result["size"]}x{result["size"]}, batch {result["batch"]}, '
                f'widths {args.cnum_generator}/{args.cnum_discriminator}, {precision}')
        if 'error' in result:
            lines.append(f'| {name} | failed: {result["error"]} |' + ' |' * 12)
            continue
        ratio = f'{result["iter_s"] / reference["iter_s"]:.1f}x' if reference else 'n/a'
        memory = result.get('accelerator_peak')
        flops = result.get('flops')
        rate = flops / result['iter_s'] / 1e12 if flops else None
        share = f'{rate / args.peak_tflops:.1%}' if rate and args.peak_tflops else '-'
        lines.append(
            f'| {name} | {result["iter_s"]:.3f} | {result["d_step_s"]:.3f} | {result["g_step_s"]:.3f} | '
            f'{1 / result["iter_s"]:.3g} | {images_per_second(result):.3g} | '
            f'{result["timed"]} | {result["warmup_s"]:.1f} | {result["peak_rss"] / 2**30:.2f} GiB | {ratio} | '
            f'{f"{memory / 2**30:.2f} GiB" if memory else "-"} | {f"{flops / 1e9:.4g}" if flops else "-"} | '
            f'{f"{rate:.3g}" if rate else "-"} | {share} |')
    return '\n'.join(lines)


def main(argv):
    args = parse_args(argv)
    if args.one:
        size, batch = _setting(args.one)
        emit(run_one(size, batch, args))
        return 0
    start = time.perf_counter()
    results = []
    for size, batch in args.settings:
        print(f'running {size}x{size} batch {batch} ...', file=sys.stderr, flush=True)
        results.append(run_setting(size, batch, args))
    devices = sorted({result['device'] for result in results if result.get('device', 'cpu') != 'cpu'})
    print(f'Training iterations (D step + G step) on {" and ".join(devices) + " with " if devices else ""}'
          f'{os.cpu_count()} CPU core(s) '
          f'({platform.processor() or platform.machine()}), random data; per setting {args.warmup} '
          f'warm-up iteration(s), then the median of at least {args.iters} timed ones (and at least '
          f'{args.min_seconds:g} s); reference = the first setting. Total {time.perf_counter() - start:.0f} s.\n')
    print(table(results, args))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(results, handle, indent=1)
    return 1 if any('error' in result for result in results) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
