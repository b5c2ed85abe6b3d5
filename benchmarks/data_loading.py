"""Times the training input pipeline (`inpaint.data.make_dataset`) alone: images per second that
its decoding threads deliver, to compare with what the GPU consumes (benchmarks/training.py's
images/s at the same batch), so that decoding does not starve the GPU.

Per thread count: the pipeline over the given list (e.g. the WebP pieces that
`scripts/gpu_session.py --prepare` packs), 256x256, batch `--batch`; the first `--warmup` batches
are not timed, then batches are drawn for `--seconds`. Prints a Markdown table with the rate per
decoding thread, which is what scales to a machine with more cores (as long as there are cores
for the threads).

    .venv/bin/python benchmarks/data_loading.py LIST [LIST ...] [--threads 1,2] [--batch 64]
        [--seconds 10]
"""
import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def rate(paths, threads, batch, seconds, warmup):
    """Images per second the pipeline delivers with `threads` decoding threads."""
    from inpaint.data import make_dataset
    with make_dataset(paths, (256, 256), False, batch, seed=0, num_parallel_calls=threads) as stream:
        for _ in range(warmup):
            next(stream)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            count += len(next(stream))
        return count / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('lists', nargs='+', help='file lists or folders of training images')
    parser.add_argument('--threads', default='1,2', help='decoding thread counts, comma-separated')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--warmup', type=int, default=2)
    args = parser.parse_args(argv)
    from inpaint.data import list_images
    paths = [path for source in args.lists for path in list_images(source)]
    print(f'{len(paths)} images, 256x256, batch {args.batch}, {os.cpu_count()} CPU core(s)\n')
    print('| decoding threads | images/s | per thread |')
    print('|---|---|---|')
    for threads in (int(item) for item in args.threads.split(',')):
        images = rate(paths, threads, args.batch, args.seconds, args.warmup)
        print(f'| {threads} | {images:.0f} | {images / threads:.0f} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
