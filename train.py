"""Trains or fine-tunes DeepFill v2 from `inpaint.yml` (see `inpaint/commands/train.py`).

    python train.py --config inpaint.yml --set log_dir=logs/run1
"""
import sys

from inpaint.commands import run, train

main = train.main  # the command's API, for scripts and tests

if __name__ == '__main__':
    sys.exit(run(main))
