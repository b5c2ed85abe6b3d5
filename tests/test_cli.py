"""test.py (single image): golden output through the command line, and bad input handling."""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import DAMAGED_KINDS, GOLDEN_CHECKPOINT, damaged_checkpoint, golden_case

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import test as cli  # noqa: E402  (the top-level test.py)


@pytest.fixture(autouse=True, scope='module')
def _golden_loaded_once(loaded_once):
    """The commands' `main` loads the golden checkpoint once per module (see `loaded_once`)."""


def test_command_line_reproduces_golden_output(tmp_path, capsys):
    """In this process (test.py as a process: tests/test_commands.py)."""
    case = golden_case('rocket256')
    out = tmp_path / 'out.png'
    assert cli.main(['--image', case['input'], '--mask', case['mask'], '--output', str(out),
                     '--checkpoint_dir', GOLDEN_CHECKPOINT, '--original']) == 0
    assert 'out.png' in capsys.readouterr().out
    got, want = cv2.imread(str(out)), cv2.imread(case['output'])
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= 1 and np.all(diff == 0, axis=-1).mean() >= 0.999


def test_default_mode_writes_same_size_with_known_pixels_kept(tmp_path):
    case = golden_case('motorcycle184x264')
    image = cv2.imread(case['input'])[:181, :250]
    mask = cv2.imread(case['mask'])[:181, :250]
    cv2.imwrite(str(tmp_path / 'in.png'), image)
    cv2.imwrite(str(tmp_path / 'mask.png'), mask)
    assert cli.main(['--image', str(tmp_path / 'in.png'), '--mask', str(tmp_path / 'mask.png'),
                     '--output', str(tmp_path / 'out.png'), '--checkpoint_dir', GOLDEN_CHECKPOINT]) == 0
    out = cv2.imread(str(tmp_path / 'out.png'))
    assert out.shape == image.shape
    known = mask[..., 0] <= 127
    assert np.array_equal(out[known], image[known])


def _bad(tmp_path, kind):
    case = golden_case('rocket256')
    image, mask, ckpt = case['input'], case['mask'], GOLDEN_CHECKPOINT
    if kind == 'missing_image':
        image = str(tmp_path / 'nope.png')
    elif kind == 'unreadable_image':
        image = str(tmp_path / 'garbage.png')
        open(image, 'wb').write(b'not a png at all')
    elif kind == 'empty_image':
        image = str(tmp_path / 'empty.png')
        open(image, 'wb').close()
    elif kind == 'mask_size':
        mask = str(tmp_path / 'small_mask.png')
        cv2.imwrite(mask, np.zeros((10, 10), np.uint8))
    elif kind == 'empty_checkpoint':
        ckpt = str(tmp_path / 'empty_ckpt')
        os.makedirs(ckpt)
    elif kind == 'mismatched_checkpoint':
        from test_checkpoint import random_release
        ckpt = str(tmp_path / 'bad_ckpt')
        random_release(ckpt, cnum=8, d_cnum=8, reshape='inpaint_net/conv5/kernel')
    elif kind in DAMAGED_KINDS:
        ckpt = damaged_checkpoint(str(tmp_path), kind)
    return image, mask, ckpt


@pytest.mark.parametrize('kind,named', [
    ('missing_image', 'nope.png'), ('unreadable_image', 'garbage.png'), ('empty_image', 'empty.png'),
    ('mask_size', 'small_mask.png'), ('empty_checkpoint', 'empty_ckpt'),
    ('mismatched_checkpoint', 'inpaint_net/conv5/kernel'),
    ('truncated_data', 'snap-0'), ('flipped_data', 'snap-0'), ('binary_state', 'checkpoint'),
    ('truncated_h5', 'generator.weights.h5'),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, kind, named):
    image, mask, ckpt = _bad(tmp_path, kind)
    out = tmp_path / 'out.png'
    out.write_bytes(b'previous result')
    code = cli.main(['--image', image, '--mask', mask, '--output', str(out), '--checkpoint_dir', ckpt])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and named in err and err.startswith('test.py: error: ')
    assert out.read_bytes() == b'previous result'
    assert not [name for name in os.listdir(tmp_path) if name.endswith('.partial')]


ROOT_USER = hasattr(os, 'geteuid') and os.geteuid() == 0
UNDER_ROOT = 'running as root: every folder is writable, so an unwritable folder cannot be made'


def _bad_output(tmp_path, kind):
    """An output path that cannot be written, of `kind`; returns the path given to --output."""
    if kind == 'existing_folder':
        (tmp_path / 'result').mkdir()
        return str(tmp_path / 'result')
    if kind == 'unknown_extension':
        return str(tmp_path / 'out.xyz')
    if kind == 'no_extension':
        return str(tmp_path / 'out')
    if kind == 'parent_is_a_file':
        (tmp_path / 'file.txt').write_text('a file')
        return str(tmp_path / 'file.txt' / 'sub' / 'out.png')
    if kind == 'trailing_slash':
        return str(tmp_path / 'new') + os.sep
    if kind == 'unwritable_folder':
        if ROOT_USER:
            pytest.skip(UNDER_ROOT)
        (tmp_path / 'locked').mkdir()
        os.chmod(tmp_path / 'locked', 0o500)
        return str(tmp_path / 'locked' / 'out.png')
    raise ValueError(kind)


@pytest.mark.parametrize('kind', ['existing_folder', 'unknown_extension', 'no_extension',
                                  'parent_is_a_file', 'trailing_slash', 'unwritable_folder'])
def test_bad_output_path_exits_2_before_loading_the_model(tmp_path, capsys, kind):
    case = golden_case('rocket256')
    output = _bad_output(tmp_path, kind)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
    # A checkpoint that does not exist: the output must be refused before the model is loaded.
    code = cli.main(['--image', case['input'], '--mask', case['mask'], '--output', output,
                     '--checkpoint_dir', str(tmp_path / 'no_checkpoint')])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f'test.py: error: {output}: '), err
    assert 'no_checkpoint' not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*')) == before  # nothing left


def test_failed_write_leaves_no_partial_file(tmp_path):
    from inpaint.imageio import write_image
    (tmp_path / 'result.png').mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(OSError):
        write_image(str(tmp_path / 'result.png'), np.zeros((4, 4, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['result.png']


def _crop_and_hole(tmp_path):
    """A 64x80 crop of a golden input, written as in.png, and a bool box hole."""
    image = cv2.imread(golden_case('rocket256')['input'])[96:160, 80:160]
    cv2.imwrite(str(tmp_path / 'in.png'), image)
    hole = np.zeros(image.shape[:2], bool)
    hole[20:44, 24:56] = True
    return image, hole


@pytest.mark.parametrize('kind', ['gray_0_1', 'red_on_black', 'black_on_transparent'])
def test_mask_holes_where_painted_on_the_command_line(tmp_path, capsys, kind):
    """0/1, red-on-black and painted-alpha masks fill their holes (they used to change nothing)."""
    image, hole = _crop_and_hole(tmp_path)
    mask = {'gray_0_1': hole.astype(np.uint8),
            'red_on_black': np.stack([0 * hole, 0 * hole, 255 * hole], 2).astype(np.uint8),
            'black_on_transparent': np.stack([0 * hole] * 3 + [255 * hole], 2).astype(np.uint8)}[kind]
    cv2.imwrite(str(tmp_path / 'mask.png'), mask)
    code = cli.main(['--image', str(tmp_path / 'in.png'), '--mask', str(tmp_path / 'mask.png'),
                     '--output', str(tmp_path / 'out.png'), '--checkpoint_dir', GOLDEN_CHECKPOINT])
    assert code == 0 and 'no hole' not in capsys.readouterr().err
    out = cv2.imread(str(tmp_path / 'out.png'))
    assert np.array_equal(out[~hole], image[~hole])
    assert np.mean(np.any(out[hole] != image[hole], axis=-1)) > 0.5  # the hole is filled


def test_mask_without_hole_warns_on_stderr(tmp_path):
    image, hole = _crop_and_hole(tmp_path)
    cv2.imwrite(str(tmp_path / 'mask.png'), np.zeros(hole.shape, np.uint8))
    run = subprocess.run([sys.executable, os.path.join(ROOT, 'test.py'), '--image',
                          str(tmp_path / 'in.png'), '--mask', str(tmp_path / 'mask.png'), '--output',
                          str(tmp_path / 'out.png'), '--checkpoint_dir', GOLDEN_CHECKPOINT],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if 'no hole' in line]
    assert len(warnings) == 1 and str(tmp_path / 'mask.png') in warnings[0], run.stderr
    assert run.stdout.startswith('Inpainted ')
    assert np.array_equal(cv2.imread(str(tmp_path / 'out.png')), image)


def test_rgba_and_16_bit_inputs_come_back_as_they_were(tmp_path, caplog):
    """An RGBA file keeps its alpha, a 16-bit file its 16 bits (the known pixels exactly); a JPEG
    output, which can hold neither, says so. Before, both came back 8-bit RGB without a word."""
    image, hole = _crop_and_hole(tmp_path)
    cv2.imwrite(str(tmp_path / 'mask.png'), hole.astype(np.uint8) * 255)
    alpha = np.tile(np.arange(image.shape[1], dtype=np.uint8) * 3, (image.shape[0], 1))
    deep = np.where(image < 255, image.astype(np.uint16) * 257 + 77, 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / 'rgba.png'), np.dstack([image, alpha]))  # BGRA
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    flags = ['--mask', str(tmp_path / 'mask.png'), '--checkpoint_dir', GOLDEN_CHECKPOINT]
    for name in ('in', 'rgba', 'deep'):
        assert cli.main(['--image', str(tmp_path / f'{name}.png'), '--output',
                         str(tmp_path / f'out_{name}.png'), *flags]) == 0
    plain = cv2.imread(str(tmp_path / 'out_in.png'), cv2.IMREAD_UNCHANGED)
    rgba = cv2.imread(str(tmp_path / 'out_rgba.png'), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == image.shape[:2] + (4,)
    assert np.array_equal(rgba[..., 3], alpha) and np.array_equal(rgba[..., :3], plain)
    out = cv2.imread(str(tmp_path / 'out_deep.png'), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and np.array_equal(out[~hole], deep[~hole])
    assert np.array_equal(out[hole], plain[hole].astype(np.uint16) * 257)
    caplog.clear()
    assert cli.main(['--image', str(tmp_path / 'rgba.png'), '--output', str(tmp_path / 'out.jpg'),
                     *flags]) == 0
    assert [r.getMessage() for r in caplog.records if 'alpha' in r.getMessage()] == [
        f'{tmp_path / "out.jpg"}: .jpg cannot hold the alpha channel, which is dropped; write .png '
        f'to keep it']
    assert cv2.imread(str(tmp_path / 'out.jpg'), cv2.IMREAD_UNCHANGED).shape == image.shape


def test_an_all_white_mask_warns(tmp_path, caplog):
    """A hole everywhere leaves nothing to condition on: a warning naming the mask (there was none)."""
    image, _ = _crop_and_hole(tmp_path)
    cv2.imwrite(str(tmp_path / 'mask.png'), np.full(image.shape[:2], 255, np.uint8))
    assert cli.main(['--image', str(tmp_path / 'in.png'), '--mask', str(tmp_path / 'mask.png'),
                     '--output', str(tmp_path / 'out.png'), '--checkpoint_dir', GOLDEN_CHECKPOINT]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert warnings == [f'{tmp_path / "mask.png"}: the mask is a hole everywhere: no pixel is left to '
                        f"condition on, so the result is the network's guess from nothing; paint "
                        f'only what should be replaced']


def test_grey_image_comes_back_grey(tmp_path):
    image, hole = _crop_and_hole(tmp_path)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / 'grey.png'), grey)  # a 1-channel file
    cv2.imwrite(str(tmp_path / 'mask.png'), hole.astype(np.uint8) * 255)
    assert cli.main(['--image', str(tmp_path / 'grey.png'), '--mask', str(tmp_path / 'mask.png'),
                     '--output', str(tmp_path / 'out.png'), '--checkpoint_dir', GOLDEN_CHECKPOINT]) == 0
    out = cv2.imread(str(tmp_path / 'out.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert np.array_equal(out[~hole, 0], grey[~hole])
    assert np.mean(out[hole, 0] != grey[hole]) > 0.5  # the hole is filled


def test_output_may_not_overwrite_the_input(tmp_path, capsys):
    case = golden_case('rocket256')
    image = tmp_path / 'in.png'
    shutil.copy(case['input'], image)
    before = image.read_bytes()
    code = cli.main(['--image', str(image), '--mask', case['mask'], '--output', str(image),
                     '--checkpoint_dir', GOLDEN_CHECKPOINT])
    assert code == 2 and 'overwrite an input' in capsys.readouterr().err
    assert image.read_bytes() == before


def test_missing_required_flag_is_a_usage_error():
    run = subprocess.run([sys.executable, os.path.join(ROOT, 'test.py'), '--image', 'x.png'],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and 'required' in run.stderr


def test_bfloat16_precision_runs_and_is_refused_with_original(tmp_path, capsys):
    case = golden_case('motorcycle184x264')
    args = ['--image', case['input'], '--mask', case['mask'], '--checkpoint_dir', GOLDEN_CHECKPOINT]
    assert cli.main(args + ['--output', str(tmp_path / 'f32.png')]) == 0
    assert cli.main(args + ['--output', str(tmp_path / 'bf16.png'), '--precision', 'bfloat16']) == 0
    f32, bf16 = (cv2.imread(str(tmp_path / name)) for name in ('f32.png', 'bf16.png'))
    known = cv2.imread(case['mask'])[..., 0] <= 127
    assert np.array_equal(f32[known], bf16[known])
    assert cli.main(args + ['--output', str(tmp_path / 'o.png'), '--precision', 'bfloat16',
                            '--original']) == 2
    assert '--original' in capsys.readouterr().err
    assert not (tmp_path / 'o.png').exists()


def test_an_existing_output_is_replaced_only_with_overwrite_and_only_if_an_image(tmp_path, capsys):
    """The original's test.py replaced whatever was at --output; nothing is replaced unless asked,
    and a file that is not an image never is."""
    case = golden_case('rocket256')
    args = ['--image', case['input'], '--mask', case['mask'], '--checkpoint_dir', GOLDEN_CHECKPOINT]
    earlier, notes = tmp_path / 'out.png', tmp_path / 'notes.png'
    cv2.imwrite(str(earlier), np.zeros((8, 8, 3), np.uint8))
    notes.write_bytes(b'my notes, not an image')
    before = earlier.read_bytes()
    assert cli.main(args + ['--output', str(earlier)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f'test.py: error: {earlier}: exists; pass --overwrite to replace it, or choose '
                   f'another output')
    assert earlier.read_bytes() == before
    assert cli.main(args + ['--output', str(notes), '--overwrite']) == 2
    assert 'is not an image; it is never replaced' in capsys.readouterr().err
    assert notes.read_bytes() == b'my notes, not an image'
    assert cli.main(args + ['--output', str(earlier), '--overwrite']) == 0
    assert cv2.imread(str(earlier)).shape == cv2.imread(case['input']).shape
    assert sorted(os.listdir(tmp_path)) == ['notes.png', 'out.png']  # no temporary file left


def _guided_case():
    from conftest import GUIDED_GOLDEN
    folder = os.path.join(GUIDED_GOLDEN, 'motorcycle184x264')
    return {name: os.path.join(folder, f'{name}.png') for name in ('input', 'mask', 'edge')}


def test_an_edge_is_refused_before_any_work_when_the_model_is_not_guided(tmp_path, capsys):
    case = _guided_case()
    out = tmp_path / 'out.png'
    code = cli.main(['--image', case['input'], '--mask', case['mask'], '--edge', case['edge'],
                     '--output', str(out), '--checkpoint_dir', GOLDEN_CHECKPOINT])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f'test.py: error: --edge {case["edge"]}: ') and 'not guided' in err, err
    assert not out.exists()


def test_the_edge_must_have_the_images_size_and_may_not_be_the_output(tmp_path, capsys):
    from conftest import GUIDED_CHECKPOINT
    case = _guided_case()
    small = tmp_path / 'small_edge.png'
    cv2.imwrite(str(small), np.zeros((10, 12), np.uint8))
    args = ['--image', case['input'], '--mask', case['mask'], '--checkpoint_dir', GUIDED_CHECKPOINT]
    assert cli.main(args + ['--edge', str(small), '--output', str(tmp_path / 'out.png')]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"test.py: error: {small}: edge image is 12x10 but the image {case['input']} "
                   f"is 264x184; give an edge image of the image's size")
    assert cli.main(args + ['--edge', str(small), '--output', str(small), '--overwrite']) == 2
    assert 'overwrite an input' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ['small_edge.png']


def test_a_guided_model_without_an_edge_warns_and_inpaints_without_lines(tmp_path, caplog):
    from conftest import GUIDED_CHECKPOINT
    case = _guided_case()
    args = ['--image', case['input'], '--mask', case['mask'], '--checkpoint_dir', GUIDED_CHECKPOINT]
    caplog.clear()
    assert cli.main(args + ['--output', str(tmp_path / 'none.png')]) == 0
    # TensorFlow's own (its retracing warning, after many traces in one process) are not ours.
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING' and r.name != 'tensorflow']
    assert len(warnings) == 1 and warnings[0].startswith(f'{case["input"]}: no --edge: this model is '
                                                         f'edge-guided'), warnings
    black = tmp_path / 'black.png'
    cv2.imwrite(str(black), np.zeros((184, 264), np.uint8))
    assert cli.main(args + ['--edge', str(black), '--output', str(tmp_path / 'black_out.png')]) == 0
    assert cli.main(args + ['--edge', case['edge'], '--output', str(tmp_path / 'edge_out.png')]) == 0
    none, black_out, edge_out = (cv2.imread(str(tmp_path / n)) for n in ('none.png', 'black_out.png',
                                                                          'edge_out.png'))
    assert np.array_equal(none, black_out) and not np.array_equal(none, edge_out)
