"""setup.cfg: the wheel ships inpaint.yml, and `pip install '.[jax]'` resolves without TensorFlow;
the checkout's tracked files stay small enough to send to the lent GPU machine.

The two builds from a copy of the project's packaging files in a temporary folder, so that nothing is
written into the checkout (setuptools writes *.egg-info and build/ next to setup.cfg).
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

SOURCES = ('setup.cfg', 'pyproject.toml', 'README.md', 'LICENSE', 'inpaint.yml', 'inpaint')


@pytest.fixture(scope='module')
def source_copy(tmp_path_factory):
    """The files a build reads, copied with symbolic links kept as links (inpaint/inpaint.yml)."""
    folder = tmp_path_factory.mktemp('source') / 'deepfill-tf2'
    folder.mkdir()
    for name in SOURCES:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, folder / name, symlinks=True,
                            ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy2(path, folder / name)
    return folder


def pip(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, '-m', 'pip', *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def isolation_flags():
    """Build with this environment's setuptools where it has one (no download); otherwise pip
    fetches pyproject.toml's build requirements."""
    return ['--no-build-isolation'] if importlib.util.find_spec('setuptools') else []


def test_inpaint_yml_is_one_file_linked_into_the_package():
    link = os.path.join(REPO, 'inpaint', 'inpaint.yml')
    assert os.path.islink(link) and os.readlink(link) == os.path.join('..', 'inpaint.yml')
    assert os.path.isfile(os.path.join(REPO, 'inpaint.yml'))
    assert not os.path.islink(os.path.join(REPO, 'inpaint.yml'))


@pytest.mark.slow
def test_wheel_ships_inpaint_yml_and_load_config_works_anywhere(source_copy, tmp_path):
    built = pip('wheel', '--no-deps', *isolation_flags(), '-w', str(tmp_path / 'dist'), '.',
                cwd=source_copy)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / 'dist').glob('deepfill_tf2-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read('inpaint/inpaint.yml')
        archive.extractall(tmp_path / 'site')  # what pip install puts in site-packages
    with open(os.path.join(REPO, 'inpaint.yml'), 'rb') as handle:
        assert shipped == handle.read()  # the file itself, not the link
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    code = ('from inpaint.config import DEFAULT_CONFIG, load_config\n'
            'print(DEFAULT_CONFIG, load_config().cnum_generator)')
    for package_root in (tmp_path / 'site', REPO):  # an installed wheel, the checkout
        env = dict(os.environ, PYTHONPATH=str(package_root))
        run = subprocess.run([sys.executable, '-c', code], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        path, width = run.stdout.split()
        assert path == os.path.join(str(package_root), 'inpaint', 'inpaint.yml') and width == '48'


def registry_reachable(cwd):
    """Whether pip can ask its package index anything (CI has PyPI; a machine offline has not)."""
    return pip('index', 'versions', 'pip', cwd=cwd, timeout=60).returncode == 0


@pytest.mark.slow
def test_jax_install_resolves_without_tensorflow(source_copy, tmp_path):
    """`pip install '.[jax]'` resolved against the registry (dry run: nothing is installed, and
    `--ignore-installed` so that what this environment already has is listed too)."""
    if not registry_reachable(source_copy):
        pytest.skip('no package index is reachable from here: the resolution of .[jax] needs one')
    report = tmp_path / 'report.json'
    resolved = pip('install', '--dry-run', '--ignore-installed', *isolation_flags(), '--quiet',
                   '--report', str(report), '.[jax]', cwd=source_copy, timeout=600)
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    versions = {item['metadata']['name'].lower(): item['metadata']['version']
                for item in json.loads(report.read_text())['install']}
    assert not [name for name in versions if name.startswith(('tensorflow', 'tf-', 'tf_'))], versions
    assert versions['keras'].startswith('3.15.') and 'jax' in versions and 'jaxlib' in versions
    assert {'numpy', 'opencv-python-headless', 'pyyaml', 'h5py'} <= set(versions)


# The lent GPU machine copies the working tree on every call, at most 64 MiB; GPU training sends
# its training data and wheels (~30 MiB over two calls) with it, so the tracked files must leave
# that room.
TRACKED_MIB = 50


def test_tracked_files_leave_room_for_the_gpu_machine():
    """The tracked files of the checkout total at most TRACKED_MIB MiB."""
    sys.path.insert(0, os.path.join(REPO, 'scripts'))
    import gpu_session
    try:
        top = subprocess.run(['git', '-C', REPO, 'rev-parse', '--show-toplevel'], capture_output=True,
                             timeout=60)
    except FileNotFoundError:
        pytest.skip('git is not installed: cannot list the tracked files')
    if top.returncode != 0 or os.path.realpath(top.stdout.decode().strip()) != os.path.realpath(REPO):
        pytest.skip(f'{REPO} is not a git checkout: no tracked files to measure')
    sizes = gpu_session.travelling_files(untracked=False)
    total = sum(size for size, _ in sizes) / 2 ** 20
    largest = ', '.join(f'{name} ({size / 2 ** 20:.1f} MiB)' for size, name in sizes[:5])
    assert total <= TRACKED_MIB, (
        f'the tracked files total {total:.1f} MiB, more than {TRACKED_MIB} MiB: the lent GPU machine '
        f'copies the working tree with a 64 MiB limit per call, and the training data and wheels '
        f'sent with it for GPU training need the rest. Keep parity data in ../shared/golden (read '
        f'through tests/conftest.py), not in tests/data. Largest: {largest}')
