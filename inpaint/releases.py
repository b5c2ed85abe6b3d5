"""The authors' released checkpoints: recognised by their index file, downloads checked.

The releases (Places2 and CelebA-HQ, `release_*_256/` on the authors' Google Drive) are TF1
checkpoint folders: `checkpoint`, `snap-0.index`, `snap-0.data-00000-of-00001` and `snap-0.meta`
(unused here). Their index files and the data files' sizes and sha256 are known (the index files
of the public copies in ../shared/release_index/, whose README gives the table below). Google
Drive downloads break off; TensorFlow then reports "Read less bytes than requested" or "Checksum
does not match" deep inside a read. So a release is recognised by its index's sha256, and its data file's size is checked before any tensor is read: one line says how much
arrived. `python -m inpaint.commands.convert --verify DIR` also hashes the data file.

Nothing here needs TensorFlow.
"""
import dataclasses
import hashlib
import os

DATA_SUFFIX = '.data-00000-of-00001'  # the releases' one data shard


@dataclasses.dataclass(frozen=True)
class Release:
    """One of the authors' releases: its name, folder, and its files' known digests."""
    name: str
    folder: str
    index_sha256: str
    data_bytes: int
    data_sha256: str


RELEASES = (
    Release('Places2', 'release_places2_256',
            'a958154593b0731d87178d7d4db9aa10179ea9d546290b19801c64a3eba68f1c', 119_996_408,
            '60ede290a7978e7a8c0692c6ebc4fdd8977b6869e3ec70c1bee94f6b1e10df37'),
    Release('CelebA-HQ', 'release_celeba_hq_256',
            'c505487d983b68ce09ca71a93faebeba1acbc84ef352c03b158bc5b8d9ba26e6', 119_996_408,
            '173b26e2908a200d15e693c4cae283dd484a488042e04eaa7104a412db60dc3c'),
)


def sha256(path, chunk_bytes=1 << 20):
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b''):
            digest.update(chunk)
    return digest.hexdigest()


def identify(prefix, releases=None):
    """The `Release` whose index file `<prefix>.index` is, or None (another checkpoint).

    Args:
        prefix: a TF1 checkpoint prefix, e.g. `checkpoints/release_places2_256/snap-0`.
        releases: the known releases (default `RELEASES`).
    """
    try:
        digest = sha256(prefix + '.index')  # index files are small (the releases': 11,495 bytes)
    except OSError:
        return None
    return next((release for release in (RELEASES if releases is None else releases)
                 if release.index_sha256 == digest), None)


def data_size_problem(prefix, release):
    """Why `release`'s data file at `prefix` is incomplete (missing, or of another size than the
    release's), as one line naming the file and saying to download it again; None when its size
    is right."""
    path = prefix + DATA_SUFFIX
    expected = f'{release.data_bytes:,} bytes'
    if not os.path.isfile(path):
        return (f'{path}: missing; the {release.name} release needs this data file ({expected}): '
                f'download it into {os.path.dirname(path) or "."}')
    size = os.path.getsize(path)
    if size < release.data_bytes:
        return (f'{path}: {size:,} of {expected} arrived (the {release.name} release\'s data file '
                f'is incomplete); download it again')
    if size > release.data_bytes:
        return (f'{path}: {size:,} bytes, not the {release.name} release\'s {expected} (the file '
                f'is damaged or not this release\'s); download it again')
    return None


def verify(prefix, releases=None):
    """Checks a download of a release: which one it is, and whether its data file is intact.

    Args:
        prefix: the checkpoint prefix of the folder (`.../snap-0`).
        releases: the known releases (default `RELEASES`).
    Returns:
        (exit code, lines): 0 a known release whose data file has the release's size and sha256;
        1 a known release whose data file is missing, incomplete or damaged (the line says which,
        and to download it again); 2 not one of the releases (its index is another's).
    """
    release = identify(prefix, releases)
    if release is None:
        names = ' or '.join(r.name for r in (RELEASES if releases is None else releases))
        return 2, [f'{prefix}.index: not the index of the authors\' {names} release; --verify '
                   f'checks downloads of those releases only']
    lines = [f'{os.path.dirname(prefix) or "."}: the authors\' {release.name} release '
             f'({release.folder}), index intact']
    problem = data_size_problem(prefix, release)
    if problem:
        return 1, lines + [problem]
    path = prefix + DATA_SUFFIX
    if sha256(path) != release.data_sha256:
        return 1, lines + [f'{path}: {release.data_bytes:,} bytes as expected, but its sha256 is '
                           f'not the release\'s (the content is damaged); download it again']
    return 0, lines + [f'{path}: intact ({release.data_bytes:,} bytes, sha256 '
                       f'{release.data_sha256[:16]}...)']
