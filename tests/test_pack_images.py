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


def test_webp_pieces_follow_the_size_list_and_the_cost_is_reported(tmp_path):
    """The GPU trip packs WebP into pieces of different budgets (`--piece_mb A,B`: the first piece
    travels with the wheels); each piece stays within its budget and the PSNR cost is printed."""
    photos = tmp_path / 'photos'
    photos.mkdir()
    rng = np.random.default_rng(1)
    for index in range(6):
        cv2.imwrite(str(photos / f'{index}.png'), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    run = pack(tmp_path / 'out', photos, '--size', 32, '--format', 'webp', '--quality', 80,
               '--piece_mb', '0.004,0.008')
    assert run.returncode == 0, run.stderr
    pieces = sorted(os.listdir(tmp_path / 'out'))
    sizes = [sum(os.path.getsize(tmp_path / 'out' / piece / name)
                 for name in (tmp_path / 'out' / piece / 'train.flist').read_text().split())
             for piece in pieces]
    assert len(pieces) >= 2 and sizes[0] <= 4000 and max(sizes[1:]) <= 8000
    names = [name for piece in pieces for name in (tmp_path / 'out' / piece / 'train.flist').read_text().split()]
    assert len(names) == 6 and all(name.endswith('.webp') for name in names)
    image = cv2.imread(str(tmp_path / 'out' / 'piece0' / names[0]))
    assert image.shape == (32, 32, 3)
    assert 'webp quality 80' in run.stdout and 'PSNR against the crops: mean' in run.stdout


def test_a_bad_piece_size_is_a_usage_error(tmp_path):
    run = pack(tmp_path / 'out', tmp_path, '--piece_mb', '10,-1')
    assert run.returncode == 2 and 'piece_mb' in run.stderr and not os.path.exists(tmp_path / 'out')
