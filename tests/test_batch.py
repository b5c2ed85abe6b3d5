"""Batch inpainting (inpaint/batch.py) and test.py's batch modes, on the tiny golden checkpoint.

Images are small crops of the golden inputs, several sizes including odd ones, with seeded box
masks, so the whole file runs in seconds. Batched results must equal `Inpainter.inpaint` run on
each image alone (`conftest.assert_batched_equals_single`: to float rounding, at most 1 level on
rare values; byte for byte for the whole network on TensorFlow).
"""
import importlib.util
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import (DAMAGED_KINDS, GOLDEN, GOLDEN_CHECKPOINT, assert_batched_equals_single,
                      damaged_checkpoint)
from inpaint import batch
from inpaint.imageio import InputError, read_image, read_mask, write_image, write_mask
from inpaint.inference import Inpainter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (height, width): odd sizes, repeats (so that same-size images batch together), one under 8 px.
SIZES = [(37, 53), (37, 53), (40, 48), (37, 53), (64, 64), (21, 35), (5, 7)]


def load_cli():
    """The repository's test.py (loaded by path: `import test` would find the stdlib package)."""
    spec = importlib.util.spec_from_file_location('inpaint_test_cli', os.path.join(ROOT, 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope='module')
def _golden_loaded_once(loaded_once):
    """The commands' `main` loads the golden checkpoint once per module (see `loaded_once`)."""


@pytest.fixture(scope='module')
def inpainter():
    return Inpainter.from_checkpoint(GOLDEN_CHECKPOINT)


@pytest.fixture(scope='module')
def cli():
    return load_cli()


def make_pair(index, size):
    """A crop of a golden input and a seeded box mask (bool) of `size`."""
    rng = np.random.default_rng(index)
    source = read_image(os.path.join(GOLDEN, ('rocket256', 'motorcycle184x264')[index % 2],
                                     'input.png'))
    height, width = size
    top = int(rng.integers(0, source.shape[0] - height))
    left = int(rng.integers(0, source.shape[1] - width))
    image = source[top:top + height, left:left + width].copy()
    mask = np.zeros(size, bool)
    y, x = int(rng.integers(0, height // 2 + 1)), int(rng.integers(0, width // 2 + 1))
    mask[y:y + max(2, height // 3), x:x + max(2, width // 3)] = True
    return image, mask


def write_pairs(folder, sizes, image_ext='.png'):
    """Writes images to folder/in and masks to folder/masks; returns [(image, mask)] paths."""
    paths = []
    for index, size in enumerate(sizes):
        image, mask = make_pair(index, size)
        image_path = os.path.join(folder, 'in', f'img{index}{image_ext}')
        mask_path = os.path.join(folder, 'masks', f'img{index}.png')
        write_image(image_path, image)
        write_mask(mask_path, mask)
        paths.append((image_path, mask_path))
    return paths


def alone(inpainter, image_path, mask_path, original=False):
    """The single-image result, as test.py --image computes it."""
    return inpainter.inpaint(read_image(image_path), read_mask(mask_path), original=original)


def file_bytes(path):
    with open(path, 'rb') as handle:
        return handle.read()


class Spy:
    """Wraps `inpaint_batch` to record the number of images of every network call."""

    def __init__(self, inpainter):
        self.inpainter, self.calls = inpainter, []
        self.edge_threshold = inpainter.edge_threshold

    def inpaint_batch(self, images, masks, **kwargs):
        self.calls.append(len(images))
        return self.inpainter.inpaint_batch(images, masks, **kwargs)


def test_batch_equals_single(tmp_path, inpainter):
    pairs = write_pairs(str(tmp_path), SIZES)
    jobs = [batch.Job(image, mask, str(tmp_path / 'out' / f'{i}.png'))
            for i, (image, mask) in enumerate(pairs)]
    spy = Spy(inpainter)
    summary = batch.run_batch(spy, jobs, batch_size=2, progress=False)
    assert (summary.written, summary.skipped_existing, summary.failed) == (len(jobs), 0, [])
    assert max(spy.calls) == 2 and sum(spy.calls) == len(jobs)  # batched, never above batch_size
    for job in jobs:
        assert_batched_equals_single(read_image(job.output), alone(inpainter, job.image, job.mask))


def test_each_image_keeps_its_own_mask(tmp_path, inpainter):
    image, _ = make_pair(0, (40, 56))
    masks = [np.zeros((40, 56), bool) for _ in range(2)]
    masks[0][4:20, 6:30] = True
    masks[1][22:36, 30:50] = True
    write_image(str(tmp_path / 'a.png'), image)
    write_image(str(tmp_path / 'b.png'), image)  # the same pixels: only the masks differ
    write_mask(str(tmp_path / 'ma.png'), masks[0])
    write_mask(str(tmp_path / 'mb.png'), masks[1])
    jobs = [batch.Job(str(tmp_path / 'a.png'), str(tmp_path / 'ma.png'), str(tmp_path / 'oa.png')),
            batch.Job(str(tmp_path / 'b.png'), str(tmp_path / 'mb.png'), str(tmp_path / 'ob.png'))]
    spy = Spy(inpainter)
    assert batch.run_batch(spy, jobs, batch_size=2, progress=False).written == 2
    assert spy.calls == [2]  # one network call for both
    results = [read_image(job.output) for job in jobs]
    for job, result in zip(jobs, results):
        assert_batched_equals_single(result, alone(inpainter, job.image, job.mask))
    assert not np.array_equal(results[0], results[1])


def test_original_mode_runs_each_image_alone_with_its_mask(tmp_path, inpainter):
    pairs = write_pairs(str(tmp_path), [(37, 53), (37, 53), (40, 48)])
    jobs = [batch.Job(image, mask, str(tmp_path / 'out' / f'{i}.png'))
            for i, (image, mask) in enumerate(pairs)]
    spy = Spy(inpainter)
    assert batch.run_batch(spy, jobs, original=True, batch_size=8, progress=False).written == 3
    assert spy.calls == [1, 1, 1]
    for job in jobs:
        expected = alone(inpainter, job.image, job.mask, original=True)
        assert expected.shape == (read_image(job.image).shape[0] // 8 * 8,
                                  read_image(job.image).shape[1] // 8 * 8, 3)
        np.testing.assert_array_equal(read_image(job.output), expected)


def test_jobs_from_flist_resolves_against_the_list_folder(tmp_path):
    lists = tmp_path / 'lists'
    lists.mkdir()
    flist = lists / 'jobs.txt'
    flist.write_text('# input mask output\n\n  ../in/a.png   ../m/a.png out/a.png  \n'
                     f'{tmp_path}/in/b.png\t../m/b.png\t/abs/out/b.png\n')
    jobs = batch.jobs_from_flist(str(flist))
    assert jobs == [
        batch.Job(os.path.join(str(lists), '../in/a.png'), os.path.join(str(lists), '../m/a.png'),
                  os.path.join(str(lists), 'out/a.png')),
        batch.Job(f'{tmp_path}/in/b.png', os.path.join(str(lists), '../m/b.png'), '/abs/out/b.png')]


@pytest.mark.parametrize('content, line', [('a.png m.png\n', 1),
                                           ('# ok\na.png m.png o.png\na b c d e\n', 3)])
def test_jobs_from_flist_malformed_line_names_file_and_line(tmp_path, content, line):
    flist = tmp_path / 'jobs.txt'
    flist.write_text(content)
    with pytest.raises(InputError, match=rf'^{flist}:{line}: expected "input mask output \[edge\]"'):
        batch.jobs_from_flist(str(flist))


def test_cli_flist_with_relative_paths(tmp_path, monkeypatch, capsys, inpainter, cli):
    pairs = write_pairs(str(tmp_path / 'data'), [(37, 53), (40, 48), (37, 53)])
    (tmp_path / 'data' / 'jobs.txt').write_text(
        '# written from another folder: paths are relative to this list\n' + ''.join(
            f'in/{os.path.basename(image)} masks/{os.path.basename(mask)} out/r{i}.png\n'
            for i, (image, mask) in enumerate(pairs)))
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code = cli.main(['--flist', str(tmp_path / 'data' / 'jobs.txt'),
                     '--checkpoint_dir', GOLDEN_CHECKPOINT, '--batch_size', '2'])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == ['3 written, 0 skipped existing, 0 failed']
    for i, (image, mask) in enumerate(pairs):
        np.testing.assert_array_equal(read_image(str(tmp_path / 'data' / 'out' / f'r{i}.png')),
                                      alone(inpainter, image, mask))
    assert os.listdir(elsewhere) == []


def test_cli_folders_masks_by_stem(tmp_path, capsys, inpainter, cli):
    pairs = write_pairs(str(tmp_path), [(37, 53), (21, 35), (40, 48)])
    # Any image extension on either side: img0.bmp <- img0.png, img1.png <- img1.bmp.
    image0 = str(tmp_path / 'in' / 'img0.bmp')
    os.replace(pairs[0][0], image0)
    mask1 = str(tmp_path / 'masks' / 'img1.bmp')
    os.replace(pairs[1][1], mask1)
    (tmp_path / 'in' / 'notes.txt').write_text('not an image')
    code = cli.main(['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
                     '--output_dir', str(tmp_path / 'out'), '--checkpoint_dir', GOLDEN_CHECKPOINT])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == '3 written, 0 skipped existing, 0 failed'
    assert sorted(os.listdir(tmp_path / 'out')) == ['img0.png', 'img1.png', 'img2.png']
    for name, image, mask in [('img0', image0, pairs[0][1]), ('img1', pairs[1][0], mask1),
                              ('img2', *pairs[2])]:
        np.testing.assert_array_equal(read_image(str(tmp_path / 'out' / f'{name}.png')),
                                      alone(inpainter, image, mask))


def test_cli_folders_one_shared_mask(tmp_path, capsys, inpainter, cli):
    pairs = write_pairs(str(tmp_path), [(37, 53)] * 3)
    shared = pairs[1][1]
    code = cli.main(['--input_dir', str(tmp_path / 'in'), '--mask', shared,
                     '--output_dir', str(tmp_path / 'out'), '--checkpoint_dir', GOLDEN_CHECKPOINT])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == '3 written, 0 skipped existing, 0 failed'
    for i, (image, _) in enumerate(pairs):
        np.testing.assert_array_equal(read_image(str(tmp_path / 'out' / f'img{i}.png')),
                                      alone(inpainter, image, shared))


def test_folders_image_without_mask_is_a_bad_item(tmp_path, inpainter):
    pairs = write_pairs(str(tmp_path), [(37, 53)] * 3)
    os.remove(pairs[1][1])
    jobs = batch.jobs_from_folders(str(tmp_path / 'in'), str(tmp_path / 'masks'),
                                   str(tmp_path / 'out'))
    assert [job.error is None for job in jobs] == [True, False, True]
    summary = batch.run_batch(inpainter, jobs, progress=False)
    assert summary.written == 2 and [job for job, _ in summary.failed] == [jobs[1]]
    assert summary.failed[0][1].startswith(f'{pairs[1][0]}: no mask named img1.png')
    assert not os.path.exists(tmp_path / 'out' / 'img1.png')


def test_folders_two_masks_for_one_image_is_a_bad_item(tmp_path):
    pairs = write_pairs(str(tmp_path), [(37, 53)])
    write_mask(str(tmp_path / 'masks' / 'img0.bmp'), read_mask(pairs[0][1]))
    (job,) = batch.jobs_from_folders(str(tmp_path / 'in'), str(tmp_path / 'masks'),
                                     str(tmp_path / 'out'))
    assert job.mask is None
    assert job.error == f'{pairs[0][0]}: several masks in {tmp_path / "masks"} (img0.bmp, img0.png); keep one'


def test_cli_existing_outputs_skipped_unless_overwrite(tmp_path, capsys, inpainter, cli):
    write_pairs(str(tmp_path), [(37, 53), (40, 48), (37, 53)])
    argv = ['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
            '--output_dir', str(tmp_path / 'out'), '--checkpoint_dir', GOLDEN_CHECKPOINT]
    assert cli.main(argv) == 0
    outputs = [str(tmp_path / 'out' / f'img{i}.png') for i in range(3)]
    first = [file_bytes(path) for path in outputs]
    stale = np.full((40, 48, 3), 7, np.uint8)  # an "old" result (img1 is 48x40): kept on resume
    write_image(outputs[1], stale)
    stale_bytes = file_bytes(outputs[1])
    capsys.readouterr()

    assert cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines() == ['0 written, 3 skipped existing, 0 failed']
    assert [file_bytes(path) for path in outputs] == [first[0], stale_bytes, first[2]]

    assert cli.main(argv + ['--overwrite']) == 0
    assert capsys.readouterr().out.splitlines() == ['3 written, 0 skipped existing, 0 failed']
    assert [file_bytes(path) for path in outputs] == first
    assert not [name for name in os.listdir(tmp_path / 'out') if name.endswith('.partial')]


def test_resume_redoes_empty_outputs_and_keeps_every_other_file(tmp_path, capsys, inpainter, cli):
    """An existing output counts as finished only if it decodes and has the input's size. Of the
    rest, only an empty file is redone without --overwrite; a non-image is never replaced (before,
    junk and wrong-size files were replaced without asking)."""
    write_pairs(str(tmp_path), [(37, 53), (40, 48), (37, 53), (21, 35)])
    argv = ['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
            '--output_dir', str(tmp_path / 'out'), '--checkpoint_dir', GOLDEN_CHECKPOINT]
    assert cli.main(argv) == 0
    outputs = [str(tmp_path / 'out' / f'img{i}.png') for i in range(4)]
    finished = [file_bytes(path) for path in outputs]
    open(outputs[0], 'wb').close()  # 0 bytes
    with open(outputs[1], 'wb') as handle:
        handle.write(b'\x89PNG\r\n\x1a\n junk')
    write_image(outputs[2], np.full((36, 53, 3), 7, np.uint8))  # one row short
    good = np.full((21, 35, 3), 9, np.uint8)  # img3 is 35x21: a finished output, kept
    write_image(outputs[3], good)
    kept = [file_bytes(path) for path in outputs[1:]]
    capsys.readouterr()

    assert cli.main(argv) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == '1 written, 1 skipped existing, 2 failed'
    assert [file_bytes(path) for path in outputs] == finished[:1] + kept
    assert out[0] == f'{outputs[1]}: exists and is not an image; it is never replaced: move it away or choose another output'
    assert out[1] == (f'{outputs[2]}: existing output is 53x36, not the expected 53x37 (an older or '
                      f'foreign file); it is kept: pass --overwrite to replace it')

    assert cli.main(argv + ['--overwrite']) == 1  # the image is replaced, the junk still kept
    out = capsys.readouterr().out.splitlines()
    assert out == [f'{outputs[1]}: exists and is not an image; it is never replaced: move it away or choose another output',
                   '3 written, 0 skipped existing, 1 failed']
    assert [file_bytes(path) for path in outputs] == [finished[0], kept[0], finished[2], finished[3]]


def test_resume_in_original_mode_expects_the_cropped_size(tmp_path, inpainter):
    pairs = write_pairs(str(tmp_path), [(37, 53), (37, 53)])
    jobs = [batch.Job(*pair, str(tmp_path / f'o{i}.png')) for i, pair in enumerate(pairs)]
    write_image(jobs[0].output, np.zeros((32, 48, 3), np.uint8))  # 53x37 cropped to 48x32
    write_image(jobs[1].output, np.zeros((37, 53, 3), np.uint8))  # not an original-mode result
    summary = batch.run_batch(inpainter, jobs, original=True, progress=False)
    assert (summary.written, summary.skipped_existing, len(summary.failed)) == (0, 1, 1)
    assert 'not the expected 48x32' in summary.failed[0][1]
    summary = batch.run_batch(inpainter, jobs, original=True, overwrite=True, progress=False)
    np.testing.assert_array_equal(read_image(jobs[1].output),
                                  alone(inpainter, *pairs[1], original=True))


def test_cli_interrupt_stops_after_the_current_image(tmp_path, capsys, inpainter, cli):
    """Ctrl-C in batch mode: outputs written one by one, the stop comes after the current image, a
    one-line summary, exit 130, no traceback; a rerun finishes the rest. (SIGTERM goes through the
    same handler, `inpaint.interrupt`: tests/test_distributed.py stops train.py with it.)"""
    # Eight padded sizes: each image compiles the network anew, so the run takes seconds.
    sizes = [(8 * (i + 2) + 1, 8 * (i + 3) + 3) for i in range(8)]
    pairs = write_pairs(str(tmp_path), sizes)
    out = tmp_path / 'out'
    argv = ['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
            '--output_dir', str(out), '--checkpoint_dir', GOLDEN_CHECKPOINT]
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, 'test.py'), *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 300
    while not (out.is_dir() and any(name.endswith('.png') for name in os.listdir(out))):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    written = sorted(name for name in os.listdir(out))
    assert process.returncode == 130, stderr
    assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr
    not_started = len(sizes) - len(written)
    assert 1 <= len(written) <= 2 and not_started >= 6  # the first image, and the one running
    assert stdout.splitlines() == [
        f'interrupted: {len(written)} written, 0 skipped existing, 0 failed, {not_started} not '
        f'started; run the same command to resume']
    assert written == [f'img{i}.png' for i in range(len(written))]  # in order, no .partial
    for name, (image, mask) in zip(written, pairs):
        np.testing.assert_array_equal(read_image(str(out / name)), alone(inpainter, image, mask))

    assert cli.main(argv) == 0  # the rerun resumes
    assert capsys.readouterr().out.splitlines() == [
        f'{not_started} written, {len(written)} skipped existing, 0 failed']
    assert len(os.listdir(out)) == len(sizes)


def test_cli_bad_items_reported_and_skipped(tmp_path, capsys, caplog, inpainter, cli):
    pairs = write_pairs(str(tmp_path), [(37, 53), (40, 48), (37, 53), (21, 35), (40, 48)])
    corrupt, empty = str(tmp_path / 'in' / 'corrupt.png'), str(tmp_path / 'in' / 'empty.png')
    with open(corrupt, 'wb') as handle:
        handle.write(b'\x89PNG\r\n\x1a\n not really a png')
    open(empty, 'wb').close()
    missing_mask = str(tmp_path / 'masks' / 'missing.png')
    lines = [f'{pairs[0][0]} {pairs[0][1]} out/good0.png',
             f'{corrupt} {pairs[1][1]} out/corrupt.png',
             f'{pairs[2][0]} {missing_mask} out/missing.png',
             f'{pairs[3][0]} {pairs[4][1]} out/mismatch.png',  # 35x21 image, 48x40 mask
             f'{empty} {pairs[1][1]} out/empty.png',
             f'{pairs[4][0]} {pairs[4][1]} out/good4.png']
    (tmp_path / 'jobs.txt').write_text('\n'.join(lines) + '\n')
    before = {path: file_bytes(path) for pair in pairs for path in pair}
    code = cli.main(['--flist', str(tmp_path / 'jobs.txt'), '--checkpoint_dir', GOLDEN_CHECKPOINT])
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == '2 written, 0 skipped existing, 4 failed'
    assert len(out) == 5
    assert out[0].startswith(f'{corrupt}: cannot decode')
    assert out[1].startswith(f'{missing_mask}: file not found')
    assert out[2].startswith(f'{pairs[4][1]}: mask is 48x40 but the image {pairs[3][0]} is 35x21')
    assert out[3].startswith(f'{empty}: file is empty')
    logged = [record.getMessage() for record in caplog.records]
    assert not [line for line in out[:4] if any(line in message for message in logged)], logged  # once
    assert sorted(os.listdir(tmp_path / 'out')) == ['good0.png', 'good4.png']
    np.testing.assert_array_equal(read_image(str(tmp_path / 'out' / 'good4.png')),
                                  alone(inpainter, *pairs[4]))
    assert {path: file_bytes(path) for path in before} == before


def test_output_equal_to_an_input_is_refused(tmp_path, capsys, inpainter, cli):
    pairs = write_pairs(str(tmp_path), [(37, 53), (40, 48), (21, 35)])
    before = {path: file_bytes(path) for pair in pairs for path in pair}
    (tmp_path / 'jobs.txt').write_text(
        f'in/img0.png masks/img0.png in/img0.png\n'       # its own image
        f'in/img1.png masks/img1.png masks/img1.png\n'    # its own mask
        f'in/img2.png masks/img2.png ./in/../masks/img0.png\n')  # another job's mask
    code = cli.main(['--flist', str(tmp_path / 'jobs.txt'), '--checkpoint_dir', GOLDEN_CHECKPOINT,
                     '--overwrite'])
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == '0 written, 0 skipped existing, 3 failed'
    assert all('the output would overwrite an input' in line for line in out[:3])
    assert out[0].startswith(str(tmp_path / 'in' / 'img0.png') + ': ')
    assert {path: file_bytes(path) for path in before} == before


def test_folder_output_dir_equal_to_input_dir_is_refused(tmp_path, inpainter):
    pairs = write_pairs(str(tmp_path), [(37, 53)])
    before = file_bytes(pairs[0][0])
    jobs = batch.jobs_from_folders(str(tmp_path / 'in'), str(tmp_path / 'masks'),
                                   str(tmp_path / 'in'))
    summary = batch.run_batch(inpainter, jobs, overwrite=True, progress=False)
    assert summary.written == 0 and len(summary.failed) == 1
    assert file_bytes(pairs[0][0]) == before


def test_duplicate_outputs_and_bad_extension_are_bad_items(tmp_path, inpainter):
    pairs = write_pairs(str(tmp_path), [(37, 53), (37, 53), (37, 53)])
    jobs = [batch.Job(*pairs[0], str(tmp_path / 'same.png')),
            batch.Job(*pairs[1], str(tmp_path / 'same.png')),
            batch.Job(*pairs[2], str(tmp_path / 'out.unknown'))]
    summary = batch.run_batch(inpainter, jobs, progress=False)
    assert summary.written == 1
    assert [message.split(': ', 1)[1].split(';')[0] for _, message in summary.failed] == [
        f'also the output of {pairs[0][0]}', 'cannot write this image type']
    np.testing.assert_array_equal(read_image(str(tmp_path / 'same.png')),
                                  alone(inpainter, *pairs[0]))


def test_original_mode_tiny_image_is_a_bad_item(tmp_path, inpainter):
    pairs = write_pairs(str(tmp_path), [(5, 7), (37, 53)])
    jobs = [batch.Job(*pair, str(tmp_path / f'o{i}.png')) for i, pair in enumerate(pairs)]
    summary = batch.run_batch(inpainter, jobs, original=True, progress=False)
    assert summary.written == 1
    assert summary.failed[0][1].startswith(f'{pairs[0][0]}: image of 7x5 is smaller than 8x8')


@pytest.mark.parametrize('flag, name', [('--flist', 'missing.txt'), ('--input_dir', 'no_dir')])
def test_cli_missing_list_or_folder_exits_2(tmp_path, capsys, cli, flag, name):
    path = str(tmp_path / name)
    argv = [flag, path, '--checkpoint_dir', GOLDEN_CHECKPOINT]
    if flag == '--input_dir':
        argv += ['--mask', str(tmp_path / 'm.png'), '--output_dir', str(tmp_path / 'out')]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith(f'test.py: error: {path}: ')
    assert 'not found' in captured.err


def test_cli_bad_checkpoint_exits_2(tmp_path, capsys, cli):
    pairs = write_pairs(str(tmp_path), [(37, 53)])
    (tmp_path / 'jobs.txt').write_text(f'{pairs[0][0]} {pairs[0][1]} out.png\n')
    code = cli.main(['--flist', str(tmp_path / 'jobs.txt'),
                     '--checkpoint_dir', str(tmp_path / 'nowhere')])
    assert code == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert not os.path.exists(tmp_path / 'out.png')


def test_cli_output_dir_under_a_file_exits_2_before_the_model(tmp_path, capsys, cli):
    write_pairs(str(tmp_path), [(37, 53)])
    (tmp_path / 'file.txt').write_text('a file')
    output_dir = str(tmp_path / 'file.txt' / 'out')
    code = cli.main(['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
                     '--output_dir', output_dir, '--checkpoint_dir', str(tmp_path / 'nowhere')])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f'test.py: error: {output_dir}: '), err


def test_unwritable_outputs_are_bad_items_with_one_line(tmp_path, inpainter):
    pairs = write_pairs(str(tmp_path), [(37, 53), (37, 53), (37, 53)])
    (tmp_path / 'file.txt').write_text('a file')
    bad = [str(tmp_path / 'file.txt' / 'o.png'), str(tmp_path / 'slash') + os.sep]
    jobs = [batch.Job(*pairs[0], bad[0]), batch.Job(*pairs[1], bad[1]),
            batch.Job(*pairs[2], str(tmp_path / 'ok.png'))]
    summary = batch.run_batch(inpainter, jobs, progress=False)
    assert summary.written == 1
    assert [message.split(': ', 1)[0] for _, message in summary.failed] == bad
    assert not os.path.exists(bad[1])


@pytest.mark.parametrize('kind', sorted(DAMAGED_KINDS))
@pytest.mark.parametrize('mode', ['--flist', '--input_dir'])
def test_cli_damaged_checkpoint_exits_2_with_one_line(tmp_path, capsys, cli, kind, mode):
    pairs = write_pairs(str(tmp_path), [(37, 53)])
    ckpt = damaged_checkpoint(str(tmp_path), kind)
    (tmp_path / 'jobs.txt').write_text(f'{pairs[0][0]} {pairs[0][1]} out/o.png\n')
    argv = (['--flist', str(tmp_path / 'jobs.txt')] if mode == '--flist' else
            ['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
             '--output_dir', str(tmp_path / 'out')])
    code = cli.main(argv + ['--checkpoint_dir', ckpt])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f'test.py: error: {ckpt}'), err
    assert 'download' in err or 'export' in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('argv', [
    [],                                                          # no mode
    ['--image', 'a.png', '--mask', 'm.png', '--flist', 'l.txt'],  # two modes
    ['--flist', 'l.txt', '--input_dir', 'in'],
    ['--image', 'a.png'],                                        # single mode without a mask
    ['--image', 'a.png', '--mask', 'm.png', '--output_dir', 'o'],  # batch flag in single mode
    ['--flist', 'l.txt', '--output', 'o.png'],
    ['--flist', 'l.txt', '--mask', 'm.png'],
    ['--input_dir', 'in', '--output_dir', 'o'],                  # no mask
    ['--input_dir', 'in', '--mask', 'm.png', '--mask_dir', 'm', '--output_dir', 'o'],
    ['--input_dir', 'in', '--mask', 'm.png'],                    # no output_dir
    ['--flist', 'l.txt', '--batch_size', '0'],
    ['--flist', 'l.txt', '--edge', 'e.png'],                     # the list names the edges
    ['--image', 'i.png', '--mask', 'm.png', '--edge_dir', 'e'],  # --edge_dir is for folders
])
def test_cli_usage_errors_exit_2(capsys, cli, argv):
    assert cli.main(argv + ['--checkpoint_dir', GOLDEN_CHECKPOINT]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith('test.py: error: '), err


def test_cli_single_image_mode_unchanged(tmp_path, capsys, inpainter, cli):
    pairs = write_pairs(str(tmp_path), [(37, 53)])
    output = str(tmp_path / 'single.png')
    assert cli.main(['--image', pairs[0][0], '--mask', pairs[0][1], '--output', output,
                     '--checkpoint_dir', GOLDEN_CHECKPOINT]) == 0
    assert capsys.readouterr().out.startswith(f'Inpainted {pairs[0][0]} -> {output} (53x37)')
    np.testing.assert_array_equal(read_image(output), alone(inpainter, *pairs[0]))


def test_cli_folders_masks_by_the_one_rule(tmp_path, capsys, inpainter, cli):
    """A 0/1 mask and a red-on-black mask are holes where painted; an empty mask is reported."""
    pairs = write_pairs(str(tmp_path), [(37, 53), (37, 53), (37, 53)])
    holes = [read_mask(mask) for _, mask in pairs]
    import cv2
    cv2.imwrite(pairs[0][1], holes[0].astype(np.uint8))                               # 0/1
    cv2.imwrite(pairs[1][1], np.stack([0 * holes[1], 0 * holes[1], 255 * holes[1]], 2)
                .astype(np.uint8))                                                    # red (BGR)
    cv2.imwrite(pairs[2][1], np.zeros(holes[2].shape, np.uint8))                      # no hole
    code = cli.main(['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
                     '--output_dir', str(tmp_path / 'out'), '--checkpoint_dir', GOLDEN_CHECKPOINT])
    assert code == 0
    for index in (0, 1):
        np.testing.assert_array_equal(read_image(str(tmp_path / 'out' / f'img{index}.png')),
                                      inpainter.inpaint(read_image(pairs[index][0]), holes[index]))
    np.testing.assert_array_equal(read_image(str(tmp_path / 'out' / 'img2.png')),
                                  read_image(pairs[2][0]))


def test_summary_lines():
    job = batch.Job('a.png', 'm.png', 'o.png')
    summary = batch.BatchSummary(written=3, skipped_existing=2,
                                 failed=[(job, 'a.png: cannot decode the image')])
    assert summary.lines() == ['a.png: cannot decode the image',
                               '3 written, 2 skipped existing, 1 failed']


def test_batch_keeps_alpha_and_16_bits_and_warns_on_useless_masks(tmp_path, caplog, inpainter, cli):
    """--input_dir: an RGBA file comes back RGBA (alpha unchanged), a 16-bit one 16-bit with its
    known pixels exact; a mask with a hole everywhere and one with none each warn once."""
    pairs = write_pairs(str(tmp_path), [(37, 53), (40, 48), (37, 53), (40, 48)])
    rgba = np.dstack([read_image(pairs[0][0]), np.full((37, 53), 9, np.uint8)])
    write_image(pairs[0][0], rgba)
    deep = read_image(pairs[1][0]).astype(np.uint16) * 257
    write_image(pairs[1][0], deep)
    write_mask(pairs[2][1], np.ones((37, 53), bool))
    write_mask(pairs[3][1], np.zeros((40, 48), bool))
    caplog.clear()
    assert cli.main(['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
                     '--output_dir', str(tmp_path / 'out'), '--checkpoint_dir', GOLDEN_CHECKPOINT]) == 0
    import cv2
    out = [cv2.imread(str(tmp_path / 'out' / f'img{i}.png'), cv2.IMREAD_UNCHANGED) for i in range(2)]
    assert out[0].shape == (37, 53, 4) and np.all(out[0][..., 3] == 9)
    mask = read_mask(pairs[1][1])
    assert out[1].dtype == np.uint16 and np.array_equal(out[1][~mask][:, ::-1], deep[~mask])
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert [w.split(': ', 1)[0] for w in warnings] == [pairs[2][1], pairs[3][1]], warnings
    assert 'a hole everywhere' in warnings[0] and 'has no hole' in warnings[1]


# --- edge images (guided models) ------------------------------------------------------------

@pytest.fixture(scope='module')
def guided(guided_models):
    return Inpainter(guided_models[0])


def write_guided(folder, count):
    """Crops of the guided golden case (107x137, around its hole, shifted) as folder/in/g<i>.png
    with masks in folder/masks and edges in folder/edges; returns [(image, mask, edge)] paths."""
    from conftest import GUIDED_GOLDEN
    case = os.path.join(GUIDED_GOLDEN, 'motorcycle184x264')
    image, mask = read_image(os.path.join(case, 'input.png')), read_mask(os.path.join(case, 'mask.png'))
    edge = read_image(os.path.join(case, 'edge.png'))
    paths = []
    for i in range(count):
        crop = (slice(20 + 4 * i, 127 + 4 * i), slice(60 + 8 * i, 197 + 8 * i))
        names = [os.path.join(folder, sub, f'g{i}.png') for sub in ('in', 'masks', 'edges')]
        write_image(names[0], image[crop])
        write_mask(names[1], mask[crop])
        write_image(names[2], edge[crop])
        paths.append(tuple(names))
    return paths


def guided_alone(inpainter, image, mask, edge=None):
    from inpaint.imageio import read_edge
    return inpainter.inpaint(read_image(image), read_mask(mask), None if edge is None else read_edge(edge))


def test_cli_flist_edges_from_the_fourth_column_or_beside_the_input(tmp_path, caplog, capsys,
                                                                   guided, cli):
    """A fourth column wins over `<stem>_edge.<ext>` beside the input; without either, no lines
    (one warning counts them); batched with other edges, each result is its own."""
    from conftest import GUIDED_CHECKPOINT
    (a, am, ae), (b, bm, be), (c, cm, _) = write_guided(str(tmp_path), 3)
    write_image(str(tmp_path / 'in' / 'g0_edge.png'), np.zeros((107, 137, 3), np.uint8))  # loses
    os.replace(be, str(tmp_path / 'in' / 'g1_edge.jpg'))  # the original's convention, a JPEG
    be = str(tmp_path / 'in' / 'g1_edge.jpg')
    flist = tmp_path / 'jobs.txt'
    flist.write_text(f'{a} {am} out/a.png {ae}\n{b} {bm} out/b.png\n{c} {cm} out/c.png\n')
    caplog.clear()
    assert cli.main(['--flist', str(flist), '--checkpoint_dir', GUIDED_CHECKPOINT, '--batch_size', '3']) == 0
    assert capsys.readouterr().out.splitlines() == ['3 written, 0 skipped existing, 0 failed']
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert len(warnings) == 1 and warnings[0].startswith(f'{flist}: 1 of 3 images have no edge image')
    out = {name: read_image(str(tmp_path / 'out' / f'{name}.png')) for name in 'abc'}
    for name, want in (('a', guided_alone(guided, a, am, ae)), ('b', guided_alone(guided, b, bm, be)),
                       ('c', guided_alone(guided, c, cm))):
        assert_batched_equals_single(out[name], want)
    assert not np.array_equal(out['a'], guided_alone(guided, a, am))  # the column's lines were used


def test_cli_folders_edges_by_stem_a_missing_one_is_a_bad_item(tmp_path, capsys, guided, cli):
    from conftest import GUIDED_CHECKPOINT
    pairs = write_guided(str(tmp_path), 2)
    os.replace(pairs[0][2], str(tmp_path / 'edges' / 'g0.jpg'))  # any image extension
    os.remove(pairs[1][2])
    code = cli.main(['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
                     '--edge_dir', str(tmp_path / 'edges'), '--output_dir', str(tmp_path / 'out'),
                     '--checkpoint_dir', GUIDED_CHECKPOINT])
    assert code == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f'{pairs[1][0]}: no edge image named g1.png (or another image extension) in '
                     f'{tmp_path / "edges"}; add one or move the image out',
                     '1 written, 0 skipped existing, 1 failed']
    np.testing.assert_array_equal(read_image(str(tmp_path / 'out' / 'g0.png')), guided_alone(
        guided, pairs[0][0], pairs[0][1], str(tmp_path / 'edges' / 'g0.jpg')))


def test_cli_edges_for_a_model_that_is_not_guided_exit_2_before_any_image(tmp_path, capsys, cli):
    """An --edge_dir or a fourth column is refused; `<stem>_edge` files beside the inputs are the
    guided mode's convention only, and ignored."""
    (a, am, ae), = write_guided(str(tmp_path), 1)
    flist = tmp_path / 'jobs.txt'
    for argv, named in (
            (['--input_dir', str(tmp_path / 'in'), '--mask_dir', str(tmp_path / 'masks'),
              '--edge_dir', str(tmp_path / 'edges'), '--output_dir', str(tmp_path / 'out')],
             f'--edge_dir {tmp_path / "edges"}: '),
            (['--flist', str(flist)], f'{flist}: 1 line(s) with a fourth column (an edge image): ')):
        flist.write_text(f'{a} {am} out/a.png {ae}\n')
        assert cli.main(argv + ['--checkpoint_dir', GOLDEN_CHECKPOINT]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f'test.py: error: {named}'), err
        assert 'not guided' in err and not os.path.exists(tmp_path / 'out')
    os.replace(ae, str(tmp_path / 'in' / 'g0_edge.png'))
    flist.write_text(f'{a} {am} out/a.png\n')
    assert cli.main(['--flist', str(flist), '--checkpoint_dir', GOLDEN_CHECKPOINT]) == 0
