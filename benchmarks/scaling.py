"""Data-parallel training on JAX, 1 process against 2 processes on 127.0.0.1: a CPU measurement.

What it measures (each in its own child processes, KERAS_BACKEND=jax, random data, the real
training masks):
  * 1 process, 1 device, `--batch` images: s/iter (one D step + one G step, median);
  * 2 processes on loopback (gloo collectives), 1 device each, `--batch` images per device (the
    global batch is twice that): s/iter, and the time of the two all-reduces an iteration needs
    (the discriminator's gradients in the D step, the generator's in the G step, float32, timed
    alone as a jitted sum over the mesh) and their share of the iteration;
  * weak-scaling efficiency = s/iter of 1 process / s/iter of 2 (1.0 = the second device costs
    nothing).
It also prints the parameter counts and bytes all-reduced per iteration at the given widths.

This is a CPU measurement on one machine: the two processes share its cores (and so slow each
other down beyond any communication), gloo over loopback is not NCCL over NVLink or InfiniBand.
It shows the mechanism and the all-reduce's cost on this machine, not what GPUs would do: the
README's "Training on several GPUs and machines" section estimates that from the bytes and a
measured GPU step time.

Usage:
    .venv/bin/python benchmarks/scaling.py [--size 64] [--batch 2] [--iters 5]
        [--cnum_generator 8] [--cnum_discriminator 8]
"""
import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from children import emit, spawn

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=64, help='image side (a multiple of 8)')
    parser.add_argument('--batch', type=int, default=2, help='images per device')
    parser.add_argument('--iters', type=int, default=5, help='timed iterations (after 1 warm-up)')
    parser.add_argument('--cnum_generator', type=int, default=8, help='generator width (48 = release)')
    parser.add_argument('--cnum_discriminator', type=int, default=8, help='discriminator width (64 = release)')
    parser.add_argument('--timeout', type=float, default=1800, help='seconds allowed per child')
    parser.add_argument('--child', nargs='+', help=argparse.SUPPRESS)  # 'single' or 'process I PORT'
    return parser.parse_args(argv)


# === Child side: imports JAX and Keras ===

def run_child(args):
    sys.path.insert(0, str(REPO))
    import jax
    import numpy as np
    from inpaint import backends
    from inpaint.config import DEFAULT_CONFIG, load_config
    from inpaint.gan import GAN

    index = 0
    if args.child[0] == 'process':
        index, port = int(args.child[1]), int(args.child[2])
        backends.join_processes(f'127.0.0.1:{port}', 2, index)
    size = args.size
    gan = GAN(load_config(DEFAULT_CONFIG, [
        f'img_shapes=[{size},{size},3]', f'batch_size={args.batch}', f'height={size // 2}',
        f'width={size // 2}', f'max_delta_height={size // 8}', f'max_delta_width={size // 8}',
        f'cnum_generator={args.cnum_generator}', f'cnum_discriminator={args.cnum_discriminator}',
        'log_dir=unused', 'random_seed=True']))
    rng = np.random.default_rng(index)
    times = []
    for step in range(1 + args.iters):
        batches = rng.uniform(0, 255, (2, args.batch, size, size, 3)).astype(np.float32)
        start = time.perf_counter()
        gan.d_step(batches[0], gan.sample_mask(rng))
        gan.g_step(batches[1], gan.sample_mask(rng))  # returns floats: synchronized
        if step:
            times.append(time.perf_counter() - start)
    counts = {name: int(sum(np.prod(v.shape) for v in network.trainable_variables))
              for name, network in (('g', gan.generator), ('d', gan.discriminator))}
    result = {'iter_s': statistics.median(times), 'params': counts}
    distribution = gan.distribution
    if distribution.process_count > 1:
        reduce = jax.jit(lambda a: a.sum(0), out_shardings=distribution.replicated)
        allreduce_s = 0.0
        for count in counts.values():
            parts = distribution.place_batch(np.ones((1, count), np.float32))  # (2, count) global
            reduce(parts).block_until_ready()
            timed = []
            for _ in range(max(args.iters, 3)):
                start = time.perf_counter()
                reduce(parts).block_until_ready()
                timed.append(time.perf_counter() - start)
            allreduce_s += statistics.median(timed)
        result['allreduce_s'] = allreduce_s
    if index == 0:
        emit(result)
    return 0


# === Parent side ===

def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def main(argv):
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    script = Path(__file__).resolve()
    common = ['--size', str(args.size), '--batch', str(args.batch), '--iters', str(args.iters),
              '--cnum_generator', str(args.cnum_generator),
              '--cnum_discriminator', str(args.cnum_discriminator)]
    env = {'KERAS_BACKEND': 'jax'}
    started = time.perf_counter()
    print('running 1 process ...', file=sys.stderr, flush=True)
    single, error = spawn(script, common + ['--child', 'single'], env, args.timeout)
    if single is None:
        print(f'1 process failed: {error}', file=sys.stderr)
        return 1
    print('running 2 processes ...', file=sys.stderr, flush=True)
    port = str(free_port())
    second = subprocess.Popen([sys.executable, str(script)] + common + ['--child', 'process', '1', port],
                              env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        double, error = spawn(script, common + ['--child', 'process', '0', port], env, args.timeout)
        second.wait(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
    if double is None:
        print(f'2 processes failed: {error}', file=sys.stderr)
        return 1
    params = single['params']
    total = params['g'] + params['d']
    print(f'JAX data-parallel training on this machine\'s CPUs ({os.cpu_count()} core(s), '
          f'{platform.processor() or platform.machine()}): {args.size}x{args.size}, {args.batch} '
          f'image(s) per device, widths {args.cnum_generator}/{args.cnum_discriminator}, median of '
          f'{args.iters} iterations after 1 warm-up. A CPU measurement: the processes share the '
          f'cores, gloo runs over loopback. Total {time.perf_counter() - started:.0f} s.\n')
    print(f'Parameters: generator {params["g"]:,}, discriminator {params["d"]:,}; all-reduced per '
          f'iteration (both networks\' float32 gradients): {4 * total / 2**20:.2f} MiB.\n')
    print('| setting | global batch | s/iter | images/s | all-reduces s/iter | all-reduce share | '
          'weak-scaling efficiency |')
    print('|---|---|---|---|---|---|---|')
    print(f'| 1 process, 1 device | {args.batch} | {single["iter_s"]:.3f} | '
          f'{2 * args.batch / single["iter_s"]:.3g} | - | - | 1 |')
    print(f'| 2 processes (loopback), 1 device each | {2 * args.batch} | {double["iter_s"]:.3f} | '
          f'{4 * args.batch / double["iter_s"]:.3g} | {double["allreduce_s"]:.4f} | '
          f'{double["allreduce_s"] / double["iter_s"]:.1%} | {single["iter_s"] / double["iter_s"]:.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
