"""Two training iterations on several devices or processes, run by tests/test_distributed.py.

Every mode trains the same tiny GAN (widths 4, 32x32) from the same weights on the same global
batches of 4 images: on JAX with one shared mask (the mode where every device uses the step's same
mask), on TensorFlow with a mask per image, each worker taking its images' masks:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python tests/distributed_run.py devices OUT.npz
        # one process: one device with the global batch, then its 2 devices with 2 images each
    KERAS_BACKEND=jax python tests/distributed_run.py process I PORT INIT.npz OUT.npz
        # process I of 2 on 127.0.0.1:PORT (gloo), one device, its 2 images of each batch
    KERAS_BACKEND=tensorflow TF_CONFIG=... python tests/distributed_run.py worker I INIT.npz OUT.npz
        # MultiWorkerMirroredStrategy worker I of 2, its 2 images of each batch
    KERAS_BACKEND=tensorflow python tests/distributed_run.py single INIT.npz OUT.npz
        # one worker (the default strategy) with the global batch: the workers' reference

OUT.npz (written by the first process or worker only) holds, per run, `<run>/loss/<i>/<name>`
(iteration i's losses) and `<run>/w/<name>` (every weight under the authors' name, the
spectral-norm `u` included, and `optimizer/<index>`: Adam's state) after the iterations;
`devices` also writes `init/w/<name>`, the weights all runs start from, and `<run>_infer/x2`, the
trained generator's output on the first batch through `GAN.infer` (one device).
"""
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE, GLOBAL_BATCH, ITERATIONS = 32, 4, 2


def overrides(devices, batch_size):
    return ['img_shapes=[32,32,3]', 'height=16', 'width=16', 'max_delta_height=4',
            'max_delta_width=4', f'batch_size={batch_size}', 'cnum_generator=4',
            'cnum_discriminator=4', 'log_dir=unused', 'random_seed=True', 'gan_loss_alpha=0.5',
            f'num_gpus_per_job={devices}']


def inputs(per_image=False):
    """(ITERATIONS, 2, GLOBAL_BATCH, H, W, 3) raw batches (a D and a G batch each) and the masks:
    one for every image (1, H, W, 1), or with `per_image` one per image (GLOBAL_BATCH, H, W, 1),
    each device then taking its images' masks."""
    rng = np.random.default_rng(0)
    batches = rng.uniform(0, 255, (ITERATIONS, 2, GLOBAL_BATCH, SIZE, SIZE, 3)).astype(np.float32)
    mask = np.zeros((GLOBAL_BATCH if per_image else 1, SIZE, SIZE, 1), np.float32)
    for index in range(len(mask)):  # off-centre boxes: contextual attention keeps patches to attend to
        mask[index, 4 + index:14 + index, 6 + 2 * index:18 + index] = 1.0
    return batches, mask


def weights(gan):
    """{name: array} of both networks' tensors (authors' names) and the optimizer's variables."""
    from keras import ops
    from inpaint.checkpoint import discriminator_table, generator_table
    tables = {**generator_table(gan.generator), **discriminator_table(gan.discriminator)}
    found = {name: np.array(ops.convert_to_numpy(v.value)) for name, v in tables.items()}
    found.update({f'optimizer/{index}': np.array(ops.convert_to_numpy(v.value))
                  for index, v in enumerate(gan.optimizer.variables)})
    return found


def load(gan, values):
    from inpaint.checkpoint import discriminator_table, generator_table
    tables = {**generator_table(gan.generator), **discriminator_table(gan.discriminator)}
    for name, variable in tables.items():
        variable.assign(values[name])
    for index, variable in enumerate(gan.optimizer.variables):
        variable.assign(values[f'optimizer/{index}'])


def initial_weights(path):
    """{name: array} of the `init/w/<name>` entries of an .npz file."""
    return {key[len('init/w/'):]: value for key, value in np.load(path).items()
            if key.startswith('init/w/')}


def train(gan, share, per_image=False):
    """The iterations on images `share` (a slice) of each global batch, with their masks (see
    `inputs`); returns {key: value} to save."""
    batches, mask = inputs(per_image)
    mask = mask[share] if per_image else mask
    result = {}
    for index, (d_batch, g_batch) in enumerate(batches):
        losses = {**gan.d_step(d_batch[share], mask), **gan.g_step(g_batch[share], mask)}
        result.update({f'loss/{index}/{name}': value for name, value in losses.items()})
    result.update({f'w/{name}': value for name, value in weights(gan).items()})
    return result


def main(argv):
    sys.path.insert(0, REPO)
    from inpaint import backends
    from inpaint.config import DEFAULT_CONFIG, load_config
    from inpaint.gan import GAN

    mode = argv[0]
    if mode == 'devices':
        one = GAN(load_config(DEFAULT_CONFIG, overrides(1, GLOBAL_BATCH)))
        two = GAN(load_config(DEFAULT_CONFIG, overrides(2, GLOBAL_BATCH // 2)))
        assert two.distribution.num_replicas == 2, two.distribution.num_replicas
        init = weights(one)
        load(two, init)
        saved = {f'init/w/{name}': value for name, value in init.items()}
        batches, mask = inputs()
        for name, gan in (('one', one), ('two', two)):
            saved.update({f'{name}/{key}': value for key, value in train(gan, slice(None)).items()})
            # The trained generator on one device, as previews and the held-out L1 run it.
            saved[f'{name}_infer/x2'] = gan.infer(batches[0, 0] / 127.5 - 1, mask)[1]
        np.savez(argv[1], **saved)
        return 0
    if mode == 'single':
        init, out = argv[1:]
        gan = GAN(load_config(DEFAULT_CONFIG, overrides(1, GLOBAL_BATCH)))
        load(gan, initial_weights(init))
        result = train(gan, slice(None), per_image=True)
        np.savez(out, **{f'{mode}/{key}': value for key, value in result.items()})
        return 0
    index = int(argv[1])
    if mode == 'process':
        port, init, out = argv[2:]
        backends.join_processes(f'127.0.0.1:{port}', 2, index)
    else:  # worker: TF_CONFIG
        init, out = argv[2:]
        backends.join_processes()
    gan = GAN(load_config(DEFAULT_CONFIG, overrides(1, GLOBAL_BATCH // 2)))
    assert (gan.distribution.num_replicas, gan.distribution.process_index) == (2, index)
    load(gan, initial_weights(init))
    share = GLOBAL_BATCH // 2
    result = train(gan, slice(index * share, (index + 1) * share), per_image=mode == 'worker')
    if index == 0:
        np.savez(out, **{f'{mode}/{key}': value for key, value in result.items()})
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
