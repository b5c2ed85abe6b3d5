"""Inpaint an image, or many, with the original test.py's flags (see `inpaint/infer.py`).

    python test.py --image input.png --mask mask.png --output output.png --checkpoint_dir DIR

The same command is installed as `deepfill-inpaint`. TensorFlow's start-up lines are hidden
unless `--verbose`.
"""
import sys

from inpaint import commands
from inpaint.infer import build_parser, check_flags, main  # noqa: F401  (the command's API)

if __name__ == '__main__':
    sys.exit(commands.run(main))
