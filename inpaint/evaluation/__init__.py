"""Evaluation: image-quality metrics, classical baselines, the evaluation run, its reports and figures.

One module each: `metrics` (psnr, ssim, l1, l2; PSNR and SSIM through scikit-image), `baselines` (OpenCV's Telea and Navier-Stokes),
`run` (image lists, resolution, mask sources, `run_evaluation`), `reports` (CSV, JSON, Markdown,
figures). The names below are the package's API.

The command line is `inpaint/commands/evaluate.py`:

    python -m inpaint.commands.evaluate --flist /work/shared/data/imagenet_sample/val.flist \
        --output_dir runs/eval --methods deepfill,telea,ns --checkpoint_dir checkpoints/places2

What is measured (the project's founding document: PSNR and SSIM on ImageNet photos, two mask
families, best and typical cases, metrics against the masked fraction):
- Every metric is computed over the WHOLE image (all pixels, all channels), output against the
  ground truth, on uint8 RGB arrays converted to float64. Known pixels are kept by every method, so
  the error comes from the holes only, but it is averaged over the full image: scores therefore
  depend on the hole fraction, which is why the reports break them down by hole-fraction bucket.
- `psnr`: 10 log10(255^2 / MSE), MSE over all pixels and channels; +inf for identical images.
- `ssim`: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  L = 255, per channel, averaged: `skimage.metrics.structural_similarity` (borders reflected, then
  a 5-pixel strip dropped). `psnr` is `skimage.metrics.peak_signal_noise_ratio`.
- `l1`: mean absolute error on images scaled to [0, 1], in percent (100 * mean|a - b| / 255), as the
  DeepFill papers report "mean l1 error".
- `l2`: mean squared error on images scaled to [0, 1], in percent (100 * mean((a - b) / 255)^2), as
  the DeepFill papers report "mean l2 error".
- `seconds`: wall time of one call of the method on one image (the first call of each method is
  made twice and only the second is timed, so one-time set-up such as graph tracing is excluded).

Protocol of `run_evaluation`:
- Images come from a file list (one path per line, relative paths resolved against the list's
  folder, as the original's lists) or from a folder (its image files, sorted by name). The position
  of an image in that list is its mask index.
- Resolution: an integer N (default 256) resizes every image to N x N, as the release was trained
  (the original's loader resizes when `random_crop` is off; aspect ratio is not kept): INTER_AREA
  when shrinking, INTER_LINEAR when enlarging. `'native'` keeps each image's size (the model pads
  internally). Images must be at least 11x11 (the SSIM window).
- Masks: generated families (`'box'`, `'line_circle'` from `inpaint.masks.make_mask(family, h, w,
  seed, index)`), each saved as `<output_dir>/masks/<family>/<stem>.png` (255 = hole), or mask files
  from a folder matched by image stem (`MaskDir`). A run with `MaskDir(<output_dir>/masks)` repeats
  a generated run exactly.
- Every method receives the image with its holes painted white (255), like the original's test
  inputs, and the bool mask. It never sees the ground truth under the holes (`cv2.inpaint` does read
  pixels under the hole's edge, so this matters for the baselines).
- A bad image, a bad mask file or a method that fails on one image is reported (stderr, and the
  `failures` of the result and of summary.json) and skipped; the run goes on.

Outputs in `output_dir`: per_image.csv, summary.json, summary.md, figures/*.png, masks/ (generated
masks), outputs/<method>/<family>/<stem>.png (with `save_outputs`).
"""
from inpaint.evaluation.baselines import BASELINES, INPAINT_RADIUS, navier_stokes, telea
from inpaint.evaluation.metrics import (METRICS, MIN_SIDE, compute_metrics, l1_error, l2_error,
                                        psnr, ssim)
from inpaint.evaluation.reports import (BUCKET_EDGES, CSV_FIELDS, METRIC_DEFINITIONS, Record,
                                        bucket_label, buckets, pick_cases, summarize,
                                        summary_markdown, write_figures, write_reports)
from inpaint.evaluation.run import (HOLE_VALUE, METHODS, EvaluationResult, Failure, GeneratedMasks,
                                    ImageItem, MaskDir, build_methods, list_items, parse_resolution,
                                    report_folder_problem, resize_image, run_evaluation)

__all__ = ['BASELINES', 'BUCKET_EDGES', 'CSV_FIELDS', 'EvaluationResult', 'Failure',
           'GeneratedMasks', 'HOLE_VALUE', 'INPAINT_RADIUS', 'ImageItem', 'METHODS', 'METRICS',
           'METRIC_DEFINITIONS', 'MIN_SIDE', 'MaskDir', 'Record', 'bucket_label', 'buckets',
           'build_methods', 'compute_metrics', 'l1_error', 'l2_error', 'list_items', 'navier_stokes',
           'parse_resolution', 'pick_cases', 'psnr', 'report_folder_problem', 'resize_image',
           'run_evaluation', 'ssim', 'summarize', 'summary_markdown', 'telea', 'write_figures',
           'write_reports']
