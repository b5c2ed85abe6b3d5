"""scripts/pack_images.py: square JPEG crops in pieces; bad items skipped, a used folder refused."""
import os
import subprocess
import sys

import cv2
import numpy as np

from conftest import REPO

SCRIPT = os.path.join(REPO, 'scripts', 'pack_images.py')


def pack(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_packs_square_crops_and_skips_an_unreadable_image(tmp_path):
    """A broken photo in the list was a traceback that lost the whole pack; now it is named,
    skipped, and the exit code is 1."""
    photos = tmp_path / 'photos'
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (('wide.png', (40, 70, 3)), ('tall.png', (90, 50, 3))):
        cv2.imwrite(str(photos / name), rng.integers(0, 256, shape, dtype=np.uint8))
    (photos / 'broken.png').write_bytes(b'not an image')
    run = pack(tmp_path / 'out', photos, '--size', 32)
    assert run.returncode == 1, run.stderr
    assert [line for line in run.stderr.splitlines() if 'broken.png' in line] == run.stderr.splitlines()
    assert '2 images in 1 pieces' in run.stdout and '1 unreadable images skipped' in run.stdout
    piece = tmp_path / 'out' / 'piece0'
    names = (piece / 'train.flist').read_text().split()
    assert names == ['00000.jpg', '00001.jpg']
    assert all(cv2.imread(str(piece / name)).shape == (32, 32, 3) for name in names)


def test_a_missing_list_and_a_used_folder_are_one_line_each(tmp_path):
    """A missing list was a traceback; an output folder holding files is refused, untouched."""
    run = pack(tmp_path / 'out', tmp_path / 'missing.flist')
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and 'missing.flist' in run.stderr
    used = tmp_path / 'used'
    used.mkdir()
    (used / 'mine.txt').write_text('mine')
    run = pack(used, tmp_path / 'missing.flist')
    assert run.returncode == 2 and 'exists and is not an empty folder' in run.stderr
    assert os.listdir(used) == ['mine.txt']
