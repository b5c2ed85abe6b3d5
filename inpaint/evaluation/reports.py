"""Reports and figures of an evaluation: per_image.csv, summary.json, summary.md, figures/*.png."""
import csv
import dataclasses
import json
import math
import os

import numpy as np

from inpaint import files
from inpaint.evaluation.metrics import METRICS

# Hole-fraction buckets [lower, upper): 0-10%, ..., 50-60%, then >=60% (reported only if used).
BUCKET_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


@dataclasses.dataclass
class Record:
    """One row of per_image.csv: a method's result on one image with one family's mask."""
    method: str
    family: str
    image: str
    hole_fraction: float
    psnr: float
    ssim: float
    l1: float
    l2: float
    seconds: float


CSV_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


METRIC_DEFINITIONS = {
    'psnr': 'dB, 10*log10(255^2/MSE), MSE over all pixels and channels of the whole image; inf if identical',
    'ssim': 'Wang et al. 2004, Gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, L 255, mean over channels',
    'l1': 'percent, 100*mean|out-gt| with images scaled to [0,1], whole image',
    'l2': 'percent, 100*mean((out-gt)^2) with images scaled to [0,1], whole image',
    'hole_fraction': 'fraction of hole pixels in the mask',
    'seconds': 'wall time of one method call on one image (first call per method excluded; a '
               'call that compiled a new shape is timed again)',
    'std': 'population standard deviation (ddof 0)',
}
_STAT_FIELDS = METRICS + ('hole_fraction', 'seconds')


def _stats(values):
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return {'mean': None, 'std': None}
    if not np.all(np.isfinite(values)):  # inf PSNR: the mean is inf, the spread undefined
        return {'mean': float(np.mean(values)), 'std': None}
    return {'mean': float(np.mean(values)), 'std': float(np.std(values))}


def bucket_label(lower, upper):
    return f'>={lower:.0%}' if upper is None else f'{lower * 100:.0f}-{upper * 100:.0f}%'


def buckets(records, with_top=None):
    """Hole-fraction buckets [lower, upper) 0-10%, ..., 50-60% always, >=60% only if used.

    Args:
        records: `Record`s.
        with_top: include the >=60% bucket; by default only if one of `records` falls in it.
    Returns:
        list of (label, lower, upper or None, records in it).
    """
    edges = BUCKET_EDGES
    out = [(bucket_label(lo, hi), lo, hi, [r for r in records if lo <= r.hole_fraction < hi])
           for lo, hi in zip(edges[:-1], edges[1:])]
    top = [r for r in records if r.hole_fraction >= edges[-1]]
    if top or with_top:
        out.append((bucket_label(edges[-1], None), edges[-1], None, top))
    return out


def summarize(records, methods, families):
    """Per method x family: n, mean and std of every metric, overall and per hole-fraction bucket.

    Returns:
        {'results': {method: {family: {'n', <metric>: {'mean', 'std'}, ..., 'buckets': [...]}}}}
    """
    results = {}
    for method in methods:
        results[method] = {}
        for family in families:
            # The same bucket list for every method of a family, even if one skipped the >=60% image.
            with_top = any(r.family == family and r.hole_fraction >= BUCKET_EDGES[-1] for r in records)
            rows = [r for r in records if r.method == method and r.family == family]
            entry = {'n': len(rows), **{k: _stats([getattr(r, k) for r in rows]) for k in _STAT_FIELDS}}
            entry['buckets'] = [
                {'bucket': label, 'lower': lo, 'upper': hi, 'n': len(part),
                 **{k: _stats([getattr(r, k) for r in part]) for k in METRICS}}
                for label, lo, hi, part in buckets(rows, with_top)]
            results[method][family] = entry
    return {'results': results}


def _json_safe(value):
    """Strict JSON: non-finite floats become the strings 'inf', '-inf', 'nan'."""
    if isinstance(value, float) and not math.isfinite(value):
        return 'nan' if math.isnan(value) else ('inf' if value > 0 else '-inf')
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_reports(output_dir, records, summary):
    """Writes per_image.csv, summary.json and summary.md; returns {name: path}."""
    paths = {name: os.path.join(output_dir, name) for name in ('per_image.csv', 'summary.json', 'summary.md')}
    with files.text_written_atomically(paths['per_image.csv'], newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for r in records:
            writer.writerow([r.method, r.family, r.image] +
                            [repr(float(getattr(r, k))) for k in CSV_FIELDS[3:]])
    with files.text_written_atomically(paths['summary.json']) as handle:
        json.dump(_json_safe(summary), handle, indent=2, allow_nan=False)
        handle.write('\n')
    with files.text_written_atomically(paths['summary.md']) as handle:
        handle.write(summary_markdown(summary))
    return paths


def _fmt(stat, digits):
    if stat['mean'] is None:
        return '-'
    mean = f'{stat["mean"]:.{digits}f}'
    return mean if stat['std'] is None else f'{mean} ± {stat["std"]:.{digits}f}'


def summary_markdown(summary):
    """The Markdown report: settings, one table per family, then per hole-fraction bucket."""
    s = summary['settings']
    lines = ['# Inpainting evaluation', '',
             f'{s["images"]} images, resolution {s["resolution"]}, masks: {json.dumps(s["masks"])}.',
             f'Methods receive the {s["method_input"]}. Metrics over the {s["metrics_over"]}; '
             'values are mean ± std (population).', '',
             '- PSNR (dB): 10 log10(255² / MSE), MSE over all pixels and channels.',
             '- SSIM: Wang et al. 2004, Gaussian 11x11 σ 1.5, K1 0.01, K2 0.03, L 255.',
             '- L1 (%): 100 · mean |output − truth| on images scaled to [0, 1].',
             '- L2 (%): 100 · mean (output − truth)² on images scaled to [0, 1].',
             '- s/image: wall time of one method call (first call of each method not timed; a call that '
             'compiled a new shape is timed again).', '']
    results = summary['results']
    families = list(next(iter(results.values()))) if results else []
    for family in families:
        lines += [f'## {family}', '',
                  '| method | n | holes (%) | PSNR (dB) | SSIM | L1 (%) | L2 (%) | s/image |',
                  '|---|---|---|---|---|---|---|---|']
        for method, per_family in results.items():
            e = per_family[family]
            holes = e['hole_fraction']
            holes = {k: (None if v is None else 100 * v) for k, v in holes.items()}
            lines.append(f'| {method} | {e["n"]} | {_fmt(holes, 1)} | {_fmt(e["psnr"], 2)} | '
                         f'{_fmt(e["ssim"], 4)} | {_fmt(e["l1"], 2)} | {_fmt(e["l2"], 3)} | '
                         f'{_fmt(e["seconds"], 4)} |')
        lines += ['', f'### {family}: by hole fraction', '',
                  '| holes | method | n | PSNR (dB) | SSIM | L1 (%) | L2 (%) |', '|---|---|---|---|---|---|---|']
        per_method = [(method, per_family[family]['buckets']) for method, per_family in results.items()]
        for position in range(len(per_method[0][1])):  # the same buckets for every method
            for method, method_buckets in per_method:
                b = method_buckets[position]
                lines.append(f'| {b["bucket"]} | {method} | {b["n"]} | {_fmt(b["psnr"], 2)} | '
                             f'{_fmt(b["ssim"], 4)} | {_fmt(b["l1"], 2)} | {_fmt(b["l2"], 3)} |')
        lines.append('')
    failures = summary.get('failures', [])
    lines += [f'## Skipped ({len(failures)})', '']
    lines += [f'- {" ".join(p for p in (f["image"], f["family"], f["method"]) if p)}: {f["error"]}'
              for f in failures]
    return '\n'.join(lines).rstrip('\n') + '\n'


def pick_cases(records):
    """Best, median and worst record by PSNR for each (method, family) that has records.

    Returns:
        {(method, family): [('best', r), ('median', r), ('worst', r)]}, fewer if n < 3 (no repeats).
    """
    groups = {}
    for r in records:
        groups.setdefault((r.method, r.family), []).append(r)
    picks = {}
    for key, rows in groups.items():
        ranked = sorted(rows, key=lambda r: r.psnr, reverse=True)  # stable: ties keep list order
        chosen, seen = [], set()
        for label, position in (('best', 0), ('median', (len(ranked) - 1) // 2), ('worst', len(ranked) - 1)):
            if position not in seen:
                seen.add(position)
                chosen.append((label, ranked[position]))
        picks[key] = chosen
    return picks


def write_figures(output_dir, records, cases, methods, families):
    """Case figures (Original | Mask | Output | Ground truth) and PSNR/SSIM-vs-holes scatters.

    Args:
        cases: {(method, family): [(label, record, masked, mask, output, truth)]}.
    Returns:
        {file name: path}.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    folder = os.path.join(output_dir, 'figures')
    os.makedirs(folder, exist_ok=True)
    files = {}
    titles = ('Original (input)', 'Mask', 'Output', 'Ground truth')
    for (method, family), rows in cases.items():
        fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3.3 * len(rows)), squeeze=False)
        for axis_row, (label, record, masked, mask, output, truth) in zip(axes, rows):
            panels = (masked, mask.astype(np.float32), output, truth)
            for ax, title, panel in zip(axis_row, titles, panels):
                if panel.ndim == 2:  # the mask: white = hole
                    ax.imshow(panel, cmap='gray', vmin=0, vmax=1, interpolation='nearest')
                else:
                    ax.imshow(panel, interpolation='nearest')
                ax.set_title(title, fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
            axis_row[0].set_ylabel(label, fontsize=11)
            axis_row[0].set_xlabel(os.path.basename(record.image), fontsize=8)
            axis_row[2].set_xlabel(f'PSNR {record.psnr:.2f} dB   SSIM {record.ssim:.4f}   '
                                   f'holes {record.hole_fraction:.1%}', fontsize=9)
        fig.suptitle(f'{method} on {family} masks: best, median and worst by PSNR', fontsize=11)
        fig.tight_layout()
        name = f'cases_{method}_{family}.png'
        files[name] = os.path.join(folder, name)
        fig.savefig(files[name], dpi=80)
        plt.close(fig)
    for family in families:
        fig, (ax_psnr, ax_ssim) = plt.subplots(1, 2, figsize=(11, 4.2))
        for method in methods:
            rows = [r for r in records if r.method == method and r.family == family]
            finite = [r for r in rows if math.isfinite(r.psnr)]
            ax_psnr.scatter([100 * r.hole_fraction for r in finite], [r.psnr for r in finite], s=10,
                            alpha=0.7, label=method)
            ax_ssim.scatter([100 * r.hole_fraction for r in rows], [r.ssim for r in rows], s=10,
                            alpha=0.7, label=method)
        for ax, metric in ((ax_psnr, 'PSNR (dB, whole image)'), (ax_ssim, 'SSIM (whole image)')):
            ax.set_xlabel('hole fraction (%)')
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f'{family} masks: metrics vs hole fraction')
        fig.tight_layout()
        name = f'scatter_{family}.png'
        files[name] = os.path.join(folder, name)
        fig.savefig(files[name], dpi=80)
        plt.close(fig)
    return files
