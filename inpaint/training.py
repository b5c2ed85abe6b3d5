"""Training and fine-tuning DeepFill v2: `train(config)`, one flat loop in marked sections.

The pieces it puts together: `inpaint.gan` (both networks, the shared Adam, the losses and the
D and G step logic), `inpaint.run_state` (restore from log_dir or model_restore, save, rotate),
`inpaint.data` (the input pipeline) and tensorboardX (the TensorBoard event files). Each iteration
is one discriminator step then one generator step, each on its own batch and its own mask
(`inpaint.gan` has the formulas).

Several devices and processes train data-parallel, with the original's semantics (its towers):
`batch_size` images per device (the global batch, batch_size x devices, is printed at the start),
each device its own mask, the learning rate the config's. Each process reads a disjoint slice of
every pass's shuffled file list (`data.make_dataset(shard=...)`) and draws its masks from its own
seeded stream; the step counter is global (every process steps together and resumes from the
same checkpoint); process 0 alone writes config.yml, the summaries, the held-out L1 and the
checkpoints. The processes agree at the start on the config and the step, and after every
iteration on whether one of them was asked to stop (Ctrl-C or SIGTERM on any process stops all of
them after the same step, with one checkpoint). A process that dies makes the others' next
collective fail: they stop with `PeerLostError` (one line) instead of waiting.

Deliberate differences from the original (each also noted where it happens):
- Static views (`val: True`) use the original's fixed box (`build_static_infer_graph`: top =
  height // 2, left = width // 2, size height x width) without the random shrink and without the
  random brush strokes the original's `build_infer_graph` adds on every evaluation, so a view
  shows the same hole at every step and the pictures are comparable over time.
- Guided (`guided: True`): the static views' and held-out images take their `<name>_edge.jpg`
  too (as the original's `val_fnames` pairs), the previews show the hole's lines over the
  incomplete image (its `batch_incomplete + edge`), and a folder source leaves its edge images
  out (`data.training_images`). The loop is the same: the edge lines are a fourth channel of the
  batch (`gan.step_batch`).
- The input pipeline's position is not checkpointed: a resumed run re-seeds the data order, the
  masks and the WGAN-GP interpolation weights from (seed, step) when `random_seed`, so it is
  reproducible without replaying the steps already done (and it continues exactly as the same
  run would, had it not been stopped).

TensorBoard summaries are written with tensorboardX (the same files on every backend, with or
without TensorFlow installed; TensorFlow's `tf.summary` would tie the JAX and PyTorch runs to it).
"""
import math
import os
import sys
import time
import zlib

import keras
import numpy as np
from absl import logging
from tensorboardX import SummaryWriter
from tqdm import tqdm

from inpaint import backends
from inpaint import data as data_lib
from inpaint import training_state
from inpaint.config import ConfigError, save_config
from inpaint.flow import offset_flow, resize_bilinear
from inpaint.gan import masks_per_image, step_batch, training_masks
from inpaint.generator import composite, hole_edges
from inpaint.interrupt import StopRequest
from inpaint.run_state import CONFIG_FILE, RunState

HELDOUT_SEED = 12345  # the held-out images' fixed training masks
HELDOUT_BATCH = 8


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or Inf loss; the message names the step, the loss and the kept checkpoint."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM stopped training after the current step; a checkpoint was saved."""

    def __init__(self, step, checkpoint):
        super().__init__(f'interrupted at step {step}; saved {checkpoint}; run the same command '
                         f'to resume')
        self.step = step
        self.checkpoint = checkpoint


# --- held-out and validation images --------------------------------------------------------------

def validation_images(config, count):
    """The first `count` validation images, centre-cropped (or resized) as training sees them;
    guided with their edge images (`data.decode_element`), as the steps take them.

    Returns:
        `gan.step_batch` of them: float32 (N, H, W, 3) BGR 0..255 (guided (N, H, W, 4) with the
        edge lines), or None when the list is empty.
    """
    paths = data_lib.training_images(config.val_flist)[:count]
    if not paths:
        return None
    elements = [[data_lib.center_crop_or_resize(array, config.img_shapes[:2], config.random_crop)
                 for array in data_lib.decode_element(path, config.guided)] for path in paths]
    parts = [np.stack(part).astype(np.float32) for part in zip(*elements)]  # images (, edges)
    return step_batch(tuple(parts) if config.guided else parts[0], config)


def heldout_set(config):
    """The held-out images (`heldout_images` validation images) and one fixed training mask each.

    Returns:
        (images (N, H, W, 3) BGR 0..255, guided (N, H, W, 4) with the edge lines; masks
        (N, H, W, 1)), float32.
    """
    images = validation_images(config, config.heldout_images)
    return images, training_masks(config, len(images), np.random.default_rng(HELDOUT_SEED))


def heldout_l1(gan, heldout):
    """Mean |completed - real| inside the holes of the held-out images, in [0, 255] units / 255.

    Args:
        gan: the `GAN` (its generator runs through `gan.infer`).
        heldout: (images, masks) from `heldout_set`.
    Returns:
        float.
    """
    images, masks = heldout
    total, count = 0.0, 0.0
    for start in range(0, len(images), HELDOUT_BATCH):
        mask = masks[start:start + HELDOUT_BATCH]
        x, _, x2, _ = generate(gan, images[start:start + HELDOUT_BATCH], mask)
        total += float((np.abs(x2 - x) * mask).sum()) / 2.0  # [-1,1] -> [0,1]
        count += float(mask.sum()) * 3
    return total / max(count, 1.0)


def static_view_mask(config):
    """The static views' hole: the original's fixed box, without random shrink or strokes.

    Args:
        config: a `Config`.
    Returns:
        float32 (1, H, W, 1), 1 = hole, H x W = img_shapes[:2].
    """
    img_height, img_width = config.img_shapes[:2]
    top, left = config.height // 2, config.width // 2
    mask = np.zeros((1, img_height, img_width, 1), np.float32)
    mask[:, top:top + config.height, left:left + config.width, :] = 1.0
    return mask


def to_summary_images(x, incomplete, complete, flow):
    """Side by side raw | incomplete | complete | offset flow, as RGB in [0, 1] for TensorBoard.

    Args:
        x, incomplete, complete: NumPy (B, H, W, 3) BGR in [-1, 1].
        flow: (B, H/4, W/4, 3) offset-flow colour image in [-1, 1] (upscaled x4 here, bilinear
            with align_corners as the original's summary).
    Returns:
        (B, H, 4W, 3) RGB in [0, 1].
    """
    flow = resize_bilinear(flow, x.shape[1:3])
    grid = np.concatenate([x, incomplete, complete, flow], axis=2)  # (B, H, 4W, 3)
    return np.clip((grid[..., ::-1] + 1.0) / 2.0, 0.0, 1.0)


def generate(gan, batch, mask):
    """The generator (`gan.infer`) on a steps' batch, with the hole's edge lines when guided.

    Args:
        gan: the `GAN`; batch: (B, H, W, 3) BGR 0..255, guided (B, H, W, 4) (`gan.step_batch`);
        mask: (1 or B, H, W, 1).
    Returns:
        (x (B, H, W, 3) in [-1, 1], the hole's edge lines (B, H, W, 1) or None, x2 float32,
        offsets), NumPy.
    """
    x, lines = gan.network_inputs(np.asarray(batch, np.float32))
    mask = np.asarray(mask, np.float32)
    edge = () if lines is None else (hole_edges(lines, mask),)
    _, x2, offsets = gan.infer(x, mask, *edge)
    return x, (edge[0] if edge else None), x2.astype(np.float32), offsets


def preview(gan, batch, mask):
    """raw | incomplete | complete | flow of a batch (B, H, 4W, 3) RGB in [0, 1], as logged;
    guided, the hole's edge lines are drawn (white) on the incomplete image, as the original's
    `batch_incomplete + edge`.

    Args:
        gan: the `GAN`; batch: (B, H, W, 3) BGR 0..255, guided (B, H, W, 4) (`gan.step_batch`);
        mask: (1 or B, H, W, 1).
    """
    mask = np.asarray(mask, np.float32)
    x, edge, x2, offsets = generate(gan, batch, mask)
    incomplete = x * (1.0 - mask) + (0.0 if edge is None else edge)
    return to_summary_images(x, incomplete, composite(x, x2, mask), offset_flow(offsets))


def _write_images(writer, tag, images, step):
    """Images (N, H, W, 3) RGB in [0, 1] as PNG summaries: `tag` for one, `tag/image/<i>` for several."""
    images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    for index, image in enumerate(images):
        writer.add_image(tag if len(images) == 1 else f'{tag}/image/{index}', image, step,
                         dataformats='HWC')


# --- the loop ------------------------------------------------------------------------------------

def _seed(run, start, purpose, process=0):
    """A seed for the data order, the masks or the WGAN-GP weights of a run (re)started at
    `start`; `process` > 0 gives that process a stream of its own (process 0's is one process's)."""
    if run.seed is None:
        return None
    entropy = [run.seed, start, purpose] + ([process] if process else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _agree(distribution, values, what, fix):
    """Raises ConfigError (the same line on every process) unless every process has `values`."""
    gathered = distribution.gather(values)
    differ = [index for index, row in enumerate(gathered) if not np.array_equal(row, gathered[0])]
    if differ:
        raise ConfigError(f'{what} differs between processes (process {differ[0]} and process 0); '
                          f'{fix}')


def _check_finite(step, which, values, run):
    # The step's loss first, so that the message names it (JAX returns the values by name).
    loss = f'{which[0]}_loss'
    for name in sorted(values, key=lambda name: name != loss):
        value = values[name]
        if not math.isfinite(value):
            latest = run.latest_checkpoint
            kept = f'the last checkpoint {latest} is kept' if latest else 'no checkpoint was saved'
            raise NonFiniteLossError(
                f'step {step}: {name} is {value} in the {which} step; stopped without saving '
                f'this state ({kept}); lower lr or check the data')


def train(config, max_iters=None, run=None, coordinator=None, num_processes=None, process_id=None):
    """Trains until the step reaches `max_iters` (default config.max_iters), a total count.

    Writes `config.yml`, summaries and checkpoints (every train_spe steps and at the end) into
    log_dir. A NaN or Inf loss stops the run without saving that state. SIGINT (Ctrl-C) or
    SIGTERM finishes the current step, saves a checkpoint and raises `TrainingInterrupted`.

    Args:
        config: a `Config`.
        max_iters: target step count; None = config.max_iters.
        run: a `RunState` of this config to continue in this process; None = `RunState(config)`
            (resume from log_dir, fine-tune from model_restore, or start fresh).
        coordinator, num_processes, process_id: join a multi-process run first (JAX; see
            `backends.join_processes`); None = JAX's auto-detection (SLURM, Open MPI) or TF_CONFIG.
    Returns:
        the final step (int).
    Raises:
        NonFiniteLossError: a loss (or gradient norm) became NaN or Inf.
        TrainingInterrupted: a signal stopped the run (after saving).
        InputError: the training or validation images cannot be read.
        ConfigError, CheckpointError: see `RunState`; also processes that disagree on the
            config or the step.
        PeerLostError: another process of the run died or cannot be reached.
    """
    c = config
    if run is not None and run.config != c:
        raise ValueError('train(config, run=...): the run was made with another config')
    if run is None:
        backends.join_processes(coordinator, num_processes, process_id)
        run = RunState(c)
    gan, distribution = run.gan, run.gan.distribution
    chief, process = run.is_chief, distribution.process_index
    _agree(distribution, [zlib.crc32(repr(c).encode())], 'the configuration',
           'give every process the same --config and --set flags')
    _agree(distribution, [run.step], 'the step resumed from',
           'log_dir must be one folder that every process sees (a shared filesystem)')
    target = c.max_iters if max_iters is None else int(max_iters)
    start = run.step
    if start >= target:
        print(f'Step {start} already reaches max_iters {target}; nothing to train.')
        return start

    # --- data
    dataset = data_lib.make_dataset(
        data_lib.training_images(c.train_flist), c.img_shapes[:2], c.random_crop,
        c.batch_size * distribution.local_replicas, shuffle=True, seed=_seed(run, start, 0),
        num_parallel_calls=c.num_parallel_calls, shuffle_buffer=c.shuffle_buffer,
        shard=(process, distribution.process_count), edges=c.guided)
    rng = np.random.default_rng(_seed(run, start, 1, process))  # this process's masks
    if run.seed is not None:  # the WGAN-GP interpolation weights, re-seeded as the data and masks
        state = gan.seed_generator.state
        state.assign(np.array([_seed(run, start, 2) % 2**31, 0], state.dtype))
    static_images = validation_images(c, c.static_view_size) if c.val and chief else None
    heldout = heldout_set(c) if c.heldout_steps and chief else None

    # --- log
    writer = None
    if chief:
        os.makedirs(c.log_dir, exist_ok=True)
        save_config(c, os.path.join(c.log_dir, CONFIG_FILE))
        writer = SummaryWriter(c.log_dir)
        origin = f'resumed from {run.restored_from}' if start else (
            f'weights from {run.restored_from}' if run.restored_from else 'from scratch')
        devices = distribution.num_replicas
        print(f'Training steps {start}..{target} ({origin}) on {keras.backend.backend()}, '
              f'{devices} device(s) in {distribution.process_count} process(es), global batch '
              f'{c.batch_size * devices} (batch_size {c.batch_size} x {devices}); logs and '
              f'checkpoints in {c.log_dir}')
    bar = tqdm(initial=start, total=target, unit='step', file=sys.stdout, dynamic_ncols=True,
               mininterval=1.0, disable=not chief)
    last_time, last_step = time.perf_counter(), start

    def save():
        path = run.save()
        logging.info('Saved %s', path)
        bar.write(f'step {run.step}: saved {path}', file=sys.stdout)
        return run.step

    saved, stopping = start, False
    stop = StopRequest()
    try:
        with dataset, stop:
            while run.step < target and not stopping:
                # --- step
                d = gan.d_step(step_batch(next(dataset), c), gan.sample_mask(rng))
                _check_finite(run.step + 1, 'discriminator', d, run)
                batch, mask = step_batch(next(dataset), c), gan.sample_mask(rng)
                g = gan.g_step(batch, mask)
                _check_finite(run.step + 1, 'generator', g, run)
                run.step += 1
                step = run.step
                bar.update(1)

                # Every process stops after the same step when any of them was asked to.
                stopping = stop.requested if distribution.process_count == 1 else bool(
                    distribution.gather([stop.requested]).any())
                if not chief:
                    continue

                # --- log
                if step % c.log_steps == 0 or step == target:
                    now = time.perf_counter()
                    rate = (step - last_step) / max(now - last_time, 1e-9)
                    last_time, last_step = now, step
                    for name, value in {**d, **g}.items():
                        group = 'gradients' if name.endswith('grad_norm') else 'losses'
                        writer.add_scalar(f'{group}/{name}', value, step)
                    writer.add_scalar('optimizer/lr', float(keras.ops.convert_to_numpy(
                        gan.optimizer.learning_rate)), step)
                    writer.add_scalar('speed/steps_per_second', rate, step)
                    bar.set_postfix({'steps/s': f'{rate:.3g}', 'd_loss': f'{d["d_loss"]:.4g}',
                                     'g_loss': f'{g["g_loss"]:.4g}', 'ae_loss': f'{g["ae_loss"]:.4g}'})
                if step % c.val_psteps == 0:
                    mask = keras.ops.convert_to_numpy(masks_per_image(mask, len(batch)))
                    _write_images(writer, 'raw_incomplete_complete_flow',
                                  preview(gan, batch[:c.viz_max_out], mask[:c.viz_max_out]), step)
                    if static_images is not None:
                        views = preview(gan, static_images, static_view_mask(c))
                        for index in range(views.shape[0]):  # one tag per image, as the original's static_view/i
                            _write_images(writer, f'static_view/{index}', views[index:index + 1], step)

                # --- held-out
                if c.heldout_steps and step % c.heldout_steps == 0:
                    l1 = heldout_l1(gan, heldout)
                    writer.add_scalar('losses/heldout_l1', l1, step)
                    bar.write(f'step {step}: held-out L1 {l1:.5f}', file=sys.stdout)

                # --- checkpoint
                if step % c.train_spe == 0:
                    saved = save()
                writer.flush()
            if saved != run.step and chief:
                save()
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    stats = dataset.decode_stats
    if stats.skipped:
        logging.warning('%d unreadable training images were skipped: %s', len(stats.bad_files),
                        sorted(stats.bad_files)[:5])
    checkpoint = run.latest_checkpoint if chief else training_state.path_for(c.log_dir, run.step)
    if stopping:
        raise TrainingInterrupted(run.step, checkpoint)
    if chief:
        print(f'Finished at step {run.step}; last checkpoint {checkpoint}')
    return run.step
