"""Silences TensorFlow's C++ start-up lines (oneDNN, cuInit, cpu_feature_guard) in entry points.

Call `silence_tensorflow()` before anything imports TensorFlow (or Keras on its TensorFlow
backend); `--verbose` in the command lines skips it. Python-side diagnostics still go to logging.
"""
import logging
import os


def silence_tensorflow(verbose=False):
    """Hides TensorFlow's native start-up messages unless `verbose` or the user set the variables.

    Args:
        verbose: keep TensorFlow's default logging.
    """
    if verbose:
        return
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')  # C++ INFO, WARNING and ERROR lines
    os.environ.setdefault('GRPC_VERBOSITY', 'ERROR')
    os.environ.setdefault('ABSL_MIN_LOG_LEVEL', '3')  # absl's C++ logging before InitializeLog
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
