"""Where the dense network's time goes: each stage of `InpaintGenerator` timed on its own.

Stages, as `inpaint.restricted` runs them: stage 1 (`coarse`), the dilated-conv branch
(`hallucinate`), the attention branch and the attention's inputs (`attention_in`), contextual
attention's scores, fuse, softmax and paste matmul (`attention`, blocked), the paste-back
(`paste`) and the layers after the attention (`decode`); then the whole network in one compiled
call. Each figure is the median of `--runs` calls after a warm-up, compiled per shape by the
running backend (`inpaint.backends.compile_function`); with `--xla` on TensorFlow, the stages are
also compiled with XLA (`jit_compile=True`) for comparison. Weights: checkpoints/default.

Usage:
    .venv/bin/python benchmarks/profile_stages.py [--sizes 256,512,1024] [--runs 3] [--xla]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def stage_functions(generator, compile_):
    """name -> (function, how its inputs are made from the previous outputs)."""
    from inpaint.restricted import _attention_inputs, dense_patches, paste_patches

    attention = generator.contextual_attention
    return {
        'stage 1': compile_(generator.coarse),
        'dilated branch': compile_(generator.hallucinate),
        'attention branch + inputs': compile_(lambda x, mask: _attention_inputs(generator, x, mask)),
        'attention (scores, fuse, softmax, paste matmul)': compile_(
            lambda *grids: dense_patches(attention, grids)),
        'paste-back': compile_(lambda patches: paste_patches(attention, patches)),
        'after the attention': compile_(generator.decode),
        'whole network': compile_(lambda image, mask: generator(image, mask)[1]),
    }


def profile(size, runs, compile_, generator):
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    mask = np.zeros((1, size, size, 1), np.float32)
    mask[:, size // 4:3 * size // 4, size // 4:3 * size // 4] = 1.0
    fns = stage_functions(generator, compile_)
    times = {name: [] for name in fns}

    def timed(name, *inputs):
        start = time.perf_counter()
        out = fns[name](*inputs)
        first = out[0] if isinstance(out, (list, tuple)) else out
        ops.convert_to_numpy(ops.reshape(first, (-1,))[:1])  # wait for the result
        times[name].append(time.perf_counter() - start)
        return out

    for _ in range(runs + 1):
        timed('stage 1', image, mask)
        hallucinated = timed('dilated branch', image)
        grids = timed('attention branch + inputs', image, mask)
        patches = timed('attention (scores, fuse, softmax, paste matmul)', *grids)
        attended = timed('paste-back', patches)
        timed('after the attention', hallucinated, attended)
        timed('whole network', image, mask)
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='256,512,1024')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--xla', action='store_true', help='TensorFlow: also time XLA stages')
    args = parser.parse_args(argv)
    import keras

    from inpaint import backends
    from inpaint.checkpoint import load_models

    generator, _, _ = load_models(str(REPO / 'checkpoints' / 'default'), with_discriminator=False)
    variants = {'compiled': lambda fn: backends.compile_function(fn, generator.variables)}
    if args.xla and keras.backend.backend() == 'tensorflow':
        import tensorflow as tf
        variants['XLA'] = lambda fn: (lambda f: lambda *x: f(*x))(tf.function(fn, jit_compile=True))
    sizes = [int(s) for s in args.sizes.split(',')]
    results = {(variant, size): profile(size, args.runs, make, generator)
               for size in sizes for variant, make in variants.items()}
    names = list(next(iter(results.values())))
    print(f'# Stage times, {keras.backend.backend()}, seconds (median of {args.runs}; share of '
          f'the sum of stages)\n')
    header = ' | '.join(f'{variant} {size}' for variant, size in results)
    print(f'| stage | {header} |\n|---|' + '---:|' * len(results))
    for name in names:
        cells = []
        for key, stages in results.items():
            total = sum(v for k, v in stages.items() if k != 'whole network')
            share = '' if name == 'whole network' else f' ({100 * stages[name] / total:.0f}%)'
            cells.append(f'{stages[name]:.3f}{share}')
        print(f'| {name} | ' + ' | '.join(cells) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
