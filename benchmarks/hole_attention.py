"""Times hole-restricted inference against the dense network, with the machine's own floor.

Everything is measured in this run, on this machine, with the running Keras backend (or each of
`--backends`); no time from elsewhere is printed:
  * matmul rate: float32 (and bfloat16) `keras.ops.matmul` of 2048 x 2048 matrices, GFLOP/s;
  * dense: `Inpainter(restrict=False).inpaint`, the whole network as the original computes it
    (its work does not depend on the hole, so it is timed once per size, with the 25% hole);
  * restricted: `Inpainter.inpaint`, the default (`inpaint.restricted`), per size and hole;
    up to PAIRED_UP_TO px, that process then also times the dense network on the same input,
    calls alternating, and the speed-up is taken from these pairs: processes differ by up to
    ~10% on the same computation here, more than the gain at small sizes, and the rows where
    the restricted path falls back to dense would otherwise show that spread as a "speed-up";
  * floor: the path's multiply-adds x 2 / the matmul rate, the time it would take at the rate of
    one large matmul (so "x floor" says how far each figure is from the machine's arithmetic);
  * bfloat16: the restricted path with `precision='bfloat16'` at the 25% hole, and the PSNR of its
    inpainted pixels against the float32 ones.
Each figure is the median of the timed calls after one warm-up call (which compiles); each
setting runs in its own process, so peak RSS is its own (see children.py).

Input: examples/input.png resized to SIZE x SIZE, with a centred square hole of 5%, 25% or 50% of
the area; weights: checkpoints/default (width 48, as the authors' release).

Usage:
    .venv/bin/python benchmarks/hole_attention.py [--sizes 256,512,1024,2048] [--holes 5,25,50]
        [--runs 3] [--backends tensorflow,jax]

Exit code 0 when every setting ran, 1 when any failed (the table names the reason).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from children import emit, error_reason, gib, peak_rss_bytes, spawn

REPO = Path(__file__).resolve().parents[1]
DENSE_HOLE = 25
PAIRED_UP_TO = 1024  # above, a dense call takes minutes: the dense process's time is used


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='256,512,1024,2048')
    parser.add_argument('--holes', default='5,25,50', help='hole areas, percent')
    parser.add_argument('--runs', type=int, default=3,
                        help='timed calls per setting up to 512 px (2 at 1024, 1 above)')
    parser.add_argument('--backends', default=None,
                        help='comma-separated Keras backends (default: KERAS_BACKEND or tensorflow)')
    parser.add_argument('--checkpoint', default=str(REPO / 'checkpoints' / 'default'))
    parser.add_argument('--child', nargs=4, metavar=('SIZE', 'HOLE', 'PATH', 'OUT'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--matmul', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--psnr', nargs=3, metavar=('A', 'B', 'HOLE'), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(',')]
    args.holes = [int(h) for h in args.holes.split(',')]
    default = os.environ.get('KERAS_BACKEND', 'tensorflow')
    args.backends = (args.backends or default).split(',')
    return args


def runs_for(size, runs):
    return runs if size <= 512 else (min(runs, 2) if size <= 1024 else 1)


# === Child side ===

def case(size, hole):
    """examples/input.png at size x size (RGB uint8) and a centred square hole of `hole`% area."""
    import cv2
    import numpy as np

    image = cv2.resize(cv2.imread(str(REPO / 'examples' / 'input.png')), (size, size),
                       interpolation=cv2.INTER_AREA)[..., ::-1]
    side = min(size, int(round(size * (hole / 100) ** 0.5)))
    mask = np.zeros((size, size), bool)
    start = (size - side) // 2
    mask[start:start + side, start:start + side] = True
    return np.ascontiguousarray(image), mask


def run_child(size, hole, path, out, runs, checkpoint):
    """Times one setting; path: dense, restricted or bfloat16 (restricted in bfloat16)."""
    phase = 'build'
    try:
        sys.path.insert(0, str(REPO))
        import cv2
        import keras

        from inpaint.inference import Inpainter

        inpainter = Inpainter.from_checkpoint(
            checkpoint, restrict=path != 'dense',
            precision='bfloat16' if path == 'bfloat16' else 'float32')
        image, mask = case(size, hole)
        phase = 'warm-up'
        start = time.perf_counter()
        output = inpainter.inpaint(image, mask)
        warmup = time.perf_counter() - start
        phase = 'timed'
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            output = inpainter.inpaint(image, mask)
            times.append(time.perf_counter() - start)
        restricted = inpainter.restricted
        work = restricted.last_work if restricted else None
        path_taken = restricted.last_path if restricted else 'dense'
        peak = peak_rss_bytes()  # before the paired dense calls
        cv2.imwrite(out, output[..., ::-1])
        paired = None
        if path == 'restricted' and size <= PAIRED_UP_TO:
            phase = 'paired'
            paired = paired_times(inpainter, Inpainter(inpainter.generator, restrict=False),
                                  image, mask, runs)
    except Exception as error:  # reported in the table; the traceback goes to stderr
        emit({'error': f'{phase}: {error_reason(error)}', 'peak_rss': peak_rss_bytes()})
        raise
    emit({'seconds': statistics.median(times), 'runs': times, 'warmup': warmup,
          'path': path_taken, 'paired': paired,
          'work': (work['dense'] if path_taken == 'dense' else work['restricted'])
                  if work else None,
          'dense_work': work['dense'] if work else None,
          'backend': keras.backend.backend(), 'peak_rss': peak})


def paired_times(restricted, dense, image, mask, runs):
    """Medians of alternating restricted and dense calls in one process: {path: seconds}."""
    dense.inpaint(image, mask)  # warm-up (compiles)
    times = {'restricted': [], 'dense': []}
    for _ in range(runs):
        for name, inpainter in (('restricted', restricted), ('dense', dense)):
            start = time.perf_counter()
            inpainter.inpaint(image, mask)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run_matmul():
    """GFLOP/s of a 2048 x 2048 float32 and bfloat16 matmul (median of 5 after a warm-up)."""
    import keras
    import numpy as np
    from keras import ops

    rates = {}
    for dtype in ('float32', 'bfloat16'):
        a = ops.cast(ops.convert_to_tensor(np.random.default_rng(0).random((2048, 2048), np.float32)),
                     dtype)
        ops.convert_to_numpy(ops.matmul(a, a)[:1, :1])
        times = []
        for _ in range(5):
            start = time.perf_counter()
            ops.convert_to_numpy(ops.matmul(a, a)[:1, :1])
            times.append(time.perf_counter() - start)
        rates[dtype] = 2 * 2048 ** 3 / statistics.median(times) / 1e9
    emit({'rates': rates, 'backend': keras.backend.backend(), 'peak_rss': peak_rss_bytes()})


def run_psnr(a, b, hole):
    """PSNR of two outputs' pixels inside the case's hole."""
    import cv2
    import numpy as np

    first, second = cv2.imread(a).astype(np.float64), cv2.imread(b).astype(np.float64)
    _, mask = case(first.shape[0], int(hole))
    mse = np.mean((first[mask] - second[mask]) ** 2)
    emit({'psnr': float('inf') if mse == 0 else float(10 * np.log10(255 ** 2 / mse)),
          'peak_rss': peak_rss_bytes()})


# === Parent side: standard library only ===

def measure(backend, args, folder):
    env = {'KERAS_BACKEND': backend}
    script = Path(__file__).resolve()
    rates, error = spawn(script, ['--matmul'], env)
    results = {'rates': rates['rates'] if rates else None, 'rates_error': error}
    settings = [(size, DENSE_HOLE, 'dense') for size in args.sizes]
    settings += [(size, hole, 'restricted') for size in args.sizes
                 for hole in sorted(set(args.holes) | {DENSE_HOLE})]
    settings += [(size, DENSE_HOLE, 'bfloat16') for size in args.sizes]
    for size, hole, path in settings:
        print(f'{backend}: {path} {size}x{size}, hole {hole}% ...', file=sys.stderr, flush=True)
        out = os.path.join(folder, f'{backend}_{path}_{size}_{hole}.png')
        results[size, hole, path] = spawn(
            script, ['--child', str(size), str(hole), path, out, '--runs',
                     str(runs_for(size, args.runs)), '--checkpoint', args.checkpoint], env)
        if path == 'bfloat16' and results[size, hole, path][0]:
            reference = os.path.join(folder, f'{backend}_restricted_{size}_{hole}.png')
            psnr, _ = spawn(script, ['--psnr', out, reference, str(hole)], env)
            results[size, hole, path][0]['psnr'] = psnr['psnr'] if psnr else None
    return results


def tables(backend, args, results):
    rates = results['rates']
    rate = rates['float32'] if rates else None
    lines = [f'## {backend}', '']
    if rates:
        lines.append(f'Matmul rate (2048^3, this machine, this run): float32 {rates["float32"]:.0f} '
                     f'GFLOP/s, bfloat16 {rates["bfloat16"]:.0f} GFLOP/s.')
    else:
        lines.append(f'Matmul rate: failed ({results["rates_error"]}).')
    lines += ['', '| size | hole | dense (s) | restricted (s) | speed-up | path | dense GFLOP '
              '| restricted GFLOP | dense / floor | restricted / floor | peak RSS dense '
              '| peak RSS restricted |', '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|']
    for size in args.sizes:
        dense, dense_error = results[size, DENSE_HOLE, 'dense']
        for hole in args.holes:
            restricted, error = results[size, hole, 'restricted']
            if dense_error or error:
                lines.append(f'| {size} | {hole}% | failed: {(dense_error or error)[:120]} |'
                             + ' |' * 9)
                continue
            paired = restricted.get('paired') or {'dense': dense['seconds'],
                                                   'restricted': restricted['seconds']}
            floor = lambda seconds, work: (f'{seconds / (2 * work / 1e9 / rate):.1f}x'
                                           if rate and work else 'n/a')
            lines.append(
                f'| {size} | {hole}% | {paired["dense"]:.3f} | {paired["restricted"]:.3f} '
                f'| {paired["dense"] / paired["restricted"]:.2f}x | {restricted["path"]} '
                f'| {2 * restricted["dense_work"] / 1e9:.0f} | {2 * restricted["work"] / 1e9:.0f} '
                f'| {floor(paired["dense"], restricted["dense_work"])} '
                f'| {floor(paired["restricted"], restricted["work"])} '
                f'| {gib(dense["peak_rss"])} | {gib(restricted["peak_rss"])} |')
    lines += ['', f'Up to {PAIRED_UP_TO} px, the dense and restricted seconds are alternating calls '
              'in one process; above, each path in its own process. Peak RSS: each path in its '
              'own process.']
    lines += ['', f'bfloat16 convolutions (attention in float32), restricted path, hole {DENSE_HOLE}%:',
              '', '| size | float32 (s) | bfloat16 (s) | speed-up | PSNR of the hole vs float32 |',
              '|---|---:|---:|---:|---:|']
    for size in args.sizes:
        f32, error = results[size, DENSE_HOLE, 'restricted']
        bf16, bf16_error = results[size, DENSE_HOLE, 'bfloat16']
        if error or bf16_error:
            lines.append(f'| {size} | failed: {(error or bf16_error)[:120]} | | | |')
            continue
        psnr = f'{bf16["psnr"]:.1f} dB' if bf16.get('psnr') is not None else 'n/a'
        lines.append(f'| {size} | {f32["seconds"]:.3f} | {bf16["seconds"]:.3f} '
                     f'| {f32["seconds"] / bf16["seconds"]:.2f}x | {psnr} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.matmul:
        run_matmul()
        return 0
    if args.psnr:
        run_psnr(*args.psnr)
        return 0
    if args.child:
        size, hole, path, out = args.child
        run_child(int(size), int(hole), path, out, args.runs, args.checkpoint)
        return 0
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    print('# Hole-restricted inference vs the dense network\n')
    print(f'{cpus} CPU threads available. Centred square holes; examples/input.png; '
          f'{args.checkpoint}. Dense is timed with the {DENSE_HOLE}% hole (its work does not '
          f'depend on the hole). Medians of {args.runs} calls up to 512 px, '
          f'{runs_for(1024, args.runs)} at 1024, 1 above, each after a warm-up call.\n')
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends:
            results = measure(backend, args, folder)
            failed |= any(isinstance(v, tuple) and v[1] for v in results.values())
            print(tables(backend, args, results), flush=True)
            print()
    print(f'1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (the '
          f'benchmark alone adds up to {cpus}). Total time {time.perf_counter() - start:.0f} s.')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
