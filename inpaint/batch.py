"""Batch inpainting: many (image, mask, output) jobs, from a file list or from folders; for an
edge-guided model each job may have an edge image too (see "Edge images" below).

A bad item (unreadable or empty image or mask, a mask of another size, an output that would
overwrite an input) is reported and skipped; the others still run. Each output is written as soon
as its network call returns (atomically, by `imageio.write_image`, so a half-written file never
exists under the output name). An existing output is skipped unless `overwrite`, so a rerun
resumes, but only when it decodes and has the size the input gives. Nothing else is replaced
without `overwrite` (an empty file excepted: nothing is lost), and a file that is not an image is
never replaced: such a job fails with one line naming the file. Ctrl-C (SIGINT) or SIGTERM stops after the current
network call, whose outputs are written. Inputs are only read.

Batch size: on CPU a batch of several images is hardly faster per image than one at a time
(TensorFlow, release-sized generator, 2 shared cores: 256 px 0.54 s/image alone and 0.53 in
batches of 8, best of 3; 512 px 3.0 and 2.8 s/image) but holds back every output (and the stop)
until the whole batch is done, so the default is 1; on a GPU a larger `batch_size` pays off.

Edge images (guided models): with `--input_dir`, from `--edge_dir`, matched by stem as masks are
(`imageio.file_by_stem`; an image without its edge there is a bad item). In a file list, a fourth
column names a line's edge image; a line without one takes the original's convention, the file
`<stem>_edge.<ext>` beside its input (any image extension: `photo.jpg` takes `photo_edge.jpg`;
`edges_beside`): the column wins when both exist. An image with no edge from either is inpainted
without lines (the command says how many once). The edge is read with the rule of every command
(`imageio.read_edge`) and must have its image's size.

Differences from the authors' `batch_test.py`, on purpose:
- Relative paths in a file list are resolved against the list's own folder (as
  `imageio.read_flist`), not the working directory, so a list works from anywhere.
- Any image size works; there are no --image_height/--image_width flags and nothing is resized.
- With `original=True` each image runs alone through the authors' `test.py` semantics
  (`Inpainter.inpaint(original=True)`: crop to a multiple of 8, truncating cast). Like
  `batch_test.py`, which runs one line at a time, each image thus keeps its own mask; batching
  would share the first image's mask (the original graph's batch semantics).
"""
import dataclasses
import os

import cv2
from tqdm import tqdm

from inpaint import imageio
from inpaint.imageio import InputError, read_image, read_pair, write_image
from inpaint.generator import GRID
from inpaint.interrupt import StopRequest

# What an unreadable or unwritable file raises: imageio's one-line errors, OS errors (permissions,
# I/O) and OpenCV codec errors. Anything else is a bug and is not swallowed.
_FILE_ERRORS = (InputError, OSError, cv2.error)


@dataclasses.dataclass(frozen=True)
class Job:
    """One image to inpaint.

    Attributes:
        image: input image path.
        mask: mask path (holes by `imageio.mask_holes`), same size as the image.
        output: where to write the result (the extension picks the format).
        error: a problem found while listing the job (e.g. no mask for this image), or None;
            `run_batch` reports it as a failure instead of running the job.
        edge: a guided model's edge image path (lines by `imageio.edge_lines`), same size as the
            image, or None (no lines).
    """
    image: str
    mask: str
    output: str
    error: str = None
    edge: str = None


@dataclasses.dataclass
class BatchSummary:
    """What `run_batch` did.

    Attributes:
        written: number of outputs written.
        skipped_existing: number of jobs skipped because their output already existed (and
            decoded, with the expected size).
        failed: list of (job, message); each message is one line starting with the offending
            path, `path: reason`.
        not_started: number of jobs left undone because the run was interrupted.
        interrupted: a SIGINT or SIGTERM stopped the run.
    """
    written: int = 0
    skipped_existing: int = 0
    failed: list = dataclasses.field(default_factory=list)
    not_started: int = 0
    interrupted: bool = False

    def summary_line(self):
        line = (f'{self.written} written, {self.skipped_existing} skipped existing, '
                f'{len(self.failed)} failed')
        if self.interrupted:
            line = (f'interrupted: {line}, {self.not_started} not started; run the same command '
                    f'to resume')
        return line

    def lines(self):
        """The report: one `path: reason` line per failure, then the summary line."""
        return [message for _, message in self.failed] + [self.summary_line()]


def jobs_from_flist(path):
    """Reads the authors' batch file list: one `input mask output [edge]` per line.

    The rules of `imageio.read_flist`: fields separated by whitespace (so paths cannot contain
    spaces, as in the original), blank lines and lines starting with '#' skipped, relative paths
    resolved against the list file's own folder. The optional fourth field is the line's edge
    image (guided models; see the module docstring and `edges_beside`).

    Args:
        path: the list file.
    Returns:
        non-empty list of `Job`, in file order.
    Raises:
        InputError: the list is missing, not UTF-8 text, empty, or a line does not have three or
            four fields (the message names the file and line number).
    """
    entries = imageio.read_flist(path, columns=('input', 'mask', 'output'), optional=('edge',))
    jobs = [Job(*paths[:3], edge=paths[3] if len(paths) > 3 else None) for paths in entries]
    if not jobs:
        raise InputError(f'{path}: no jobs listed; give one "input mask output" per line')
    return jobs


def edges_beside(jobs):
    """Gives each job without an edge image the original's `<stem>_edge.<ext>` beside its input,
    when there is one (`imageio.file_by_stem` with the suffix `_edge`, any image extension).

    Args:
        jobs: list of `Job`; those with an `edge` (a file list's fourth column) keep it.
    Returns:
        (jobs, the number of jobs left without an edge). Several edge images beside one input
        (`photo_edge.jpg`, `photo_edge.png`) make that job a bad item.
    """
    folders = {}  # folder -> its images by stem, listed once
    found, missing = [], 0
    for job in jobs:
        if job.edge is not None or job.error is not None:
            found.append(job)
            continue
        folder = os.path.dirname(job.image)
        if folder not in folders:
            folders[folder] = imageio.files_by_stem(folder) if os.path.isdir(folder) else {}
        candidates = folders[folder].get(imageio.stem(job.image) + EDGE_SUFFIX, [])
        if not candidates:
            missing += 1
            found.append(job)
            continue
        try:
            edge = imageio.file_by_stem(job.image, folders[folder], folder, 'edge image', EDGE_SUFFIX)
        except InputError as error:
            found.append(dataclasses.replace(job, error=str(error)))
            continue
        found.append(dataclasses.replace(job, edge=edge))
    return found, missing


EDGE_SUFFIX = '_edge'  # the original's edge image beside its input: `photo.jpg`, `photo_edge.jpg`


def jobs_from_folders(input_dir, mask, output_dir, edge_dir=None):
    """Lists a job for every image of a folder.

    Args:
        input_dir: folder of images (the extensions of `imageio.IMAGE_EXTENSIONS`, any case; sorted,
            not recursive, as `imageio.list_images`).
        mask: a folder of masks matched by file stem (`photo.jpg` takes `photo.png`, or
            `photo.<any image extension>`), or a single mask file used for every image. An image
            without a mask, or with several (`photo.png` and `photo.bmp`), gets a job whose
            `error` says so, so that `run_batch` reports it and continues.
        output_dir: outputs are `<output_dir>/<stem>.png` (created when needed).
        edge_dir: guided models: a folder of edge images matched by stem as the masks are (an
            image without its edge is a bad item too), or None (no lines).
    Returns:
        non-empty list of `Job`, sorted by input path.
    Raises:
        InputError: input_dir, mask or edge_dir missing, no images, or output_dir is a file.
    """
    if not os.path.isdir(input_dir):
        what = 'is a file, not a folder' if os.path.exists(input_dir) else 'folder not found'
        raise InputError(f'{input_dir}: input {what}; give a folder of images')
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InputError(f'{output_dir}: output folder is a file; give a folder (it is created '
                         f'if missing)')
    if edge_dir is not None and not os.path.isdir(edge_dir):
        raise InputError(f'{edge_dir}: edge folder not found; give a folder of edge images named '
                         f'as the images')
    images = imageio.list_images(input_dir)
    if os.path.isdir(mask):
        masks = imageio.files_by_stem(mask)
    elif not os.path.isfile(mask):
        raise InputError(f'{mask}: mask folder or file not found; give a folder of masks named as '
                         f'the images, or one mask file')
    edges = imageio.files_by_stem(edge_dir) if edge_dir is not None else None
    jobs = []
    for image in images:
        output = os.path.join(output_dir, imageio.stem(image) + '.png')
        try:
            mask_path = (imageio.file_by_stem(image, masks, mask) if os.path.isdir(mask)
                         else mask)
            edge = (None if edges is None
                    else imageio.file_by_stem(image, edges, edge_dir, 'edge image'))
        except InputError as error:
            jobs.append(Job(image, None, output, error=str(error)))
            continue
        jobs.append(Job(image, mask_path, output, edge=edge))
    return jobs


def run_batch(inpainter, jobs, overwrite=False, original=False, batch_size=1, progress=True):
    """Runs the jobs in order, writing each output as soon as it is ready; reports bad items.

    Jobs are read in order and run `batch_size` at a time through `inpainter.inpaint_batch` (each
    image with its own mask and edge image; images of one size share a network call); the
    outputs of a call are written before the next images are read, so at most `batch_size`
    images are held at a time.
    Results do not depend on the batching (each equals `inpainter.inpaint` alone).

    With `original=True` every image runs alone (see the module docstring).

    A job fails (is reported, not run) when: it has an `error` from listing; its output equals any
    job's image, mask or edge path (symlinks resolved) or an earlier job's output; the output is a
    folder or has an extension OpenCV cannot write; its image, mask or edge image cannot be read
    (missing, empty, corrupt) or their sizes differ; inference rejects it (e.g. an image under 8x8 in
    original mode). A job whose output exists, decodes and has the expected size is skipped
    unless `overwrite`; an existing image of another size fails (kept) unless `overwrite`; a
    file there that is not an image fails and is never replaced; an empty file is redone.
    Failures are reported once, in `BatchSummary.lines()` (the bar counts them meanwhile).

    SIGINT or SIGTERM (while this runs in the main thread) stops the run after the current
    network call, once its outputs are written; a second SIGINT stops it at once. The summary
    then counts the jobs not started.

    Args:
        inpainter: an `inference.Inpainter`.
        jobs: iterable of `Job`.
        overwrite: replace existing outputs (default: skip finished ones, which resumes a run).
        original: the authors' test.py per image (crop to a multiple of 8, truncating cast).
        batch_size: images per network call (positive int; default 1, see the module docstring).
        progress: show a tqdm progress bar (on stderr) with the rate in images/s.
    Returns:
        `BatchSummary`.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    jobs = list(jobs)
    batch_size = 1 if original else int(batch_size)
    inputs = {_key(path) for job in jobs for path in (job.image, job.mask, job.edge) if path}
    outputs = {}  # key of an output -> image of the job that claimed it
    summary = BatchSummary()
    ready = []  # [(job, image, mask, edge)] read and waiting for the network, at most batch_size
    threshold = inpainter.edge_threshold

    with tqdm(total=len(jobs), unit='img', desc='inpainting', disable=not progress,
              dynamic_ncols=True) as bar, StopRequest() as stop:

        def fail(job, message):  # reported once, in the summary's lines; counted on the bar
            summary.failed.append((job, message))
            bar.set_postfix(failed=len(summary.failed), refresh=False)
            bar.update(1)

        def run(group):
            try:
                _, images, masks, edges = zip(*group)
                results = inpainter.inpaint_batch(
                    list(images), list(masks),
                    edges=None if all(edge is None for edge in edges) else list(edges),
                    original=original, batch_size=len(group))
            except InputError as error:
                if len(group) > 1:  # find the one at fault; the others still run
                    for item in group:
                        run([item])
                    return
                job = group[0][0]
                fail(job, _message(job.image, error))
                return
            for (job, *_), result in zip(group, results):
                try:
                    write_image(job.output, result)
                except _FILE_ERRORS as error:
                    fail(job, _message(job.output, error))
                    continue
                summary.written += 1
                bar.update(1)

        try:
            for job in jobs:
                if stop.requested:
                    break
                item = _prepare(job, inputs, outputs, overwrite, original, threshold)
                if item is None:
                    summary.skipped_existing += 1
                    bar.update(1)
                elif isinstance(item, str):
                    fail(job, item)
                else:
                    ready.append(item)
                    if len(ready) == batch_size:
                        group, ready = ready, []
                        run(group)
            if ready and not stop.requested:
                group, ready = ready, []
                run(group)
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once; what is written stays
            stop.requested = True
    summary.interrupted = stop.requested
    summary.not_started = len(jobs) - summary.written - summary.skipped_existing - len(summary.failed)
    return summary


def _prepare(job, inputs, outputs, overwrite, original, threshold):
    """What to do with a job: None (skip: a finished output exists), a failure message (str), or
    (job, image, mask, edge lines or None) to run."""
    problem = job.error or _check_output(job, inputs, outputs)
    if problem:
        return problem
    try:
        if os.path.lexists(job.output):
            problem = imageio.replaceable_output(job.output, overwrite=True)  # a non-image: never
            if problem is None and not overwrite and os.path.getsize(job.output) > 0:
                problem = _unfinished(job.output, read_image(job.image).shape, original)
                if problem is None:
                    return None  # finished: skipped, so a rerun resumes
                problem = f'{job.output}: {problem}; it is kept: pass --overwrite to replace it'
            if problem:
                return problem
        image, mask = read_pair(job.image, job.mask, original=original)
        edge = None if job.edge is None else imageio.read_edge(
            job.edge, threshold, original, image.shape, job.image)
        return job, image, mask, edge
    except _FILE_ERRORS as error:
        return _message(job.image, error, job.mask, job.edge)


def _unfinished(output, image_shape, original):
    """Why the existing image `output` is not the finished result of an image of `image_shape`
    (its size is not the image's, cropped to a multiple of 8 when `original`), or None when it is."""
    height, width = image_shape[:2]
    if original:
        height, width = height // GRID * GRID, width // GRID * GRID
    found = read_image(output).shape
    if found[:2] != (height, width):
        return (f'existing output is {found[1]}x{found[0]}, not the expected {width}x{height} '
                f'(an older or foreign file)')
    return None


def _check_output(job, inputs, outputs):
    """Returns why the job's output cannot be written, or None; records the output as claimed."""
    key = _key(job.output)
    if key in inputs:
        return f'{job.output}: the output would overwrite an input image or mask; choose another output'
    if key in outputs:
        return f'{job.output}: also the output of {outputs[key]}; give each image its own output'
    outputs[key] = job.image
    try:
        imageio.check_output_path(job.output)  # a folder, an unknown type, an unwritable folder
    except InputError as error:
        return str(error)
    return None


def _message(path, error, *named):
    """One line `path: reason`; kept as is when it already starts with `path` or a `named` path.

    imageio's messages start with the file at fault (the image or its mask); others (OS errors,
    inference's checks, OpenCV) get `path` in front.
    """
    if isinstance(error, OSError) and error.strerror:
        return f'{error.filename or path}: {error.strerror}'
    text = ' '.join(str(error).split())  # OpenCV messages span lines
    if any(text.startswith(f'{name}: ') for name in (path, *named) if name):
        return text
    return f'{path}: {text}'


def _key(path):
    """Identity of a path for comparisons: absolute, symlinks resolved, case as the OS compares."""
    return os.path.normcase(os.path.realpath(path))
