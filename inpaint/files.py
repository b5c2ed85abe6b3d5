"""Writing files and folders without losing what was there: a temporary name beside the target,
then one rename.

Every writer of the project that creates a file or a folder a user may keep (images, weights
folders, training checkpoints, exports) goes through `written_atomically`: the content is written
under a hidden temporary name in the target's folder (`.<name>.<random>.partial`, never a name a
user could already have), and moved to the target only once it is complete, so an interrupted or
failed write leaves neither a half file under the target's name nor the temporary one.

What may be replaced is the caller's decision, made before writing (e.g. an export replaces only
an earlier export of the same format, and only with `--overwrite`); this module replaces what it is
told to. A folder replaces a folder in two renames (the old one moved aside first, then removed),
so there is no moment with neither.
"""
import contextlib
import os
import secrets
import shutil


def temporary_sibling(path):
    """A name for a temporary file or folder beside `path` that does not exist yet.

    Args:
        path: the target, e.g. `out/photo.png` -> `out/.photo.png.1a2b3c4d.partial`.
    """
    folder, name = os.path.split(os.path.abspath(path.rstrip('/\\') or path))
    while True:
        candidate = os.path.join(folder, f'.{name}.{secrets.token_hex(4)}.partial')
        if not os.path.lexists(candidate):
            return candidate


@contextlib.contextmanager
def written_atomically(path, make_parents=True):
    """Yields a temporary path to write a file or a folder into; moves it to `path` on success.

    On an exception inside the block the temporary path is removed (and any folders created for
    it, when `make_parents`) and nothing at `path` changes. On success an existing `path` of the
    same kind (file or folder) is replaced: the caller has checked that it may be.

    Args:
        path: the target file or folder.
        make_parents: create missing parent folders first (and remove them again on failure).
    """
    with _cleaned_up(path, make_parents) as temporary:
        yield temporary
        if not os.path.lexists(temporary):
            raise FileNotFoundError(f'{temporary}: the writer created nothing')
        replace(temporary, path)


@contextlib.contextmanager
def text_written_atomically(path, newline=None):
    """Yields a UTF-8 text handle to write `path`'s content into (`written_atomically`)."""
    with written_atomically(path) as temporary:
        with open(temporary, 'w', encoding='utf-8', newline=newline) as handle:
            yield handle


@contextlib.contextmanager
def files_written_atomically(folder, last=()):
    """Yields a temporary folder beside `folder`'s files; on success moves each file written
    there into `folder` by one rename (the names in `last` last), for formats of several files
    in a shared folder (a TF1 checkpoint: `.index`, `.data-*`, then its `checkpoint` state file).

    Args:
        folder: where the files go (created if missing, and removed again on failure).
        last: file names to move after the others.
    """
    with _cleaned_up(os.path.join(folder, 'staging'), True) as staging:
        os.mkdir(staging)
        yield staging
        for name in sorted(os.listdir(staging), key=lambda name: (name in last, name)):
            os.replace(os.path.join(staging, name), os.path.join(folder, name))
        os.rmdir(staging)


@contextlib.contextmanager
def _cleaned_up(path, make_parents):
    """A temporary name beside `path`; on an exception, it and the folders made for it go."""
    created = make_parent_folders(path) if make_parents else []
    temporary = temporary_sibling(path)
    try:
        yield temporary
    except BaseException:
        remove_made(temporary)
        for folder in reversed(created):  # innermost first; only the ones made here, if empty
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise


def replace(source, target):
    """Moves `source` to `target`, replacing an existing `target` of the same kind: a file by a
    file (one rename), a folder by a folder (two renames: the old one aside, the new one in, then
    the old one removed). A folder is never replaced by a file nor a file by a folder (OSError)."""
    if os.path.isdir(target) and not os.path.islink(target):
        if not os.path.isdir(source):
            raise IsADirectoryError(21, 'Is a directory: a file never replaces it', target)
        aside = temporary_sibling(target)
        os.rename(target, aside)
        try:
            os.rename(source, target)
        except BaseException:
            os.rename(aside, target)
            raise
        shutil.rmtree(aside)
    else:
        os.replace(source, target)


def remove_made(path):
    """Removes a temporary file or folder this module named (`temporary_sibling`); nothing else."""
    if not os.path.basename(path).endswith('.partial'):
        raise ValueError(f'{path}: not a temporary name of inpaint.files; refusing to remove it')
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def make_parent_folders(path):
    """Creates the missing folders above `path`; returns them, outermost first."""
    missing = []
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for folder in reversed(missing):
        os.mkdir(folder)
    return list(reversed(missing))


def is_same_or_inside(path, folder):
    """Whether `path` is `folder` or lies inside it (symlinks resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
