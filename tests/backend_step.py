"""One training iteration (a D step, then a G step) on the running Keras backend.

The cross-backend test in test_training.py runs the same iteration in its own process and, with
another backend, through this script, then compares the two:

    KERAS_BACKEND=jax python tests/backend_step.py INPUTS.npz OUT.npz KEY=VALUE...

INPUTS.npz holds `batch` (B, H, W, 3) BGR float32 0..255 and `mask` (1 or B, H, W, 1); the
KEY=VALUE pairs are inpaint.yml overrides (as train.py's `--set`), with `model_restore` naming the
weights both sides start from. OUT.npz receives the losses (`d/<name>`, `g/<name>`) and, after
the iteration, every weight under the authors' name (`w/<name>`, the spectral-norm `u` included).
"""
import os
import sys

import numpy as np


def one_iteration(gan, batch, mask):
    """Runs `gan.d_step` then `gan.g_step` on (batch, mask).

    Returns:
        {'d/<loss>': float, 'g/<loss>': float, 'w/<authors' name>': array after the iteration}.
    """
    from keras import ops
    from inpaint.checkpoint import discriminator_table, generator_table
    result = {f'd/{name}': value for name, value in gan.d_step(batch, mask).items()}
    result.update({f'g/{name}': value for name, value in gan.g_step(batch, mask).items()})
    tables = {**generator_table(gan.generator), **discriminator_table(gan.discriminator)}
    result.update({f'w/{name}': np.array(ops.convert_to_numpy(variable.value))
                   for name, variable in tables.items()})
    return result


def main(argv):
    inputs, output, *overrides = argv
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from inpaint import commands
    commands.quiet_tensorflow([])
    import keras
    from inpaint.config import DEFAULT_CONFIG, load_config
    from inpaint.run_state import RunState
    run = RunState(load_config(DEFAULT_CONFIG, overrides))
    data = np.load(inputs)
    result = one_iteration(run.gan, data['batch'], data['mask'])
    np.savez(output, backend=keras.backend.backend(), **result)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
