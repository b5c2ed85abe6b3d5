"""Trains or fine-tunes DeepFill v2 from `inpaint.yml`: the command behind `train.py` and the
`deepfill-train` console script (same flags).

    python train.py                                  # the project's inpaint.yml
    python train.py --config my.yml --set batch_size=8 --set log_dir=logs/run1
    python train.py --set model_restore=checkpoints/places2   # fine-tune from a release

    KERAS_BACKEND=jax python train.py --config C --coordinator HOST:PORT --num_processes 2 --process_id I

Rerunning with the same log_dir resumes from its latest intact checkpoint (to the same max_iters).
Several processes (JAX) join through process 0's HOST:PORT, or by themselves under SLURM's `srun`;
on TensorFlow, `TF_CONFIG` describes the workers.
The resolved configuration, TensorBoard summaries and checkpoints go into log_dir. Ctrl-C (SIGINT)
or SIGTERM finishes the current step and saves a checkpoint before stopping. Any Keras backend
(`KERAS_BACKEND=tensorflow|jax|torch`).

Exit codes: 0 training reached max_iters; 1 stopped on a NaN or Inf loss (the last checkpoint is
kept); 2 bad flags, configuration, input files or checkpoint, with a one-line message; 3 another
process of a multi-process run died or cannot be reached (one line); 130 interrupted (SIGINT or
SIGTERM, on this process or another of the run), with a one-line message naming the checkpoint.
TensorFlow's start-up lines are hidden unless `--verbose`.
"""
import argparse
import os
import sys

from inpaint import commands
from inpaint.config import DEFAULT_CONFIG, ConfigError, load_config
from inpaint.imageio import InputError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so `main` returns the exit code."""

    def error(self, message):
        raise ConfigError(message)  # main prints it after 'train.py: '


def _parser():
    parser = _Parser(prog='train.py', description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='the YAML config (default: inpaint.yml)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key (value in YAML, e.g. img_shapes=[64,64,3]); repeatable')
    parser.add_argument('--coordinator', metavar='HOST:PORT',
                        help='several processes (JAX): process 0\'s address, the same for all')
    parser.add_argument('--num_processes', type=int, metavar='N', help='several processes: how many')
    parser.add_argument('--process_id', type=int, metavar='I', help='several processes: this one, 0..N-1')
    parser.add_argument('--verbose', action='store_true', help=commands.VERBOSE_HELP)
    return parser


def main(argv):
    """Runs training; returns the exit code (see the module docstring)."""
    # Imported here, so that importing this module does not import TensorFlow (see commands.py).
    from inpaint import training
    from inpaint.backends import PeerLostError
    from inpaint.checkpoint import CheckpointError

    try:
        args = _parser().parse_args(argv)
        config = load_config(args.config, args.set)
        if config.guided:  # until the trainer feeds edges (issue 21, phase 2)
            raise ConfigError(f'{args.config}: guided: training the edge-guided mode is not '
                              f'available yet; set guided: False')
        training.train(config, coordinator=args.coordinator, num_processes=args.num_processes,
                       process_id=args.process_id)
    except PeerLostError as error:
        print(f'train.py: {error}', file=sys.stderr, flush=True)
        sys.stdout.flush()
        # Now, without the interpreter's exit: JAX's runtime would wait there for the lost
        # process (its shutdown barrier) and then abort with its own messages.
        os._exit(3)
    except training.TrainingInterrupted as error:
        print(f'train.py: {error}', file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the training loop started
        print('train.py: interrupted; the last saved checkpoint (if any) is kept; run the same '
              'command to resume', file=sys.stderr)
        return 130
    except training.NonFiniteLossError as error:
        print(f'train.py: {error}', file=sys.stderr)
        return 1
    except (ConfigError, InputError, CheckpointError) as error:
        print(f'train.py: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(commands.run(main))
