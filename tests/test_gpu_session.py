"""scripts/gpu_session.py, the prepared GPU session, run here as its `--smoke` mode: the same path
(wheels check, pieces gathered, batch sizes measured, training resumed and stopped by time, weights
and scalars brought back) on tiny photos at width 8, twice on one work folder, as two calls on a
warm machine would."""
import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, 'scripts', 'gpu_session.py')
# What the GPU machine brings back from $OUT: at most 8 files, no deeper than OUT/a/b/file.
MAX_FILES, MAX_DEPTH = 8, 2


def session(*args, timeout=400):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def returned_files(out):
    files = []
    for root, _, names in os.walk(out):
        depth = os.path.relpath(root, out).count(os.sep) + (root != str(out))
        files += [(os.path.join(root, name), depth) for name in names]
    return files


@pytest.mark.jax_session
def test_smoke_session_measures_trains_resumes_and_brings_back(tmp_path):
    from inpaint.checkpoint import load_models
    work = tmp_path / 'work'
    first = session('--smoke', '--measure', 1, '--train', 25, '--work', work, '--out', tmp_path / 'out1')
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    with open(tmp_path / 'out1' / 'throughput.json') as handle:
        rows = json.load(handle)
    assert [row['batch'] for row in rows] == [2, 4] and all(row['flops'] > 0 for row in rows)
    assert 'most images per second at batch' in first.stdout
    generator, discriminator, report = load_models(str(tmp_path / 'out1' / 'weights'))
    assert (report.generator_cnum, report.discriminator_cnum) == (8, 8) and discriminator is not None
    with open(tmp_path / 'out1' / 'scalars.csv') as handle:
        scalars = list(csv.DictReader(handle))
    heldout = [int(row['step']) for row in scalars if row['tag'] == 'losses/heldout_l1']
    assert heldout and {'losses/d_loss', 'losses/g_loss', 'speed/steps_per_second'} <= {
        row['tag'] for row in scalars}
    files = returned_files(tmp_path / 'out1')
    assert len(files) <= MAX_FILES and max(depth for _, depth in files) <= MAX_DEPTH, files

    # A second call on the same (warm) work folder resumes that run instead of starting again.
    second = session('--smoke', '--deadline', 50, '--work', work, '--out', tmp_path / 'out2')
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert 'resumed from' in second.stdout and second.stdout.count('Training steps') == 1
    with open(tmp_path / 'out2' / 'scalars.csv') as handle:
        steps = [int(row['step']) for row in csv.DictReader(handle)]
    assert max(steps) > max(heldout)


def test_no_packed_photos_is_one_line_and_exit_2(tmp_path):
    (tmp_path / 'packed').mkdir()
    run = session('--train', 5, '--packed', tmp_path / 'packed', '--work', tmp_path / 'work',
                  '--out', tmp_path / 'out', timeout=60)
    assert run.returncode == 2
    errors = [line for line in run.stdout.splitlines() if 'error' in line]
    assert len(errors) == 1 and 'pack_images.py' in errors[0] and str(tmp_path / 'packed') in errors[0]
    assert not os.path.exists(tmp_path / 'work' / 'run')


def test_prepare_packs_two_pieces_that_fit_two_calls(tmp_path):
    """--prepare (here, before the GPU calls): the held-out photos and the training photos packed
    so that call 1 (tree + wheels + held-out + piece 0) and call 2 (tree + piece 1) each stay under
    the machine's 64 MiB; a second --prepare leaves the pack it made alone."""
    import cv2
    import numpy as np
    sys.path.insert(0, os.path.join(REPO, 'scripts'))
    import gpu_session
    shared, rng = tmp_path / 'shared', np.random.default_rng(0)
    for name, count in (('imagenet_sample/train', 6), ('imagenet_sample/val', 20), ('flowers/train', 5)):
        folder = shared / 'data' / name
        folder.mkdir(parents=True)
        paths = [str(folder / f'{index}.png') for index in range(count)]
        for path in paths:
            cv2.imwrite(path, rng.integers(0, 256, (300, 280, 3), dtype=np.uint8))
        (folder.parent / f'{folder.name}.flist').write_text('\n'.join(paths) + '\n')
    wheels = tmp_path / 'whl'
    wheels.mkdir()
    (wheels / 'keras-0-py3-none-any.whl').write_bytes(b'0' * 2**20)  # present: nothing is downloaded
    packed = tmp_path / 'packed'
    run = session('--prepare', '--shared', shared, '--packed', packed, '--wheels', wheels, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len((packed / 'val' / 'piece0' / 'train.flist').read_text().split()) == 16
    pieces = sorted(os.listdir(packed / 'train'))
    assert pieces == ['piece0'] and len((packed / 'train' / 'piece0' / 'train.flist').read_text().split()) == 11
    first = (gpu_session.travelling_bytes() + gpu_session.folder_bytes(wheels)
             + gpu_session.folder_bytes(packed / 'val') + gpu_session.folder_bytes(packed / 'train' / 'piece0'))
    assert first <= gpu_session.CALL_LIMIT
    assert 'Ready. Call 1 (carry' in run.stdout and '--measure' in run.stdout
    again = session('--prepare', '--shared', shared, '--packed', packed, '--wheels', wheels, timeout=60)
    assert again.returncode == 2 and 'exists' in again.stdout and sorted(os.listdir(packed / 'train')) == pieces


def test_an_out_folder_holding_files_is_refused_untouched(tmp_path):
    """The results (weights/, scalars.csv, throughput.json) would replace a user's files: an --out
    that holds any is refused in one line, before anything runs."""
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'scalars.csv').write_text('mine')
    run = session('--train', 5, '--work', tmp_path / 'work', '--out', out, timeout=60)
    assert run.returncode == 2 and len(run.stdout.splitlines()) == 1 and str(out) in run.stdout
    assert os.listdir(out) == ['scalars.csv'] and (out / 'scalars.csv').read_text() == 'mine'
    assert not os.path.exists(tmp_path / 'work')
