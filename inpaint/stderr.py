"""Native libraries' noise on stderr, hidden: file descriptor 2 pointed at /dev/null in a block.

TensorFlow's C++ code writes to file descriptor 2 directly (start-up lines while it is imported,
MLIR diagnostics of the TFLite converter, the TFLite interpreter's delegate notice), past Python's
`sys.stderr`. The command lines hide its import with this (`inpaint.commands.quiet`), the exporter
its converter and interpreter (`inpaint.export_formats`).
"""
import contextlib
import os
import sys


@contextlib.contextmanager
def stderr_to_devnull():
    """Points file descriptor 2 (C++ and Python stderr alike) at /dev/null inside the block."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hide
        yield
        return
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
