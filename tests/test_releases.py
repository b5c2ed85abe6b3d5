"""inpaint/releases.py and the loader on the authors' releases, downloaded badly.

The real index files of both releases (tests/data/release_index, copied from
../shared/release_index) with data files of the wrong size or content, made as sparse files (no
120 MB of real bytes are written)."""
import os
import shutil

import numpy as np
import pytest

from conftest import GOLDEN_CHECKPOINT, HERE, shared_path
from inpaint import releases
from inpaint.checkpoint import CheckpointError, load_models, resolve_prefix
from inpaint.commands.convert import main

INDEX = os.path.join(HERE, 'data', 'release_index')
NAMES = {'release_places2_256': 'Places2', 'release_celeba_hq_256': 'CelebA-HQ'}
DATA_BYTES = 119_996_408


def download(tmp_path, folder='release_places2_256', data_bytes=None):
    """A copy of a release's index and state file, with a sparse data file of `data_bytes`
    zeros (None: no data file); returns the folder."""
    target = tmp_path / folder
    shutil.copytree(os.path.join(INDEX, folder), target)
    if data_bytes is not None:
        with open(target / ('snap-0' + releases.DATA_SUFFIX), 'wb') as handle:
            handle.truncate(data_bytes)
    return str(target)


def test_index_copies_equal_the_shared_ones():
    for folder in NAMES:
        for name in ('snap-0.index', 'checkpoint'):
            with open(os.path.join(INDEX, folder, name), 'rb') as mine, \
                    open(shared_path('release_index', folder, name), 'rb') as theirs:
                assert mine.read() == theirs.read(), (folder, name)


@pytest.mark.parametrize('folder', sorted(NAMES))
def test_a_release_is_recognised_by_its_index(tmp_path, folder):
    release = releases.identify(resolve_prefix(download(tmp_path, folder)))
    assert (release.name, release.folder, release.data_bytes) == (NAMES[folder], folder, DATA_BYTES)
    assert releases.identify(resolve_prefix(GOLDEN_CHECKPOINT)) is None


@pytest.mark.parametrize('data_bytes, words', [
    (None, ['snap-0.data-00000-of-00001: missing; the Places2 release needs this data file '
            '(119,996,408 bytes)']),
    (51_234_000, ['snap-0.data-00000-of-00001: 51,234,000 of 119,996,408 bytes arrived (the '
                  "Places2 release's data file is incomplete); download it again"]),
    (0, ['0 of 119,996,408 bytes arrived']),
    (DATA_BYTES + 10, ['119,996,418 bytes, not the Places2 release', 'download it again']),
])
def test_a_data_file_of_the_wrong_size_is_one_line_before_any_read(tmp_path, data_bytes, words):
    """On every backend, with or without TensorFlow: the size is checked before TensorFlow reads."""
    folder = download(tmp_path, data_bytes=data_bytes)
    with pytest.raises(CheckpointError) as error:
        load_models(folder)
    message = str(error.value)
    assert message.startswith(os.path.join(folder, 'snap-0.data-00000-of-00001: '))
    assert '\n' not in message and all(word in message for word in words), message


@pytest.mark.tf_only
def test_a_checksum_failure_names_the_data_file(tmp_path):
    """Right size, wrong content (a sparse file of zeros): TensorFlow's per-tensor CRC32C fails."""
    folder = download(tmp_path, 'release_celeba_hq_256', DATA_BYTES)
    with pytest.raises(CheckpointError) as error:
        load_models(folder, with_discriminator=False)
    assert str(error.value) == (
        f'{folder}/snap-0.data-00000-of-00001: tensor inpaint_net/conv1/kernel does not match its '
        f'checksum in {folder}/snap-0.index (the data file is damaged); download it again (python -m '
        f"inpaint.commands.convert --verify {folder} checks it against the CelebA-HQ release's sha256)")


@pytest.mark.tf_only
def test_a_checksum_failure_of_another_checkpoint_names_its_data_file(tmp_path):
    folder = tmp_path / 'mine'
    shutil.copytree(GOLDEN_CHECKPOINT, folder)
    data = folder / 'snap-0.data-00000-of-00001'
    damaged = bytearray(data.read_bytes())
    damaged[100] ^= 0xFF
    data.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match=r'^\S+/mine/snap-0\.data-00000-of-00001: tensor \S+ '
                                              r'does not match its checksum .*download or export it '
                                              r'again$'):
        load_models(str(folder))


@pytest.mark.tf_only
@pytest.mark.parametrize('folder', sorted(NAMES))
def test_the_strict_loaders_table_is_the_releases_model_tensors(folder):
    """The names and shapes the loader asks for are exactly the release's 102 model tensors (its
    index opens without the data file)."""
    from inpaint.checkpoint import discriminator_table, generator_table
    from inpaint.discriminator import build_discriminator
    from inpaint.generator import build_generator
    from inpaint.tf1_checkpoint import read_tensors
    shapes, _ = read_tensors(os.path.join(INDEX, folder, 'snap-0'))
    model = {name: shape for name, shape in shapes.items()
             if name.startswith(('inpaint_net/', 'discriminator/'))
             and not name.endswith(('/Adam', '/Adam_1'))}
    table = {**generator_table(build_generator(48)), **discriminator_table(build_discriminator(64, 4))}
    assert len(model) == len(table) == 102
    assert model == {name: tuple(variable.shape) for name, variable in table.items()}
    assert sorted(set(shapes) - set(model)) == sorted(
        ['beta1_power', 'beta2_power', 'global_step', 'lr']
        + [name for name in shapes if name.endswith(('/Adam', '/Adam_1'))])


@pytest.mark.parametrize('data_bytes, code, last', [
    (None, 1, 'missing'),
    (1_000_000, 1, '1,000,000 of 119,996,408 bytes arrived'),
    (DATA_BYTES, 1, "119,996,408 bytes as expected, but its sha256 is not the release's (the content "
                    'is damaged); download it again'),
])
def test_verify_says_which_release_and_whether_its_data_file_is_intact(tmp_path, capsys, data_bytes,
                                                                       code, last):
    folder = download(tmp_path, data_bytes=data_bytes)
    assert main(['--verify', folder]) == code
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{folder}: the authors' Places2 release (release_places2_256), index intact"
    assert len(out) == 2 and last in out[1], out


def test_verify_an_intact_download(tmp_path, capsys, monkeypatch):
    """Exit 0: a release table whose entry is the golden checkpoint (its real files' digests)."""
    folder = tmp_path / 'golden'
    shutil.copytree(GOLDEN_CHECKPOINT, folder)
    prefix = str(folder / 'snap-0')
    data = prefix + releases.DATA_SUFFIX
    golden = releases.Release('Golden', 'golden', releases.sha256(prefix + '.index'),
                              os.path.getsize(data), releases.sha256(data))
    monkeypatch.setattr(releases, 'RELEASES', (golden,))
    assert main(['--verify', str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{folder}: the authors' Golden release (golden), index intact",
                   f'{data}: intact ({golden.data_bytes:,} bytes, sha256 {golden.data_sha256[:16]}...)']


@pytest.mark.parametrize('path', [GOLDEN_CHECKPOINT, '/nonexistent/release'])
def test_verify_refuses_what_is_not_a_release(capsys, path):
    assert main(['--verify', path]) == 2
    captured = capsys.readouterr()
    assert captured.out == '' and len(captured.err.splitlines()) == 1
    assert captured.err.startswith(f'python -m inpaint.commands.convert: error: {path}')


def test_verify_takes_no_conversion_arguments(capsys):
    assert main(['--verify', GOLDEN_CHECKPOINT, 'somewhere']) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and '--verify DIR takes no SRC or DST' in err
