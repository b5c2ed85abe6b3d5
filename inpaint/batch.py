"""Batch inpainting: many (image, mask, output) jobs, from a file list or from folders.

A bad item (unreadable or empty image or mask, a mask of another size, an output that would
overwrite an input) is reported and skipped; the others still run. Existing outputs are skipped
unless `overwrite`, so an interrupted run resumes where it stopped (outputs are written
atomically by `imageio.write_image`, so a half-written file never exists under the output name).
Inputs are only read.

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
from absl import logging
from tqdm import tqdm

from inpaint import imageio
from inpaint.imageio import InputError, read_image, read_mask, write_image

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
    """
    image: str
    mask: str
    output: str
    error: str = None


@dataclasses.dataclass
class BatchSummary:
    """What `run_batch` did.

    Attributes:
        written: number of outputs written.
        skipped_existing: number of jobs skipped because their output already existed.
        failed: list of (job, message); each message is one line starting with the offending
            path, `path: reason`.
    """
    written: int = 0
    skipped_existing: int = 0
    failed: list = dataclasses.field(default_factory=list)

    def summary_line(self):
        return (f'{self.written} written, {self.skipped_existing} skipped existing, '
                f'{len(self.failed)} failed')

    def lines(self):
        """The report: one `path: reason` line per failure, then the summary line."""
        return [message for _, message in self.failed] + [self.summary_line()]


def jobs_from_flist(path):
    """Reads the authors' batch file list: one `input mask output` per line.

    Fields are separated by whitespace (so paths cannot contain spaces, as in the original).
    Blank lines and lines starting with '#' are skipped. Relative paths are resolved against the
    list file's own folder (the rule of `imageio.read_flist`); absolute paths are kept.

    Args:
        path: the list file.
    Returns:
        non-empty list of `Job`, in file order.
    Raises:
        InputError: the list is missing, not UTF-8 text, empty, or a line does not have exactly
            three fields (the message names the file and line number).
    """
    if not os.path.isfile(path):
        what = 'is a folder, not a file list' if os.path.isdir(path) else 'file list not found'
        raise InputError(f'{path}: {what}; give a text file with one "input mask output" per line')
    folder = os.path.dirname(os.path.abspath(path))
    jobs = []
    try:
        with open(path, encoding='utf-8') as handle:
            for number, line in enumerate(handle, 1):
                entry = line.strip()
                if not entry or entry.startswith('#'):
                    continue
                fields = entry.split()
                if len(fields) != 3:
                    raise InputError(f'{path}:{number}: expected "input mask output", got '
                                     f'{len(fields)} field(s); paths with spaces are not supported')
                jobs.append(Job(*(os.path.join(folder, field) for field in fields)))
    except UnicodeDecodeError as error:
        raise InputError(f'{path}: not a UTF-8 text file ({error.reason}); give a text file list') \
            from None
    if not jobs:
        raise InputError(f'{path}: no jobs listed; give one "input mask output" per line')
    return jobs


def jobs_from_folders(input_dir, mask, output_dir):
    """Lists a job for every image of a folder.

    Args:
        input_dir: folder of images (the extensions of `imageio.IMAGE_EXTENSIONS`, any case; sorted,
            not recursive, as `imageio.list_images`).
        mask: a folder of masks matched by file stem (`photo.jpg` takes `photo.png`, or
            `photo.<any image extension>`), or a single mask file used for every image. An image
            without a mask, or with several (`photo.png` and `photo.bmp`), gets a job whose
            `error` says so, so that `run_batch` reports it and continues.
        output_dir: outputs are `<output_dir>/<stem>.png` (created when needed).
    Returns:
        non-empty list of `Job`, sorted by input path.
    Raises:
        InputError: input_dir or mask missing, no images, or output_dir is a file.
    """
    if not os.path.isdir(input_dir):
        what = 'is a file, not a folder' if os.path.exists(input_dir) else 'folder not found'
        raise InputError(f'{input_dir}: input {what}; give a folder of images')
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InputError(f'{output_dir}: output folder is a file; give a folder (it is created '
                         f'if missing)')
    images = imageio.list_images(input_dir)
    if os.path.isdir(mask):
        by_stem = {}
        for path in imageio.folder_images(mask):
            by_stem.setdefault(_stem(path), []).append(path)
    elif os.path.isfile(mask):
        by_stem = None
    else:
        raise InputError(f'{mask}: mask folder or file not found; give a folder of masks named as '
                         f'the images, or one mask file')
    jobs = []
    for image in images:
        stem = _stem(image)
        output = os.path.join(output_dir, stem + '.png')
        if by_stem is None:
            jobs.append(Job(image, mask, output))
            continue
        candidates = by_stem.get(stem, [])
        if len(candidates) == 1:
            jobs.append(Job(image, candidates[0], output))
        elif not candidates:
            jobs.append(Job(image, None, output, error=(
                f'{image}: no mask named {stem}.png (or another image extension) in {mask}; '
                f'add one or move the image out')))
        else:
            names = ', '.join(os.path.basename(path) for path in candidates)
            jobs.append(Job(image, None, output, error=(
                f'{image}: several masks in {mask} ({names}); keep one')))
    return jobs


def run_batch(inpainter, jobs, overwrite=False, original=False, batch_size=8, progress=True):
    """Runs the jobs, batching images of the same size, and reports bad items instead of stopping.

    Jobs are read in order; images of one size are collected and run together through
    `inpainter.inpaint_batch` (each with its own mask) once `batch_size` of them are waiting. At
    most `2 * batch_size` read images are held at a time: when that many are waiting, the largest
    group runs even if incomplete. So memory stays bounded for any number of jobs, and results
    do not depend on the grouping (each image's result equals `inpainter.inpaint` alone).

    With `original=True` every image runs alone (see the module docstring).

    A job fails (is reported, not run) when: it has an `error` from listing; its output equals any
    job's image or mask path (symlinks resolved) or an earlier job's output; the output is a
    folder or has an extension OpenCV cannot write; its image or mask cannot be read (missing,
    empty, corrupt) or their sizes differ; inference rejects it (e.g. an image under 8x8 in
    original mode). A job whose output exists is skipped unless `overwrite`.

    Args:
        inpainter: an `inference.Inpainter`.
        jobs: iterable of `Job`.
        overwrite: replace existing outputs (default: skip them, which resumes a run).
        original: the authors' test.py per image (crop to a multiple of 8, truncating cast).
        batch_size: images per network call (positive int).
        progress: show a tqdm progress bar (on stderr) with the rate in images/s.
    Returns:
        `BatchSummary`.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    jobs = list(jobs)
    batch_size = 1 if original else int(batch_size)
    window = 2 * batch_size
    inputs = {_key(path) for job in jobs for path in (job.image, job.mask) if path}
    outputs = {}  # key of an output -> image of the job that claimed it
    summary = BatchSummary()
    pending = {}  # image shape -> [(job, image, mask)], at most `window` images in all

    with tqdm(total=len(jobs), unit='img', desc='inpainting', disable=not progress,
              dynamic_ncols=True) as bar:

        def fail(job, message):
            logging.warning('skipped: %s', message)
            summary.failed.append((job, message))
            bar.update(1)

        def run(group):
            try:
                results = inpainter.inpaint_batch([image for _, image, _ in group],
                                                  [mask for _, _, mask in group],
                                                  original=original, batch_size=batch_size)
            except InputError as error:
                if len(group) > 1:  # find the one at fault; the others still run
                    for item in group:
                        run([item])
                    return
                job = group[0][0]
                fail(job, _message(job.image, error))
                return
            for (job, _, _), result in zip(group, results):
                try:
                    write_image(job.output, result)
                except _FILE_ERRORS as error:
                    fail(job, _message(job.output, error))
                    continue
                summary.written += 1
                bar.update(1)

        for job in jobs:
            problem = job.error or _check_output(job, inputs, outputs)
            if problem:
                fail(job, problem)
                continue
            if os.path.exists(job.output) and not overwrite:
                summary.skipped_existing += 1
                bar.update(1)
                continue
            try:
                image, mask = _read_pair(job, original)
            except _FILE_ERRORS as error:
                fail(job, _message(job.image, error, job.mask))
                continue
            group = pending.setdefault(image.shape, [])
            group.append((job, image, mask))
            if len(group) >= batch_size:
                run(pending.pop(image.shape))
            elif sum(len(items) for items in pending.values()) >= window:
                run(pending.pop(max(pending, key=lambda shape: len(pending[shape]))))
        for shape in list(pending):
            run(pending.pop(shape))
    return summary


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


def _read_pair(job, original=False):
    """Reads the job's image (RGB uint8) and mask (bool; `original`: the original's mask rule),
    checking that their sizes agree."""
    image = read_image(job.image)
    mask = read_mask(job.mask, original=original)
    if mask.shape != image.shape[:2]:
        raise InputError(f'{job.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but the image '
                         f'{job.image} is {image.shape[1]}x{image.shape[0]}; give a mask of the '
                         f'image\'s size')
    return image, mask


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


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _key(path):
    """Identity of a path for comparisons: absolute, symlinks resolved, case as the OS compares."""
    return os.path.normcase(os.path.realpath(path))
