"""scripts/make_edges.py: Canny edge images beside training images, never overwriting others'."""
import os
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO
from inpaint import data
from inpaint.imageio import read_edge

sys.path.insert(0, os.path.join(REPO, 'scripts'))
import make_edges  # noqa: E402


def _picture(seed, shape=(48, 64)):
    """Blocks of grey levels: clear edges for Canny."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (shape[0] // 16, shape[1] // 16, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((16, 16, 1), np.uint8))


def test_writes_marked_edges_skips_bad_images_and_keeps_others_files(tmp_path, capsys):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f'{i}.png'), _picture(i))
    (tmp_path / 'bad.png').write_bytes(b'not an image')
    foreign = tmp_path / '2_edge.jpg'  # someone's own edges (e.g. HED's): never replaced
    cv2.imwrite(str(foreign), np.full((48, 64), 255, np.uint8))
    foreign_bytes = foreign.read_bytes()

    assert make_edges.main([str(tmp_path)]) == 1  # the bad image failed, the others are done
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(str(tmp_path / 'bad.png')) and 'cannot decode' in out[0]
    assert out[1] == ('2 edge images written, 1 existing kept (not made by this script, or no '
                      '--overwrite), 1 failed, 1 edge images among the inputs left out')
    for i in range(2):
        path = str(tmp_path / f'{i}_edge.jpg')
        assert make_edges.made_here(path)
        expected = make_edges.canny_edges(cv2.imread(str(tmp_path / f'{i}.png')))
        assert 0 < (expected > 0).mean() < 0.5
        np.testing.assert_array_equal(read_edge(path, original=True), expected > 0)  # JPEG-exact lines
    assert foreign.read_bytes() == foreign_bytes

    # A rerun keeps everything; --overwrite replaces this script's files only (here with other
    # thresholds, given as flags).
    mine = (tmp_path / '0_edge.jpg').read_bytes()
    assert make_edges.main([str(tmp_path)]) == 1
    assert (tmp_path / '0_edge.jpg').read_bytes() == mine
    assert make_edges.main([str(tmp_path), '--overwrite', '--sigma', '0', '--low', '500',
                            '--high', '1000']) == 1
    assert 'written' in capsys.readouterr().out
    assert not read_edge(str(tmp_path / '0_edge.jpg'), original=True).any()  # no gradient that high
    assert foreign.read_bytes() == foreign_bytes

    # The pipeline reads them beside their images.
    paths = [str(tmp_path / f'{i}.png') for i in range(3)]
    with data.make_dataset(paths, (32, 32), True, 3, seed=0, edges=True) as dataset:
        images, edges = next(dataset)
    assert edges.shape == images.shape == (3, 32, 32, 3)


def test_bad_flags_and_sources_exit_2(tmp_path, capsys):
    for flags, problem in ((['--low', '100', '--high', '50'], '--low <= --high'),
                           (['--quality', '50'], '--quality must be in 90..100')):
        with pytest.raises(SystemExit) as stop:
            make_edges.main([str(tmp_path), *flags])
        assert stop.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith('scripts/make_edges.py: error:') and problem in last
    assert make_edges.main([str(tmp_path / 'nowhere')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'nowhere: not found' in err
