"""Tests for inpaint/data.py: file lists, decoding conventions, crops, determinism, bad files."""
import itertools
import logging
import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from inpaint import data
from inpaint.imageio import InputError

from conftest import SHARED  # ../shared next to the repository  # noqa: E402
SAMPLE = os.path.join(SHARED, 'data', 'imagenet_sample')
REPO = os.path.join(os.path.dirname(__file__), '..')
# A sample JPEG whose EXIF orientation rotates it: cv2.imread gives (392, 294), raw pixels (294, 392).
EXIF_ROTATED = 'n02951585_can_opener.JPEG'
TIMEOUT_S = 60  # a hang would be a bug; this only turns it into a failure


@pytest.fixture
def sample_dir():
    if not os.path.isdir(SAMPLE):
        pytest.skip(f'{os.path.abspath(SAMPLE)} is absent: the real-image tests need the shared '
                    'ImageNet sample in ../shared/data/imagenet_sample next to the repository')
    return SAMPLE


def _write(path, array):
    assert cv2.imwrite(str(path), array), path
    return str(path)


def _noise(shape, seed=0, dtype=np.uint8):
    high = np.iinfo(dtype).max + 1
    return np.random.default_rng(seed).integers(0, high, shape, dtype=dtype)


def _collect(dataset, take=None, timeout=TIMEOUT_S):
    """Iterates `dataset` (its first `take` batches) in a thread and closes it; fails instead of
    hanging, and re-raises its error."""
    result = {}

    def run():
        try:
            with dataset:
                result['batches'] = list(itertools.islice(dataset, take))
        except Exception as error:  # pylint: disable=broad-except  (re-raised below)
            result['error'] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f'dataset iteration did not finish within {timeout} s'
    if 'error' in result:
        raise result['error']
    return result['batches']


def _one_pass(paths, img_shape, random_crop, **kwargs):
    """All images of one pass, in list order, as a list of float32 (H, W, 3) arrays."""
    dataset = data.make_dataset(paths, img_shape, random_crop, batch_size=1, shuffle=False,
                                repeat=False, **kwargs)
    return [batch[0] for batch in _collect(dataset)], dataset.decode_stats


# --- file lists and folders -------------------------------------------------------------------

def test_read_flist_resolves_relative_to_list_folder(tmp_path, monkeypatch):
    folder = tmp_path / 'lists'
    folder.mkdir()
    absolute = str(tmp_path / 'elsewhere' / 'b.png')
    (folder / 'train.flist').write_text(
        '# a comment\n\n  a.png  \nsub/c.jpg\n' + absolute + '\n   \n# sub/ignored.png\n')
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    paths = data.read_flist('lists/train.flist')
    assert paths == [str(folder / 'a.png'), str(folder / 'sub' / 'c.jpg'), absolute]


def test_read_flist_missing_names_the_file(tmp_path):
    missing = str(tmp_path / 'nope.flist')
    with pytest.raises(InputError, match='nope.flist'):
        data.read_flist(missing)
    with pytest.raises(InputError, match='nope.flist'):
        data.list_images(missing)


def test_binary_image_list_is_one_input_error(tmp_path):
    """One list reader for image lists and batch job lists: a binary file is an InputError
    naming it (the image-list reader raised UnicodeDecodeError)."""
    flist = tmp_path / 'photo.png'
    flist.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match=rf'^{flist}: not a UTF-8 text file'):
        data.list_images(str(flist))


def test_list_images_folder_sorted_case_insensitive_non_recursive(tmp_path):
    pixel = np.zeros((2, 2, 3), np.uint8)
    for name in ('b.PNG', 'a.jpg', 'c.JPEG', 'd.bmp', 'e.webp', 'f.TIF', 'g.tiff'):
        _write(tmp_path / name, pixel)
    (tmp_path / 'notes.txt').write_text('not an image')
    (tmp_path / 'sub').mkdir()
    _write(tmp_path / 'sub' / 'deep.png', pixel)
    (tmp_path / 'folder.png').mkdir()  # a folder with an image-like name is not a file
    names = [os.path.basename(p) for p in data.list_images(str(tmp_path))]
    assert names == ['a.jpg', 'b.PNG', 'c.JPEG', 'd.bmp', 'e.webp', 'f.TIF', 'g.tiff']


def test_training_images_leave_a_folders_edge_images_out(tmp_path, caplog):
    """A folder prepared for the guided mode holds `<name>_edge.jpg` beside each photo: those are
    not training images (a list names what it names: its entries are kept)."""
    pixel = np.zeros((2, 2, 3), np.uint8)
    for name in ('a.jpg', 'a_edge.jpg', 'b.png', 'b_edge.jpg', 'c_edge.png'):
        _write(tmp_path / name, pixel)
    assert [os.path.basename(p) for p in data.training_images(str(tmp_path))] == [
        'a.jpg', 'b.png', 'c_edge.png']  # only the original's name, `_edge.jpg`, is an edge image
    flist = tmp_path / 'list.flist'
    flist.write_text('a.jpg\na_edge.jpg\n')
    assert [os.path.basename(p) for p in data.training_images(str(flist))] == ['a.jpg', 'a_edge.jpg']
    only = tmp_path / 'only'
    only.mkdir()
    _write(only / 'x_edge.jpg', pixel)
    with pytest.raises(InputError, match='holds only edge images'):
        data.training_images(str(only))


def test_list_images_empty_sources_raise(tmp_path):
    empty_dir = tmp_path / 'empty'
    empty_dir.mkdir()
    (empty_dir / 'readme.txt').write_text('x')
    with pytest.raises(InputError, match='empty'):
        data.list_images(str(empty_dir))
    empty_list = tmp_path / 'empty.flist'
    empty_list.write_text('# only a comment\n\n')
    with pytest.raises(InputError, match='empty.flist'):
        data.list_images(str(empty_list))
    with pytest.raises(InputError, match='missing_source'):
        data.list_images(str(tmp_path / 'missing_source'))


def test_shared_flists_work_from_anywhere(sample_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = data.list_images(os.path.join(sample_dir, 'train.flist'))
    val = data.list_images(os.path.join(sample_dir, 'val.flist'))
    assert (len(train), len(val)) == (700, 100)
    assert all(os.path.isfile(p) for p in train + val)
    assert not set(train) & set(val)


# --- decoding conventions ---------------------------------------------------------------------

def test_decode_matches_cv2_imread_on_real_jpegs(sample_dir):
    names = sorted(n for n in os.listdir(sample_dir) if n.endswith('.JPEG'))[:20] + [EXIF_ROTATED]
    for name in names:
        path = os.path.join(sample_dir, name)
        expected = cv2.imread(path)
        decoded = data.decode_bgr(path)
        assert decoded.dtype == np.uint8 and decoded.shape == expected.shape, name
        np.testing.assert_array_equal(decoded, expected, err_msg=name)  # exact: same decoder
    assert data.decode_bgr(os.path.join(sample_dir, EXIF_ROTATED)).shape == (392, 294, 3)


def test_output_shape_dtype_range(tmp_path):
    paths = [_write(tmp_path / f'{i}.png', _noise((40 + 7 * i, 50, 3), seed=i)) for i in range(5)]
    dataset = data.make_dataset(paths, (32, 24, 3), True, batch_size=2, seed=0)
    assert dataset.batch_shape == (2, 32, 24, 3)  # known before the first batch, for the model
    assert iter(dataset) is dataset  # the trainer does `batches = iter(dataset); next(batches)`
    batches = _collect(dataset, take=4)
    assert len(batches) == 4
    for batch in batches:
        assert batch.shape == (2, 32, 24, 3) and batch.dtype == np.float32
        assert batch.min() >= 0 and batch.max() <= 255
        np.testing.assert_array_equal(batch, np.round(batch))  # uint8 values, not rescaled
    assert max(b.max() for b in batches) > 250  # 0..255, not 0..1 or -1..1


def test_real_images_through_the_pipeline(sample_dir):
    paths = data.list_images(os.path.join(sample_dir, 'val.flist'))[:6]
    images, stats = _one_pass(paths, (64, 64), random_crop=False)
    assert len(images) == 6 and stats.skipped == 0 and stats.decoded == 6
    for path, image in zip(paths, images):
        expected = cv2.resize(cv2.imread(path), (64, 64), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(image, expected.astype(np.float32))


@pytest.mark.parametrize('random_crop', [True, False])
def test_bgr_order(tmp_path, random_crop):
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 2] = 255  # OpenCV writes BGR: channel 2 is red
    images, _ = _one_pass([_write(tmp_path / 'red.png', red)], (32, 32), random_crop)
    assert np.all(images[0][..., 2] == 255) and np.all(images[0][..., :2] == 0)


def test_gray_rgba_and_16_bit_inputs(tmp_path):
    gray = _write(tmp_path / 'gray.png', np.full((32, 32), 77, np.uint8))
    bgra = np.zeros((32, 32, 4), np.uint8)
    bgra[...] = (10, 20, 30, 0)  # fully transparent: the colour is kept, alpha dropped (as cv2.imread)
    rgba = _write(tmp_path / 'rgba.png', bgra)
    deep = _write(tmp_path / 'deep.png', np.full((32, 32, 3), (257 * 5, 257 * 100, 65535), np.uint16))
    gray_jpeg = _write(tmp_path / 'gray.jpg', np.full((32, 32), 200, np.uint8))
    images, stats = _one_pass([gray, rgba, deep, gray_jpeg], (32, 32), random_crop=True, seed=0)
    assert stats.skipped == 0
    np.testing.assert_array_equal(images[0], np.full((32, 32, 3), 77))
    np.testing.assert_array_equal(images[1], np.broadcast_to([10, 20, 30], (32, 32, 3)))
    np.testing.assert_array_equal(images[2], np.broadcast_to([5, 100, 255], (32, 32, 3)))
    np.testing.assert_array_equal(images[3], cv2.imread(gray_jpeg).astype(np.float32))


# --- crops and resizes ------------------------------------------------------------------------

def test_small_image_is_upscaled_keeping_aspect_then_cropped(tmp_path):
    small = _noise((20, 40, 3), seed=3)  # h=20, w=40; crop 32x32 -> scale 1.6 -> 32x64
    upscaled = cv2.resize(small, (64, 32), interpolation=cv2.INTER_LINEAR)
    crops = [upscaled[:, left:left + 32] for left in range(64 - 32 + 1)]
    rng = np.random.default_rng(0)
    lefts = set()
    for _ in range(20):
        out = data.crop_or_resize(small, (32, 32), True, rng)
        matches = [left for left, crop in enumerate(crops) if np.array_equal(out, crop)]
        assert matches, 'the crop is not a window of the aspect-preserving upscale'
        lefts.add(matches[0])
    assert len(lefts) > 1  # offsets are random along the long side
    # Through the pipeline: the same rule, and the static shape holds for a tiny input.
    images, _ = _one_pass([_write(tmp_path / 'small.png', small)], (32, 32), True, seed=1)
    assert any(np.array_equal(images[0], crop.astype(np.float32)) for crop in crops)
    tiny = data.crop_or_resize(_noise((3, 5, 3)), (32, 32), True, rng)
    assert tiny.shape == (32, 32, 3)


def test_large_image_is_cropped_not_scaled():
    image = _noise((50, 60, 3), seed=4)
    out = data.crop_or_resize(image, (32, 32, 3), True, np.random.default_rng(1))
    windows = [image[t:t + 32, l:l + 32] for t in range(19) for l in range(29)]
    assert any(np.array_equal(out, w) for w in windows)


def test_resize_mode_uses_width_height_order(tmp_path):
    image = _noise((30, 50, 3), seed=5)
    path = _write(tmp_path / 'wide.png', image)
    images, _ = _one_pass([path], (24, 40), random_crop=False)
    expected = cv2.resize(image, (40, 24), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(images[0], expected.astype(np.float32))


def test_center_crop_or_resize_is_deterministic_centre():
    image = _noise((50, 61, 3), seed=6)
    out = data.center_crop_or_resize(image, (32, 32), random_crop=True)
    np.testing.assert_array_equal(out, image[9:41, 14:46])
    small = _noise((16, 16, 3), seed=7)
    np.testing.assert_array_equal(data.center_crop_or_resize(small, (32, 32), True),
                                  cv2.resize(small, (32, 32), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(data.center_crop_or_resize(image, (20, 30), False),
                                  cv2.resize(image, (30, 20), interpolation=cv2.INTER_LINEAR))


# --- determinism ------------------------------------------------------------------------------

def test_same_seed_same_batches_with_parallel_decoding(tmp_path):
    paths = [_write(tmp_path / f'{i}.png', _noise((48, 56, 3), seed=i)) for i in range(7)]

    def batches(seed):
        dataset = data.make_dataset(paths, (32, 32), True, batch_size=3, seed=seed,
                                    num_parallel_calls=4, shuffle_buffer=7)
        return np.stack(_collect(dataset, take=6))  # 18 images: more than two passes

    first, second, other = batches(11), batches(11), batches(12)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)
    flat = first.reshape(-1, 32, 32, 3)
    assert len({im.tobytes() for im in flat}) > 7  # crops differ between passes of one file


# --- bad files --------------------------------------------------------------------------------

def test_corrupt_empty_and_missing_files_are_skipped_and_counted(tmp_path, caplog):
    good = [_write(tmp_path / f'good{i}.png', _noise((32, 32, 3), seed=i)) for i in range(3)]
    corrupt = tmp_path / 'corrupt.png'
    corrupt.write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(range(256)) * 4)
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    missing = str(tmp_path / 'missing.png')
    paths = [good[0], str(corrupt), good[1], str(empty), missing, good[2]]
    with caplog.at_level(logging.WARNING):
        images, stats = _one_pass(paths, (32, 32), random_crop=False)
    assert len(images) == 3
    for path, image in zip(good, images):  # the rest comes through, in order
        np.testing.assert_array_equal(image, cv2.imread(path).astype(np.float32))
    assert (stats.decoded, stats.skipped) == (3, 3)
    assert stats.bad_files == {str(corrupt), str(empty), missing}
    for bad in (str(corrupt), str(empty), missing):
        assert sum(bad in record.getMessage() for record in caplog.records) == 1, bad

    # Repeating: each pass counts its skips again, but each file is warned about only once.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        dataset = data.make_dataset(paths, (32, 32), False, batch_size=3, seed=0)
        _collect(dataset, take=3)  # 9 images = 3 full passes over the 3 good files
    assert dataset.decode_stats.skipped >= 9
    assert sum(str(corrupt) in record.getMessage() for record in caplog.records) == 1


# --- edge images (the guided mode) ------------------------------------------------------------

def _with_edge(folder, name, picture, edge=None):
    """Writes `<name>.png` and, losslessly (PNG bytes: the decoder goes by content), its
    `<name>_edge.jpg`, by default the picture itself; returns the image path."""
    path = _write(folder / f'{name}.png', picture)
    ok, encoded = cv2.imencode('.png', picture if edge is None else edge)
    encoded.tofile(str(folder / f'{name}_edge.jpg'))
    return path


@pytest.mark.parametrize('random_crop', [True, False])
def test_edges_are_read_beside_each_image_and_cropped_with_it(tmp_path, random_crop):
    """`<name>_edge.jpg` beside each image, cropped (or resized) exactly as its image: an edge
    file equal to its picture comes out equal to its crop, small images upscaled alike."""
    paths = [_with_edge(tmp_path, str(i), _noise(shape, seed=i))
             for i, shape in enumerate([(40, 48, 3), (20, 30, 3), (64, 36, 3)])]
    dataset = data.make_dataset(paths, (32, 32), random_crop, batch_size=3, seed=4, edges=True)
    assert dataset.batch_shape == (3, 32, 32, 3)
    for images, edges in _collect(dataset, take=2):
        assert images.shape == edges.shape == (3, 32, 32, 3) and edges.dtype == np.float32
        np.testing.assert_array_equal(edges, images)
    # The images are those of the same pipeline without edges.
    plain = _collect(data.make_dataset(paths, (32, 32), random_crop, batch_size=3, seed=4), take=2)
    np.testing.assert_array_equal(plain[1], images)


def test_images_without_a_usable_edge_file_are_skipped_and_counted(tmp_path, caplog):
    good = [_with_edge(tmp_path, f'good{i}', _noise((32, 32, 3), seed=i)) for i in range(2)]
    missing = _write(tmp_path / 'missing.png', _noise((32, 32, 3), seed=5))  # no edge file
    other_size = _with_edge(tmp_path, 'other', _noise((32, 32, 3), seed=6), _noise((30, 32, 3)))
    paths = [good[0], missing, other_size, good[1]]
    with caplog.at_level(logging.WARNING):
        dataset = data.make_dataset(paths, (32, 32), False, batch_size=1, shuffle=False,
                                    repeat=False, edges=True)
        batches = _collect(dataset)
    assert len(batches) == 2
    for path, (image, edge) in zip(good, batches):
        np.testing.assert_array_equal(image[0], cv2.imread(path).astype(np.float32))
        np.testing.assert_array_equal(edge[0], image[0])
    assert (dataset.decode_stats.decoded, dataset.decode_stats.skipped) == (2, 2)
    assert dataset.decode_stats.bad_files == {missing, other_size}
    messages = ' '.join(record.getMessage() for record in caplog.records)
    assert 'missing_edge.jpg: file not found' in messages
    assert 'other_edge.jpg: edge image is 32x30 but' in messages
    with pytest.raises(InputError, match='none of the 1 listed images'):
        data.make_dataset([missing], (32, 32), False, 1, edges=True)


def test_all_bad_list_raises_input_error(tmp_path):
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    with pytest.raises(InputError, match='none of the 3 listed images'):
        data.make_dataset([str(bad), str(empty), str(tmp_path / 'gone.png')], (32, 32), True, 2)
    with pytest.raises(InputError, match='no image paths'):
        data.make_dataset([], (32, 32), True, 2)


def test_files_going_bad_after_construction_stop_the_iterator(tmp_path):
    paths = [_write(tmp_path / f'{i}.png', _noise((32, 32, 3), seed=i)) for i in range(3)]
    dataset = data.make_dataset(paths, (32, 32), True, batch_size=2, seed=0)  # repeats forever
    for path in paths:  # e.g. a disk unmounted mid-run
        with open(path, 'wb') as handle:
            handle.write(b'garbage')
    with pytest.raises(InputError, match='no image could be read in a full pass'):
        _collect(dataset)
    assert dataset.decode_stats.decoded == 0 and dataset.decode_stats.skipped >= 3


def test_argument_validation(tmp_path):
    path = _write(tmp_path / 'a.png', _noise((8, 8, 3)))
    for shape in [(32,), (32, 32, 4), (0, 32), (32.5, 32)]:
        with pytest.raises(ValueError, match='img_shape'):
            data.make_dataset([path], shape, True, 2)
    with pytest.raises(ValueError, match='batch_size'):
        data.make_dataset([path], (8, 8), True, 0)
    with pytest.raises(ValueError, match='seed'):
        data.make_dataset([path], (8, 8), True, 1, seed=-1)
    for threads in (0, -2, 1.5):
        with pytest.raises(ValueError, match='num_parallel_calls'):
            data.make_dataset([path], (8, 8), True, 1, num_parallel_calls=threads)
    with pytest.raises(ValueError, match='shuffle_buffer'):
        data.make_dataset([path], (8, 8), True, 1, shuffle_buffer=0)


def test_unseeded_pipelines_differ(tmp_path):
    path = _write(tmp_path / 'big.png', _noise((96, 96, 3), seed=8))
    first, second = (np.stack(_collect(data.make_dataset([path], (16, 16), True, 4), take=2))
                     for _ in range(2))
    assert not np.array_equal(first, second)  # 8 crops out of 81 x 81 offsets each


# --- the thread-pool stream -------------------------------------------------------------------

def _numbered(tmp_path, count):
    """`count` flat images whose pixel value 10 * i + 5 names their position i in the list."""
    return [_write(tmp_path / f'{i}.png', np.full((8, 8, 3), 10 * i + 5, np.uint8))
            for i in range(count)]


def _positions(batches):
    return [int(image[0, 0, 0]) // 10 for batch in batches for image in batch]


def test_module_does_not_import_tensorflow():
    # JAX training runs where TensorFlow is not installed: the input pipeline must not need it.
    code = "import sys; import inpaint.data; assert 'tensorflow' not in sys.modules, 'tensorflow'"
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                            timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr


def test_shuffle_each_pass_is_a_seeded_permutation(tmp_path):
    paths = _numbered(tmp_path, 10)

    def order(seed, **kwargs):
        dataset = data.make_dataset(paths, (8, 8), False, batch_size=5, seed=seed, **kwargs)
        return _positions(_collect(dataset, take=6))  # three passes

    first = order(3)
    passes = [first[i:i + 10] for i in range(0, 30, 10)]
    assert all(sorted(p) == list(range(10)) for p in passes)  # each pass sees every file once
    assert len({tuple(p) for p in passes}) == 3  # reshuffled every pass
    assert passes[0] != list(range(10))
    assert order(3) == first and order(4) != first
    assert order(3, shuffle_buffer=1) == list(range(10)) * 3  # a buffer of one keeps the order
    assert order(3, shuffle=False) == list(range(10)) * 3
    # A buffer of 2: the first name is one of the first two, and no name moves back by more
    # than the buffer allows before it is drawn.
    small = order(3, shuffle_buffer=2)
    assert all(small[i] in (0, 1) for i in (0, 10, 20))
    assert all(p <= i + 1 for i, p in enumerate(small[:10]))


def test_shards_read_disjoint_slices_of_each_pass(tmp_path):
    """Processes training together (`shard=(index, count)`) read the positions index, index +
    count, ... of each pass's shuffled order: together exactly one process's elements, and the
    same crops (the crop seed is the element's index in the whole stream)."""
    paths = _numbered(tmp_path, 10)
    whole = _positions(_collect(data.make_dataset(paths, (8, 8), False, batch_size=5, seed=3),
                                take=4))  # two passes
    shards = [_positions(_collect(data.make_dataset(paths, (8, 8), False, batch_size=5, seed=3,
                                                    shard=(index, 2)), take=2)) for index in (0, 1)]
    assert shards == [whole[0::2], whole[1::2]]
    noisy = [_write(tmp_path / f'noise{i}.png', _noise((10, 12, 3), seed=i)) for i in range(4)]
    crops = [np.stack(_collect(data.make_dataset(noisy, (6, 6), True, batch_size=1, seed=3,
                                                 shard=shard), take=take))
             for shard, take in (((0, 1), 4), ((1, 2), 2))]
    np.testing.assert_array_equal(crops[1], crops[0][1::2])
    with pytest.raises(ValueError, match='shard'):
        data.make_dataset(paths, (8, 8), False, 1, shard=(2, 2))


def test_same_batches_whatever_the_number_of_threads(tmp_path):
    paths = [_write(tmp_path / f'{i}.png', _noise((40, 44, 3), seed=i)) for i in range(6)]
    runs = [np.stack(_collect(data.make_dataset(paths, (32, 32), True, batch_size=4, seed=5,
                                                num_parallel_calls=threads), take=5))
            for threads in (1, 3, 8)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])


def test_single_pass_ends_and_drops_the_incomplete_batch(tmp_path):
    paths = _numbered(tmp_path, 7)
    dataset = data.make_dataset(paths, (8, 8), False, batch_size=3, shuffle=False, repeat=False)
    batches = _collect(dataset)
    assert len(batches) == 2 and _positions(batches) == list(range(6))  # image 6 is dropped
    with pytest.raises(StopIteration):
        next(dataset)
    # Fewer images than one batch: nothing at all, as tf.data's drop_remainder.
    assert _collect(data.make_dataset(paths[:2], (8, 8), False, 3, repeat=False)) == []


def test_default_threads_and_close(tmp_path):
    paths = _numbered(tmp_path, 4)
    expected = min(8, os.cpu_count() or 1)
    before = set(threading.enumerate())  # other tests' streams may still hold threads
    for auto in (None, -1):
        with data.make_dataset(paths, (8, 8), False, 2, num_parallel_calls=auto) as dataset:
            assert dataset.num_threads == expected
            assert next(dataset).shape == (2, 8, 8, 3)
            started = [t for t in threading.enumerate()
                       if t not in before and t.name.startswith('inpaint-data')]
            assert 1 <= len(started) <= expected
        assert not any(t.is_alive() for t in started)  # close() joined them
    with pytest.raises(StopIteration):
        next(dataset)  # closed by the `with`
    dataset.close()  # closing twice is harmless


@pytest.mark.parametrize('error_type', [InputError, RuntimeError])
def test_worker_exception_reaches_the_consumer_unchanged(tmp_path, monkeypatch, error_type):
    paths = _numbered(tmp_path, 6)
    raised = {}
    original = data.crop_or_resize

    def failing(image, *args, **kwargs):
        if int(image[0, 0, 0]) // 10 == 4:  # the fifth file, in the second batch
            raised['error'] = error_type('worker failed on file 4')
            raised['thread'] = threading.current_thread().name
            raise raised['error']
        return original(image, *args, **kwargs)

    monkeypatch.setattr(data, 'crop_or_resize', failing)
    dataset = data.make_dataset(paths, (8, 8), False, batch_size=2, shuffle=False, repeat=False,
                                num_parallel_calls=2)
    assert _positions([next(dataset), next(dataset)]) == [0, 1, 2, 3]  # earlier batches come out
    with pytest.raises(error_type, match='worker failed on file 4') as caught:
        next(dataset)
    assert caught.value is raised['error']  # the same object, not wrapped
    assert raised['thread'].startswith('inpaint-data')  # it was raised in a worker
    with pytest.raises(StopIteration):
        next(dataset)  # the stream closed itself
