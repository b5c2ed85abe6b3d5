"""Tests of inpaint/evaluation/ (metrics, baselines, the run and its reports) and the command
(inpaint/commands/evaluate.py)."""
import csv
import json
import math
import os
import time

import cv2
import numpy as np
import pytest

from conftest import DAMAGED_KINDS, damaged_checkpoint, shared_path
from inpaint import evaluation, imageio
from inpaint.commands import evaluate
from inpaint.evaluation import reports



def _photo(seed, h=40, w=48):
    """A smooth synthetic photo with texture: gradients, a disc and noise (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    image = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin((x + y) / 7 + seed)], axis=2)
    cv2.circle(image, (w // 3, h // 2), h // 4, (200, 40, 90), -1)
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


# Coverage per image index of the fake 'box' family; index 2 lands in the >=60% bucket.
_BOX_SIDES = (0.25, 0.55, 0.85)


def _fake_make_mask(family, h, w, seed, index):
    """A deterministic stand-in for inpaint.masks.make_mask (which other work provides)."""
    mask = np.zeros((h, w), bool)
    if family == 'box':
        side_h, side_w = int(h * _BOX_SIDES[index % 3]), int(w * _BOX_SIDES[index % 3])
        top, left = (h - side_h) // 2, (w - side_w) // 2
        mask[top:top + side_h, left:left + side_w] = True
    else:
        rng = np.random.default_rng([seed, index])
        canvas = np.zeros((h, w), np.uint8)
        for _ in range(3):
            p, q = rng.integers(0, min(h, w), (2, 2))
            cv2.line(canvas, tuple(int(v) for v in p), tuple(int(v) for v in q), 1, 3)
        mask = canvas > 0
    return mask


def _identity(image, mask):
    """A fake method: returns its input (the image with white holes)."""
    del mask
    return image.copy()


def _write_images(folder, count=3, corrupt=()):
    os.makedirs(folder, exist_ok=True)
    names = []
    for i in range(count):
        name = f'img{i}.png'
        path = os.path.join(folder, name)
        if i in corrupt:
            with open(path, 'wb') as handle:
                handle.write(b'this is not a PNG')
        else:
            imageio.write_image(path, _photo(i, 40 + 4 * i, 48))
        names.append(name)
    return names


def _read_csv(path):
    with open(path, newline='', encoding='utf-8') as handle:
        return list(csv.DictReader(handle))


# ----------------------------------------------------------------------------------------------
# Metrics


def test_metrics_hand_values_constant_offset():
    a = np.full((16, 20, 3), 100, np.uint8)
    b = a + 10  # every pixel and channel off by 10: MSE = 100, mean |d| = 10
    assert evaluation.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100), abs=1e-12)
    assert evaluation.l1_error(a, b) == pytest.approx(100 * 10 / 255, abs=1e-12)
    assert evaluation.l2_error(a, b) == pytest.approx(100 * (10 / 255) ** 2, abs=1e-12)
    # Symmetric, and half the pixels off by 20: MSE = 200, mean |d| = 10.
    c = a.copy()
    c[:8] += 20
    assert evaluation.psnr(c, a) == pytest.approx(10 * math.log10(255 ** 2 / 200), abs=1e-12)
    assert evaluation.psnr(a, c) == evaluation.psnr(c, a)
    assert evaluation.l1_error(a, c) == pytest.approx(100 * 10 / 255, abs=1e-12)


def test_metrics_identical_images():
    a = _photo(0)
    assert evaluation.psnr(a, a) == math.inf
    assert evaluation.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert evaluation.l1_error(a, a) == 0.0
    assert evaluation.l2_error(a, a) == 0.0


def test_metrics_extremes():
    black = np.zeros((12, 12, 3), np.uint8)
    white = np.full((12, 12, 3), 255, np.uint8)
    assert evaluation.psnr(black, white) == pytest.approx(0.0, abs=1e-12)  # MSE = 255^2
    assert evaluation.l1_error(black, white) == pytest.approx(100.0)
    assert evaluation.l2_error(black, white) == pytest.approx(100.0)


def test_metrics_reject_bad_inputs():
    a = _photo(0)
    with pytest.raises(ValueError, match='shape'):
        evaluation.psnr(a, a[:-1])
    with pytest.raises(ValueError, match='uint8'):
        evaluation.ssim(a.astype(np.float32), a)
    with pytest.raises(ValueError, match='11x11'):
        evaluation.ssim(a[:10], a[:10])


def _reference_ssim(a, b):
    """Wang et al. 2004 written out (OpenCV filtering): 11x11 Gaussian window, sigma 1.5, K1 = 0.01,
    K2 = 0.03, L = 255, population covariances, per channel; reflected borders and the 5-pixel
    strip along them left out, as scikit-image does. It pins the parameters the metric passes."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    kernel = cv2.getGaussianKernel(11, 1.5, cv2.CV_64F)

    def blur(x):  # (H, W, 3) float64, each channel separately
        return cv2.sepFilter2D(x, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s[5:-5, 5:-5].mean())


# Both compute the same float64 sums in another order; measured differences are ~1e-15.
SSIM_TOL = 1e-6


@pytest.mark.parametrize('shape', [(11, 11), (11, 17), (40, 48), (65, 33)])
def test_ssim_is_wang_et_al_synthetic(shape):
    rng = np.random.default_rng(sum(shape))
    a = _photo(1, *shape)
    for b in (_photo(2, *shape),  # another image
              np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8),  # noise
              cv2.GaussianBlur(a, (5, 5), 1.0),  # blur
              rng.integers(0, 256, a.shape, dtype=np.uint8)):  # unrelated noise
        assert abs(evaluation.ssim(a, b) - _reference_ssim(a, b)) < SSIM_TOL


def test_ssim_is_wang_et_al_on_photos():
    sample_dir = shared_path('data', 'imagenet_sample')
    names = sorted(n for n in os.listdir(sample_dir) if n.endswith('.JPEG'))[:3]
    assert names
    for i, name in enumerate(names):
        truth = imageio.read_image(os.path.join(sample_dir, name))
        if i == 0:  # one at native size, the others at the evaluation resolution
            truth = truth[:300, :300]
        else:
            truth = evaluation.resize_image(truth, 256)
        mask = np.asarray(_fake_make_mask('line_circle', *truth.shape[:2], seed=0, index=i))
        masked = truth.copy()
        masked[mask] = 255
        for output in (evaluation.telea(masked, mask), masked, cv2.GaussianBlur(truth, (7, 7), 2.0)):
            assert abs(evaluation.ssim(output, truth) - _reference_ssim(output, truth)) < SSIM_TOL


# ----------------------------------------------------------------------------------------------
# Baselines


@pytest.mark.parametrize('method', [evaluation.telea, evaluation.navier_stokes])
def test_baselines_fill_only_the_holes(method):
    truth = _photo(3)
    mask = _fake_make_mask('box', *truth.shape[:2], seed=0, index=1)
    masked = truth.copy()
    masked[mask] = 255
    output = method(masked, mask)
    assert output.shape == truth.shape and output.dtype == np.uint8
    np.testing.assert_array_equal(output[~mask], masked[~mask])  # exactly: known pixels are kept
    assert np.mean(output[mask] == 255) < 0.05  # the white holes are filled
    assert evaluation.psnr(output, truth) > evaluation.psnr(masked, truth)


def test_baselines_reject_mismatched_mask():
    with pytest.raises(ValueError, match='mask shape'):
        evaluation.telea(_photo(0), np.zeros((5, 5), bool))


# ----------------------------------------------------------------------------------------------
# Inputs


def test_list_images_resolves_against_the_list_folder(tmp_path):
    names = _write_images(tmp_path / 'images')
    (tmp_path / 'lists').mkdir()
    flist = tmp_path / 'lists' / 'val.flist'
    flist.write_text(''.join(f'../images/{n}\n' for n in reversed(names)) + '\n')
    items = evaluation.list_items(str(flist))
    assert [i.name for i in items] == [f'../images/{n}' for n in reversed(names)]  # order kept
    assert all(os.path.isfile(i.path) for i in items)
    folder_items = evaluation.list_items(str(tmp_path / 'images'))
    assert [i.name for i in folder_items] == sorted(names)
    (tmp_path / 'images' / 'img0.jpg').write_bytes(b'')
    with pytest.raises(imageio.InputError, match='same stem'):
        evaluation.list_items(str(tmp_path / 'images'))


def test_resolution_policy():
    assert evaluation.parse_resolution('native') == 'native'
    assert evaluation.parse_resolution('256') == 256
    for bad in ('0', '8', 'big', '25.5'):
        with pytest.raises(imageio.InputError):
            evaluation.parse_resolution(bad)
    image = _photo(0, 40, 48)
    assert evaluation.resize_image(image, 32).shape == (32, 32, 3)
    assert evaluation.resize_image(image, 64).shape == (64, 64, 3)
    assert evaluation.resize_image(image, 'native') is image


# ----------------------------------------------------------------------------------------------
# The run


def _run(tmp_path, out, masks, methods=None, images=None, **kwargs):
    if images is None:
        names = _write_images(tmp_path / 'images')
        (tmp_path / 'lists').mkdir(exist_ok=True)
        flist = tmp_path / 'lists' / 'test.flist'
        flist.write_text(''.join(f'../images/{n}\n' for n in names))
        images = str(flist)
    methods = methods or {'telea': evaluation.telea, 'ns': evaluation.navier_stokes, 'identity': _identity}
    kwargs.setdefault('figures', False)
    kwargs.setdefault('resolution', 32)
    return evaluation.run_evaluation(images, str(out), methods, masks, progress=False, **kwargs)


def test_run_evaluation_end_to_end(tmp_path):
    out = tmp_path / 'out'
    masks = evaluation.GeneratedMasks(('box', 'line_circle'), seed=7, make_mask=_fake_make_mask)
    result = _run(tmp_path, out, masks, figures=True, save_outputs=True)
    assert result.ok and result.failures == []
    methods, families = ('telea', 'ns', 'identity'), ('box', 'line_circle')

    rows = _read_csv(out / 'per_image.csv')
    assert tuple(rows[0]) == evaluation.CSV_FIELDS
    assert len(rows) == 3 * 2 * 3
    assert {(r['method'], r['family'], r['image']) for r in rows} == {
        (m, f, f'../images/img{i}.png') for m in methods for f in families for i in range(3)}
    for row, record in zip(rows, result.records):
        assert float(row['psnr']) == record.psnr and float(row['seconds']) >= 0

    # The identity method returns the white-hole input: its metrics are those of that input.
    for record in result.records:
        if record.method == 'identity':
            index = int(record.image[-5])
            truth = evaluation.resize_image(imageio.read_image(str(tmp_path / 'images' / f'img{index}.png')), 32)
            mask = _fake_make_mask(record.family, 32, 32, 7, index)
            masked = truth.copy()
            masked[mask] = 255
            assert record.psnr == evaluation.psnr(masked, truth)
            assert record.ssim == evaluation.ssim(masked, truth)
            assert record.hole_fraction == mask.mean()
    # Baselines beat white holes on every case.
    by_case = {(r.method, r.family, r.image): r for r in result.records}
    for (method, family, image), r in by_case.items():
        if method != 'identity':
            assert r.psnr > by_case[('identity', family, image)].psnr

    summary = json.loads((out / 'summary.json').read_text())
    assert summary == json.loads(json.dumps(reports._json_safe(result.summary)))
    assert summary['failures'] == []
    labels = ['0-10%', '10-20%', '20-30%', '30-40%', '40-50%', '50-60%']
    for method in methods:
        for family in families:
            entry = summary['results'][method][family]
            assert entry['n'] == 3
            values = [r.psnr for r in result.records if r.method == method and r.family == family]
            assert entry['psnr']['mean'] == pytest.approx(np.mean(values), abs=1e-12)
            assert entry['psnr']['std'] == pytest.approx(np.std(values), abs=1e-12)
            got = [b['bucket'] for b in entry['buckets']]
            assert sum(b['n'] for b in entry['buckets']) == 3
            if family == 'box':  # fake boxes at 32x32: 8x8, 17x17, 27x27 = 6.25%, 28.2%, 71.2% holes
                assert got == labels + ['>=60%']
                assert [b['n'] for b in entry['buckets']] == [1, 0, 1, 0, 0, 0, 1]
            else:
                assert got == labels
    markdown = (out / 'summary.md').read_text()
    for header in ('## box', '## line_circle', '### box: by hole fraction', '| >=60% | identity | 1 |',
                   'PSNR (dB)', 'L1 (%)', 'L2 (%)', '## Skipped (0)'):
        assert header in markdown

    for method in methods:
        for family in families:
            figure = out / 'figures' / f'cases_{method}_{family}.png'
            assert imageio.read_image(str(figure)).shape[0] > 100
            for i in range(3):
                assert (out / 'outputs' / method / family / f'img{i}.png').is_file()
    for family in families:
        assert (out / 'figures' / f'scatter_{family}.png').is_file()
        for i in range(3):
            saved = imageio.read_mask(str(out / 'masks' / family / f'img{i}.png'))
            np.testing.assert_array_equal(saved, _fake_make_mask(family, 32, 32, 7, i))
    assert set(result.files) >= {'per_image.csv', 'summary.json', 'summary.md', 'scatter_box.png'}


def test_rerun_with_saved_masks_gives_identical_metrics(tmp_path):
    masks = evaluation.GeneratedMasks(('box', 'line_circle'), seed=3, make_mask=_fake_make_mask)
    first = _run(tmp_path, tmp_path / 'first', masks)
    mask_dir = evaluation.MaskDir(str(tmp_path / 'first' / 'masks'))
    assert mask_dir.families == ('box', 'line_circle')
    second = _run(tmp_path, tmp_path / 'second', mask_dir)
    assert second.ok and not (tmp_path / 'second' / 'masks').exists()

    def key(result):
        return {(r.method, r.family, r.image): (r.hole_fraction, r.psnr, r.ssim, r.l1, r.l2)
                for r in result.records}

    assert len(first.records) == 18 and key(first) == key(second)
    # One family's folder on its own is one family, named after the folder.
    third = _run(tmp_path, tmp_path / 'third', evaluation.MaskDir(str(tmp_path / 'first' / 'masks' / 'box')))
    assert {k: v for k, v in key(first).items() if k[1] == 'box'} == key(third)


def test_mask_dir_resizes_masks_of_the_original_size(tmp_path):
    _write_images(tmp_path / 'images', count=1)  # img0 is 40x48
    mask = np.zeros((40, 48), bool)
    mask[10:30, 12:36] = True
    imageio.write_mask(str(tmp_path / 'masks' / 'img0.png'), mask)
    imageio.write_mask(str(tmp_path / 'bad' / 'img0.png'), mask[:20])
    items = evaluation.list_items(str(tmp_path / 'images'))
    result = _run(tmp_path, tmp_path / 'out', evaluation.MaskDir(str(tmp_path / 'masks')), images=items)
    expected = cv2.resize(mask.astype(np.uint8), (32, 32), interpolation=cv2.INTER_NEAREST).mean()
    assert result.ok and result.records[0].hole_fraction == expected
    bad = _run(tmp_path, tmp_path / 'out_bad', evaluation.MaskDir(str(tmp_path / 'bad')), images=items)
    assert not bad.ok and bad.records == [] and 'give a mask of either size' in bad.failures[0].error


def test_mask_dir_matches_by_stem_as_batch_mode(tmp_path):
    """No mask, or two masks of one stem (img1.png and img1.bmp), fail that image with the
    message batch mode gives (one rule: `imageio.file_by_stem`); the others are evaluated."""
    from inpaint import batch
    _write_images(tmp_path / 'images', count=3)
    mask = np.zeros((40, 48), bool)
    mask[10:30, 12:36] = True
    for name in ('img0.png', 'img1.png', 'img1.bmp'):
        imageio.write_mask(str(tmp_path / 'masks' / name), mask)
    items = evaluation.list_items(str(tmp_path / 'images'))
    result = _run(tmp_path, tmp_path / 'out', evaluation.MaskDir(str(tmp_path / 'masks')),
                  images=items, methods={'identity': _identity})
    assert [r.image for r in result.records] == ['img0.png']
    jobs = batch.jobs_from_folders(str(tmp_path / 'images'), str(tmp_path / 'masks'),
                                   str(tmp_path / 'batch_out'))
    assert [f.error for f in result.failures] == [f'InputError: {job.error}' for job in jobs[1:]]
    assert 'several masks' in jobs[1].error and 'keep one' in jobs[1].error
    assert 'no mask named img2.png' in jobs[2].error


class _CompilingMethod:
    """A fake model that 'compiles' (sleeps 0.3 s) on each new input shape, as Inpainter does."""

    def __init__(self):
        self.shapes = set()

    def compilations(self):
        return len(self.shapes)

    def inpaint(self, image, mask):
        if image.shape not in self.shapes:
            self.shapes.add(image.shape)
            time.sleep(0.3)
        return image.copy()


def test_time_per_image_excludes_compilation(tmp_path):
    """At native resolution each new size compiles; the first call of the method only was
    excluded before, so later sizes were timed with their compilation."""
    model = _CompilingMethod()
    masks = evaluation.GeneratedMasks(('box',), seed=0, make_mask=_fake_make_mask)
    result = _run(tmp_path, tmp_path / 'out', masks, methods={'model': model.inpaint},
                  resolution='native')
    assert result.ok and model.compilations() == 3  # three image sizes
    seconds = [record.seconds for record in result.records]
    assert len(seconds) == 3 and max(seconds) < 0.15, seconds


def test_failing_method_is_reported_and_others_continue(tmp_path):
    calls = []

    def broken(image, mask):
        calls.append(1)
        if len(calls) > 2:  # fails from the second image on (the first is called twice: warm-up)
            raise RuntimeError('out of memory')
        return image

    masks = evaluation.GeneratedMasks(('box',), make_mask=_fake_make_mask)
    result = _run(tmp_path, tmp_path / 'out', masks, methods={'broken': broken, 'telea': evaluation.telea})
    assert [f.method for f in result.failures] == ['broken', 'broken']
    assert 'RuntimeError: out of memory' in result.failures[0].error
    assert len([r for r in result.records if r.method == 'telea']) == 3


def test_generated_masks_with_the_real_families(tmp_path):
    masks = evaluation.GeneratedMasks(('box', 'line_circle'), seed=0)
    first = _run(tmp_path, tmp_path / 'a', masks, methods={'telea': evaluation.telea})
    second = _run(tmp_path, tmp_path / 'b', masks, methods={'telea': evaluation.telea})
    assert first.ok and [r.psnr for r in first.records] == [r.psnr for r in second.records]
    assert all(0 < r.hole_fraction < 1 for r in first.records)
    with pytest.raises(imageio.InputError, match='unknown mask families'):
        evaluation.GeneratedMasks(('stars',))


# ----------------------------------------------------------------------------------------------
# Command line


def _cli_inputs(tmp_path, corrupt=()):
    names = _write_images(tmp_path / 'images', corrupt=corrupt)
    for i, name in enumerate(names):
        imageio.write_mask(str(tmp_path / 'masks' / name), _fake_make_mask('box', 32, 32, 0, i))
    flist = tmp_path / 'images' / 'list.flist'
    flist.write_text(''.join(f'{n}\n' for n in names))
    return flist


def test_cli_corrupt_image_is_skipped_and_exit_code_is_1(tmp_path, capsys):
    flist = _cli_inputs(tmp_path, corrupt=(1,))
    out = tmp_path / 'out'
    code = evaluate.main(['--flist', str(flist), '--output_dir', str(out), '--methods', 'telea,ns',
                          '--mask_dir', str(tmp_path / 'masks'), '--resolution', '32', '--no-progress'])
    assert code == 1
    assert 'img1.png' in capsys.readouterr().err
    rows = _read_csv(out / 'per_image.csv')
    assert sorted({r['image'] for r in rows}) == ['img0.png', 'img2.png'] and len(rows) == 4
    summary = json.loads((out / 'summary.json').read_text())
    assert [f['image'] for f in summary['failures']] == ['img1.png']
    assert 'cannot decode' in summary['failures'][0]['error']
    assert (out / 'figures' / 'cases_telea_masks.png').is_file()  # family named after the folder


def test_cli_all_good_exit_code_is_0(tmp_path):
    flist = _cli_inputs(tmp_path)
    code = evaluate.main(['--flist', str(flist), '--output_dir', str(tmp_path / 'out'), '--methods', 'ns',
                          '--mask_dir', str(tmp_path / 'masks'), '--resolution', '32', '--limit', '2',
                          '--no-progress', '--no-figures'])
    assert code == 0
    assert len(_read_csv(tmp_path / 'out' / 'per_image.csv')) == 2


def test_cli_missing_list_exits_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / 'nowhere' / 'val.flist'
    code = evaluate.main(['--flist', str(missing), '--output_dir', str(tmp_path / 'out'), '--methods', 'telea'])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert '\n' not in err and str(missing) in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('flags, message', [
    (['--methods', 'telea,magic'], 'magic'),
    (['--methods', 'deepfill'], '--checkpoint_dir'),
    (['--methods', 'telea', '--families', 'box'], 'not both'),
    (['--methods', 'telea', '--resolution', 'huge'], 'resolution'),
    (['--methods', 'telea', '--bogus'], 'bogus'),
])
def test_cli_bad_flags_exit_2(tmp_path, capsys, flags, message):
    flist = _cli_inputs(tmp_path)
    code = evaluate.main(['--flist', str(flist), '--output_dir', str(tmp_path / 'out'),
                          '--mask_dir', str(tmp_path / 'masks')] + flags)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert '\n' not in err and message in err


def test_cli_deepfill_with_a_missing_checkpoint_exits_2(tmp_path, capsys):
    flist = _cli_inputs(tmp_path)
    missing = tmp_path / 'no_checkpoint'
    code = evaluate.main(['--flist', str(flist), '--output_dir', str(tmp_path / 'out'), '--methods', 'deepfill',
                          '--checkpoint_dir', str(missing), '--mask_dir', str(tmp_path / 'masks')])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert '\n' not in err and str(missing) in err


@pytest.mark.parametrize('kind', sorted(DAMAGED_KINDS))
def test_cli_deepfill_with_a_damaged_checkpoint_exits_2(tmp_path, capsys, kind):
    flist = _cli_inputs(tmp_path)
    ckpt = damaged_checkpoint(str(tmp_path), kind)
    code = evaluate.main(['--flist', str(flist), '--output_dir', str(tmp_path / 'out'), '--methods', 'deepfill',
                          '--checkpoint_dir', ckpt, '--mask_dir', str(tmp_path / 'masks'), '--no-progress'])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert '\n' not in err and ckpt in err, err
    assert 'download' in err or 'export' in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('kind', ['parent_is_a_file', 'is_a_file', 'unwritable'])
def test_cli_unwritable_output_dir_exits_2_before_any_work(tmp_path, capsys, monkeypatch, kind):
    flist = _cli_inputs(tmp_path)
    (tmp_path / 'file.txt').write_text('a file')
    if kind == 'unwritable':
        if os.geteuid() == 0:
            pytest.skip('running as root: every folder is writable, so an unwritable folder cannot be made')
        (tmp_path / 'locked').mkdir()
        os.chmod(tmp_path / 'locked', 0o500)
    output_dir = {'parent_is_a_file': tmp_path / 'file.txt' / 'out', 'is_a_file': tmp_path / 'file.txt',
                  'unwritable': tmp_path / 'locked' / 'out'}[kind]
    monkeypatch.setattr(evaluation, 'run_evaluation', None)  # any work would fail loudly
    code = evaluate.main(['--flist', str(flist), '--output_dir', str(output_dir), '--methods', 'telea',
                          '--mask_dir', str(tmp_path / 'masks'), '--no-progress'])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert '\n' not in err and str(output_dir) in err, err


def test_cli_mask_dir_follows_the_one_mask_rule(tmp_path):
    """--mask_dir masks saved as 0/1 or as red strokes on black are holes where painted."""
    flist = _cli_inputs(tmp_path)
    for i, name in enumerate(sorted(os.listdir(tmp_path / 'masks'))):
        hole = _fake_make_mask('box', 32, 32, 0, i)
        path = str(tmp_path / 'masks' / name)
        if i % 2:
            cv2.imwrite(path, np.stack([0 * hole, 0 * hole, 255 * hole], 2).astype(np.uint8))  # red
        else:
            cv2.imwrite(path, hole.astype(np.uint8))  # 0/1
    code = evaluate.main(['--flist', str(flist), '--output_dir', str(tmp_path / 'out'), '--methods', 'telea',
                          '--mask_dir', str(tmp_path / 'masks'), '--resolution', '32', '--no-progress',
                          '--no-figures'])
    assert code == 0
    rows = sorted(_read_csv(tmp_path / 'out' / 'per_image.csv'), key=lambda row: row['image'])
    assert [float(row['hole_fraction']) for row in rows] == pytest.approx(
        [_fake_make_mask('box', 32, 32, 0, i).mean() for i in range(3)])


def test_cli_an_earlier_evaluation_is_replaced_only_with_overwrite(tmp_path, capsys):
    """Its reports were silently replaced; the folder's other files are never touched."""
    flist = _cli_inputs(tmp_path)
    out = tmp_path / 'out'
    argv = ['--flist', str(flist), '--output_dir', str(out), '--methods', 'telea',
            '--mask_dir', str(tmp_path / 'masks'), '--resolution', '32', '--no-progress', '--no-figures']
    assert evaluate.main(argv) == 0
    (out / 'my_notes.md').write_text('mine')
    earlier = (out / 'summary.md').read_bytes()
    capsys.readouterr()
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'holds an earlier evaluation' in err and '--overwrite' in err
    assert (out / 'summary.md').read_bytes() == earlier
    assert evaluate.main(argv + ['--overwrite']) == 0
    assert (out / 'my_notes.md').read_text() == 'mine'


def test_a_failed_report_write_keeps_the_earlier_report(tmp_path):
    """Reports were written in place: a failure mid-write (here a value JSON cannot hold) left a
    truncated summary.json where the earlier evaluation's was. Now each file is written under a
    temporary name and renamed, so the earlier one stays and no partial file is left."""
    (tmp_path / 'summary.json').write_text('{"earlier": true}\n')
    with pytest.raises(TypeError):
        reports.write_reports(str(tmp_path), [], {'unserialisable': object()})
    assert (tmp_path / 'summary.json').read_text() == '{"earlier": true}\n'
    assert sorted(os.listdir(tmp_path)) == ['per_image.csv', 'summary.json']
