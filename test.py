"""Inpaints an image, or many, with the original test.py's flags (see `inpaint/commands/inpaint.py`).

    python test.py --image input.png --mask mask.png --output output.png --checkpoint_dir DIR
"""
import sys

from inpaint.commands import inpaint, run

main = inpaint.main  # the command's API, for scripts and tests

if __name__ == '__main__':
    sys.exit(run(main))
