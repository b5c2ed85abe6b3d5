"""Train or fine-tune DeepFill v2 from `inpaint.yml` (see `inpaint/train.py`).

    python train.py --config inpaint.yml --set log_dir=logs/run1

The same command is installed as `deepfill-train`. TensorFlow's start-up lines are hidden
unless `--verbose`.
"""
import sys

from inpaint import commands
from inpaint.train import main  # noqa: F401  (the command's API)

if __name__ == '__main__':
    sys.exit(commands.run(main))
