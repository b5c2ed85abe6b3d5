"""One prepared GPU session for `checkpoints/default`: measure, train for a time, bring it back.

Runs as is on the lent GPU machine (JAX, no TensorFlow, no network), from the repository root,
with the wheels (`.whl`) and the packed photos (`.gpu/train/piece<k>`, `.gpu/val/piece0`, from
scripts/pack_images.py) carried there:

    python scripts/gpu_session.py --prepare          # here: wheels, and the photos packed for two calls
    python3 scripts/gpu_session.py --measure 10 --deadline 560   # call 1: .whl .gpu/val .gpu/train/piece0
    python3 scripts/gpu_session.py --deadline S      # call 2, warm: .gpu/train/piece1; S = time left
    python3 scripts/gpu_session.py --batch 64 --deadline 560     # a later session: no measuring
    python scripts/gpu_session.py --smoke            # here, on the CPU: the same path, tiny

Each call:
1. installs the wheels into WORK/site when Keras is missing (the machine has JAX, not Keras);
2. adds the pieces it finds to WORK/data (and WORK/val): WORK (default /tmp/deepfill) lasts while
   the machine stays warm, so a second call's piece joins the first's;
3. `--measure S`: times D+G iterations at batch 16, 32 and 64 in bfloat16 for S seconds each
   (benchmarks/training.py: images/s, GPU memory, XLA's FLOP per iteration, share of
   `--peak_tflops`) and keeps the batch with the most images per second for `--train`;
4. `--train S` (or `--deadline S`: until S seconds after the call started, less the time step 5
   takes): resumes the run in WORK/run, or starts it from `checkpoints/default`'s weights (Adam
   restarts: its state is not shipped), trains for S seconds of wall time (start-up included)
   with `train.py` and stops it with SIGINT (it saves a checkpoint);
5. writes to `--out`: the weights in the backend-neutral format (`weights/`, to copy into
   checkpoints/default), `scalars.csv` (every logged scalar: losses, held-out L1, speed),
   `throughput.json` and `session.log` (at most 8 files: what the machine returns).

The schedule is `checkpoints/default/train.yml`'s (the original's losses, `gan_loss_alpha` 0.1,
bfloat16) with `lr` scaled by sqrt(batch / 16) above batch 16 (Adam's usual rule for a larger
batch; `--lr` overrides it) and the held-out L1 every ~4000 images; `--set KEY=VALUE` changes
any other key. Exit codes: 0 done; 1 a step failed (its log says why); 2 bad flags or no data.
"""
import argparse
import contextlib
import csv
import glob
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

STARTED = time.time()  # --deadline counts from here
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Imported from the checkout, whether installed or not: inpaint, pack_images (beside this script)
# and benchmarks/training.py (its images_per_second; last, so that it shadows nothing), each only
# where it is used.
sys.path[:0] = [REPO, os.path.join(REPO, 'scripts')]
sys.path.append(os.path.join(REPO, 'benchmarks'))
BATCHES = (16, 32, 64)
BASE_BATCH, BASE_LR = 16, 1e-4  # checkpoints/default/train.yml's
IMAGES_PER_HELDOUT = 4000  # images trained between two held-out L1 points
BRING_BACK_S = 25  # --deadline: saving on SIGINT, converting the weights, reading the scalars (8 s here)
MIN_TRAIN_S = 20
MEASURE_TIMEOUT_S = 240  # one batch size's measurement at most (compiling included): a hang costs no more
WORK = '/tmp/deepfill'  # the machine's /tmp lasts while it stays warm
CONFIG = os.path.join(REPO, 'checkpoints', 'default', 'train.yml')  # the recipe of the run it continues


class Session:
    """Where a call keeps its work (`work`, kept while the machine is warm) and its results
    (`out`, brought back), and the log both are written to."""

    def __init__(self, work, out):
        self.work, self.out = work, out
        os.makedirs(work, exist_ok=True)
        os.makedirs(out, exist_ok=True)
        self._log = open(os.path.join(out, 'session.log'), 'a', encoding='utf-8')
        self.env = dict(os.environ, KERAS_BACKEND='jax', TF_CPP_MIN_LOG_LEVEL='3', PYTHONUNBUFFERED='1',
                        JAX_COMPILATION_CACHE_DIR=os.path.join(work, 'jax_cache'),
                        PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))

    def say(self, text):
        """Prints a line and logs it, with the time of day."""
        line = f'[{time.strftime("%H:%M:%S")}] {text}'
        print(line, flush=True)
        self._log.write(line + '\n')
        self._log.flush()

    def run(self, command):
        """Runs a command with this session's environment; logs its output and prints its stdout
        (and its stderr when it fails); returns the exit code."""
        self.say('$ ' + ' '.join(command))
        done = subprocess.run(command, env=self.env, cwd=REPO, capture_output=True, text=True)
        self._log.write(done.stdout + done.stderr)
        print((done.stdout + (done.stderr if done.returncode else ''))[-4000:], end='', flush=True)
        return done.returncode


def ensure_keras(session, wheels):
    """Installs the carried wheels into WORK/site unless Keras can already be imported."""
    if importlib.util.find_spec('keras') is not None:
        return True
    site = os.path.join(session.work, 'site')
    if not glob.glob(os.path.join(site, 'keras')):
        files = sorted(glob.glob(os.path.join(wheels, '*.whl')))
        if not files:
            session.say(f'error: Keras is missing and {wheels} holds no wheels; carry .whl')
            return False
        if session.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps',
                        '--no-compile', '--no-cache-dir', '--upgrade', '--target', site] + files):
            return False
    session.env['PYTHONPATH'] = os.pathsep.join([REPO, site])
    return True


def gather_data(session, packed):
    """Copies the packed pieces found under `packed` into WORK/data and WORK/val and rewrites
    their lists; returns (training images, held-out images) now there."""
    counts = []
    for kind, pattern, flist in (('data', 'train/piece*', 'train.flist'), ('val', 'val/piece*', 'val.flist')):
        folder = os.path.join(session.work, kind)
        os.makedirs(folder, exist_ok=True)
        for piece in sorted(glob.glob(os.path.join(packed, pattern))):
            with open(os.path.join(piece, 'train.flist')) as handle:
                names = handle.read().split()
            for name in names:
                if not os.path.exists(os.path.join(folder, name)):
                    shutil.copy(os.path.join(piece, name), folder)
            session.say(f'{piece}: {len(names)} images')
        images = sorted(name for name in os.listdir(folder) if not name.endswith('.flist'))
        with open(os.path.join(folder, flist), 'w') as handle:
            handle.write(''.join(os.path.join(folder, name) + '\n' for name in images))
        counts.append(len(images))
    session.say(f'data: {counts[0]} training and {counts[1]} held-out images in {session.work}')
    return tuple(counts)


def measure(session, seconds, settings, peak_tflops, widths, config_sets):
    """benchmarks/training.py over `settings` ((size, batch) pairs), with training's config (so
    that the chosen batch's compiled steps are in JAX's cache when training starts); returns the
    batch with the most images per second (None if every setting failed) and writes
    throughput.json."""
    results = os.path.join(session.out, 'throughput.json')
    session.run([sys.executable, os.path.join(REPO, 'benchmarks', 'training.py'), '--config', CONFIG]
                + [f'--set={item}' for item in config_sets] + [
                 '--sizes', ','.join(f'{size}:{batch}' for size, batch in settings),
                 '--min_seconds', str(seconds), '--iters', '3', '--warmup', '2', '--mixed_precision',
                 '--timeout', str(MEASURE_TIMEOUT_S),
                 '--cnum_generator', str(widths[0]), '--cnum_discriminator', str(widths[1]),
                 '--json', results] + (['--peak_tflops', str(peak_tflops)] if peak_tflops else []))
    if not os.path.exists(results):
        return None
    shutil.copy(results, os.path.join(session.work, 'throughput.json'))
    return chosen_batch(session)


def chosen_batch(session):
    """The batch with the most images per second in this machine's last `--measure`, else None."""
    from training import images_per_second  # benchmarks/training.py's, which measured them
    path = os.path.join(session.work, 'throughput.json')
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        rows = [row for row in json.load(handle) if 'error' not in row]
    return max(rows, key=images_per_second)['batch'] if rows else None


def train(session, seconds, overrides):
    """train.py for `seconds` of wall time, then SIGINT (it saves); returns its exit code."""
    command = [sys.executable, os.path.join(REPO, 'train.py'), '--config', CONFIG]
    for override in overrides:
        command += ['--set', override]
    session.say('$ ' + ' '.join(command))
    log_path = os.path.join(session.work, 'train.log')  # kept across calls: this one's part is read
    offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    with open(log_path, 'a', encoding='utf-8') as log:
        process = subprocess.Popen(command, env=session.env, cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            code = process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # finishes the step and saves a checkpoint
            try:
                code = process.wait(timeout=180)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
    with open(log_path, encoding='utf-8', errors='replace') as log:
        log.seek(offset)
        # tqdm redraws its bar with carriage returns: keep the lines that say something
        lines = [line.strip() for line in log.read().replace('\r', '\n').splitlines()]
    heldout = [line for line in lines if 'held-out' in line]
    for line in lines:
        if line in heldout[-8:] or any(word in line for word in (
                'saved', 'Training steps', 'rror', 'interrupted', 'Finished', 'skipped')):
            session.say('train: ' + line)
    session.say(f'train.py exit code {code} (130 = stopped by SIGINT after saving)')
    return code


def bring_back(session, run_dir):
    """The run's latest checkpoint in the neutral format (out/weights) and its scalars (CSV)."""
    code = session.run([sys.executable, '-m', 'inpaint.commands.convert', run_dir,
                        os.path.join(session.out, 'weights')])
    rows = scalars(run_dir)
    with open(os.path.join(session.out, 'scalars.csv'), 'w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(['tag', 'step', 'value', 'wall_time'])
        writer.writerows(rows)
    heldout = [row for row in rows if row[0] == 'losses/heldout_l1']
    session.say(f'{len(rows)} scalars; held-out L1: '
                + ', '.join(f'{step}: {value:.4f}' for _, step, value, _ in heldout[-12:]))
    return code


def scalars(run_dir):
    """Every scalar of the run's event files: (tag, step, value, wall_time) rows."""
    # Imported here: --prepare and --smoke's parent need no TensorBoard.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    rows = []
    for path in sorted(glob.glob(os.path.join(run_dir, 'events.out.tfevents.*'))):
        events = EventAccumulator(path, size_guidance={'scalars': 0})
        events.Reload()
        for tag in events.Tags()['scalars']:
            rows += [(tag, event.step, event.value, event.wall_time) for event in events.Scalars(tag)]
    return sorted(rows, key=lambda row: (row[1], row[0]))


def training_overrides(args, session, batch):
    """train.py's --set flags for this session (the real run or the smoke test)."""
    lr = args.lr if args.lr else BASE_LR * math.sqrt(max(batch, BASE_BATCH) / BASE_BATCH)
    run_dir = os.path.join(session.work, 'run')
    overrides = [
        f'log_dir={run_dir}', 'dataset=gpu',
        f'data_flist.gpu=[{session.work}/data/train.flist, {session.work}/val/val.flist]',
        f'batch_size={batch}', f'lr={lr:g}', 'max_iters=100000000', 'val=False',
        'val_psteps=100000000',  # no preview images: the event file stays small
        f'heldout_steps={max(1, IMAGES_PER_HELDOUT // (2 * batch))}', 'heldout_images=16',
        'log_steps=50', 'train_spe=1000', 'num_parallel_calls=12']
    if not glob.glob(os.path.join(run_dir, 'ckpt-*')):
        overrides.append(f'model_restore={args.restore}')
    return overrides + args.set


def smoke_data(folder):
    """A tiny pack (12 training photos in two pieces, 4 held-out) cut from examples/input.png into
    `folder` (kept: a second smoke call with the same --work finds it); returns the pack."""
    if os.path.isdir(os.path.join(folder, 'packed')):
        return os.path.join(folder, 'packed')
    import cv2
    import numpy as np
    import pack_images
    photo = cv2.imread(os.path.join(REPO, 'examples', 'input.png'))
    sources = os.path.join(folder, 'photos')
    os.makedirs(sources)
    rng = np.random.default_rng(0)
    for index in range(16):
        top, left = rng.integers(0, photo.shape[0] - 96), rng.integers(0, photo.shape[1] - 96)
        cv2.imwrite(os.path.join(sources, f'{index:02d}.png'), photo[top:top + 96, left:left + 96])
    paths = sorted(glob.glob(os.path.join(sources, '*.png')))
    for name, chosen, piece_mb in (('train.flist', paths[:12], '0.01'), ('val.flist', paths[12:], '1')):
        with open(os.path.join(folder, name), 'w') as handle:
            handle.write('\n'.join(chosen) + '\n')
        kind = 'train' if name == 'train.flist' else 'val'
        with open(os.devnull, 'w') as quiet, contextlib.redirect_stdout(quiet):
            pack_images.main([os.path.join(folder, 'packed', kind), os.path.join(folder, name),
                              '--size', '64', '--format', 'webp', '--quality', '60', '--piece_mb', piece_mb])
    return os.path.join(folder, 'packed')


# --- here, before the GPU calls (--prepare) ----------------------------------------------------

CALL_LIMIT = 64 * 2**20  # what one call may carry: the working tree, wheels and data together
MARGIN = 2**19  # bytes kept free in each call
WHEELS = ('keras', 'namex', 'optree', 'tensorboardX')  # what the GPU machine lacks
TRAIN_LISTS = ('imagenet_sample/train.flist', 'flowers/train.flist')  # under ../shared/data
HELDOUT = ('imagenet_sample/val.flist', 16)  # the held-out L1's photos: the list's first 16


def travelling_files(untracked=True):
    """(bytes, path relative to the repository) of the working tree's files that every call sends:
    tracked files and (`untracked`) the untracked ones git does not ignore, counted as the copy
    counts them (a link as itself; a tracked file deleted here not at all), largest first.

    Raises: FileNotFoundError (no git), subprocess.CalledProcessError (not a git checkout)."""
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached'] + (['--others', '--exclude-standard']
                                                                     if untracked else []),
                            cwd=REPO, capture_output=True, check=True, timeout=60).stdout.split(b'\0')
    paths = {os.path.join(REPO, os.fsdecode(path)) for path in listed if path}
    return sorted(((os.lstat(path).st_size, os.path.relpath(path, REPO)) for path in paths
                   if os.path.lexists(path)), reverse=True)


def travelling_bytes():
    """Bytes of the working tree that every call sends (`travelling_files`)."""
    return sum(size for size, _ in travelling_files())


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(folder) for name in names)


def download_wheels(folder):
    """The versions installed here of `WHEELS`, for the GPU machine's Python 3.12 (x86-64)."""
    from importlib.metadata import version
    if glob.glob(os.path.join(folder, '*.whl')):
        return 0
    platforms = [item for tag in ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64',
                                  'manylinux2014_x86_64') for item in ('--platform', tag)]
    return subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:',
                           '--python-version', '3.12', '--implementation', 'cp', *platforms, '-d', folder]
                          + [f'{name}=={version(name)}' for name in WHEELS]).returncode


def webp_quality(paths, budget, sample=300):
    """The highest WebP quality (20..90, steps of 2) at which the photos' 256 x 256 crops are
    expected to fit `budget` bytes, from a seeded sample of them."""
    import random
    import cv2
    from pack_images import square_crop
    from inpaint.data import decode_bgr
    chosen = random.Random(0).sample(paths, min(sample, len(paths)))
    crops = [square_crop(decode_bgr(path), 256) for path in chosen]
    for quality in range(90, 20, -2):
        mean = sum(len(cv2.imencode('.webp', crop, [cv2.IMWRITE_WEBP_QUALITY, quality])[1])
                   for crop in crops) / len(crops)
        if mean * len(paths) <= 0.97 * budget:
            return quality
    return 20


def prepare(shared, packed, wheels):
    """Wheels and the packed photos, sized so that two calls carry them; prints the calls."""
    from inpaint.imageio import list_images
    if download_wheels(wheels):
        print(f'error: could not download the wheels into {wheels} (pip above says why)')
        return 1
    if os.path.exists(packed):
        print(f'error: {packed} exists; remove it to pack again (it was made by --prepare)')
        return 2
    heldout_list = os.path.join(tempfile.mkdtemp(), 'heldout.flist')
    with open(heldout_list, 'w') as handle:
        handle.write('\n'.join(list_images(os.path.join(shared, 'data', HELDOUT[0]))[:HELDOUT[1]]) + '\n')
    import pack_images
    if pack_images.main([os.path.join(packed, 'val'), heldout_list, '--format', 'webp', '--quality', '90']):
        return 1
    tree = travelling_bytes()  # .gpu and .whl are ignored: they travel only where carried
    first = CALL_LIMIT - tree - folder_bytes(wheels) - folder_bytes(os.path.join(packed, 'val')) - MARGIN
    second = CALL_LIMIT - tree - MARGIN
    lists = [os.path.join(shared, 'data', name) for name in TRAIN_LISTS]
    paths = [path for flist in lists for path in list_images(flist)]
    quality = webp_quality(paths, first + second)
    print(f'working tree {tree / 2**20:.1f} MiB per call; pieces of {first / 1e6:.2f} MB (with the wheels '
          f'and the held-out photos) and {second / 1e6:.2f} MB; WebP quality {quality}')
    code = pack_images.main([os.path.join(packed, 'train'), *lists, '--format', 'webp', '--quality',
                             str(quality), '--piece_mb', f'{first / 1e6:.3f},{second / 1e6:.3f}',
                             '--shuffle_seed', '0'])
    pieces = sorted(glob.glob(os.path.join(packed, 'train', 'piece*')))
    if code or len(pieces) > 2:
        print(f'error: {len(pieces)} pieces (exit {code}); remove {packed} and pack at a lower quality')
        return 1
    rel = lambda path: os.path.relpath(path, REPO)
    print(f'Ready. Call 1 (carry {rel(wheels)}, {rel(packed)}/val, {rel(pieces[0])}; timeout_s 600): '
          f'python3 scripts/gpu_session.py --measure 10 --deadline 560')
    if len(pieces) == 2:
        print(f'Call 2, within 30 s (carry {rel(pieces[1])}): python3 scripts/gpu_session.py '
              f'--deadline S (S: the device time left less about 60 s)')
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--measure', type=float, metavar='S', help='time each batch size for S seconds')
    parser.add_argument('--train', type=float, metavar='S', help='train for S seconds of wall time')
    parser.add_argument('--deadline', type=float, metavar='S',
                        help='train until S seconds after this call started, less what bringing the '
                             'results back takes (instead of --train: after --measure, whatever it took)')
    parser.add_argument('--batch', type=int, help='training batch (default: the measured best, else 16)')
    parser.add_argument('--lr', type=float, help=f'learning rate (default {BASE_LR:g} x sqrt(batch / 16))')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help="another train.py override (repeatable)")
    parser.add_argument('--peak_tflops', type=float, default=790.0,
                        help="the GPU's bfloat16 matrix rate, for the share of it (H100, H200: ~790)")
    parser.add_argument('--out', default=os.environ.get('OUT'),
                        help='where the results go (default $OUT, else runs/gpu_out; --smoke: a temporary folder)')
    parser.add_argument('--work', default=WORK, help='kept while the machine is warm')
    parser.add_argument('--packed', default=os.path.join(REPO, '.gpu'), help='the carried pieces')
    parser.add_argument('--wheels', default=os.path.join(REPO, '.whl'))
    parser.add_argument('--restore', default=os.path.join(REPO, 'checkpoints', 'default'),
                        help='the weights a new run starts from')
    parser.add_argument('--prepare', action='store_true',
                        help='here, first: download the wheels and pack the photos for two calls')
    parser.add_argument('--shared', default=os.path.join(os.path.dirname(REPO), 'shared'),
                        help='--prepare: the shared folder with data/ (default ../shared)')
    parser.add_argument('--smoke', action='store_true',
                        help='the whole path on the CPU in about a minute: tiny images, widths 8')
    args = parser.parse_args(argv)
    if not (args.measure or args.train or args.deadline or args.smoke or args.prepare):
        parser.error('give --prepare (here), --measure S and/or --train S or --deadline S (there), '
                     'or --smoke')
    if args.train and args.deadline:
        parser.error('give --train S or --deadline S, not both')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.prepare:
        return prepare(args.shared, args.packed, args.wheels)
    widths, settings = (48, 64), [(256, batch) for batch in BATCHES]
    if args.smoke:  # the real path, scaled down: tiny photos, widths 8 (the training golden's weights)
        if args.work == WORK:
            args.work = os.path.join(tempfile.mkdtemp(prefix='gpu_smoke_'), 'work')
        args.out = args.out or os.path.join(os.path.dirname(args.work), 'out')
        args.packed = smoke_data(os.path.join(os.path.dirname(args.work), 'smoke_data'))
        args.restore = os.path.join(REPO, 'tests', 'data', 'golden_train_small', 'weights')
        widths, settings = (8, 8), [(64, 2), (64, 4)]
        if not (args.measure or args.train or args.deadline):
            args.measure, args.train = 2, 30
        args.set = ['cnum_generator=8', 'cnum_discriminator=8', 'img_shapes=[64,64,3]', 'height=32',
                    'width=32', 'max_delta_height=8', 'max_delta_width=8',
                    'num_parallel_calls=2', 'log_steps=5', 'heldout_steps=2', 'heldout_images=4'] + args.set
    out = args.out or os.path.join(REPO, 'runs', 'gpu_out')
    if os.path.isdir(out) and os.listdir(out):  # the machine empties $OUT before each command
        print(f'gpu_session.py: error: {out} holds files; give a new or empty --out (its results '
              f'would replace files there)')
        return 2
    session = Session(args.work, out)
    if args.smoke:  # XLA without its expensive passes: the smoke test checks the path, not speed
        session.env['XLA_FLAGS'] = '--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true'
    start = time.time()
    if not ensure_keras(session, args.wheels):
        return 1
    images, _ = gather_data(session, args.packed)
    if not images:
        session.say(f'error: no training images under {args.packed}/train/piece*/ or {args.work}/data; '
                    f'pack them with scripts/pack_images.py and carry a piece')
        return 2
    batch = args.batch
    if args.measure:
        best = measure(session, args.measure, settings, args.peak_tflops, widths, args.set)
        session.say(f'most images per second at batch {best}' if best else 'every batch size failed')
        batch = batch or best
    code = 0
    if args.deadline:
        args.train = args.deadline - (time.time() - STARTED) - BRING_BACK_S
        if args.train < MIN_TRAIN_S:
            session.say(f'error: {args.train:.0f} s left before the deadline: too little to train')
            return 2
    if args.train:
        batch = batch or chosen_batch(session) or BASE_BATCH
        code = train(session, args.train, training_overrides(args, session, batch))
        code = bring_back(session, os.path.join(session.work, 'run')) or (0 if code in (0, 130) else 1)
    session.say(f'done in {time.time() - start:.0f} s; results in {session.out}: '
                + ', '.join(sorted(os.listdir(session.out))))
    return code


if __name__ == '__main__':
    sys.exit(main())
