"""Stopping long work cleanly on Ctrl-C (SIGINT) or SIGTERM: finish the current unit, then stop.

Used by training (finish the step, save a checkpoint) and batch inpainting (finish the image,
write it, print the summary). Both commands then exit 130.
"""
import signal
import threading


class StopRequest:
    """While active (a `with` block), SIGINT and SIGTERM set `requested` instead of killing the
    process; a second SIGINT raises KeyboardInterrupt at once. Outside the main thread (where
    Python cannot install handlers) it does nothing and `requested` stays False.

    Example:
        with StopRequest() as stop:
            for item in work:
                do(item)
                if stop.requested:
                    break
    """

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        return False
