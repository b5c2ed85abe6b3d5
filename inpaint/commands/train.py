"""Trains or fine-tunes DeepFill v2 with the hyper-parameters of `inpaint.yml`.

    python train.py                                  # the project's inpaint.yml
    python train.py --config my.yml --set batch_size=8 --set log_dir=logs/run1
    python train.py --set model_restore=checkpoints/places2   # fine-tune from a release

    KERAS_BACKEND=jax python train.py --config C --coordinator HOST:PORT --num_processes 2 --process_id I

The same command is `deepfill-train` (installed) and `python -m inpaint.commands.train`.
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
import os
import sys

from inpaint.commands import run
from inpaint.commands.parsing import Parser, UsageError
from inpaint.config import DEFAULT_CONFIG, ConfigError, load_config
from inpaint.imageio import InputError

PROG = 'train.py'


def build_parser(prog=PROG):
    """The flags of train.py: the config file and its overrides."""
    parser = Parser(prog, __doc__)
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='the YAML config (default: inpaint.yml)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key (value in YAML, e.g. img_shapes=[64,64,3]); repeatable')
    parser.add_argument('--coordinator', metavar='HOST:PORT',
                        help='several processes (JAX): process 0\'s address, the same for all')
    parser.add_argument('--num_processes', type=int, metavar='N', help='several processes: how many')
    parser.add_argument('--process_id', type=int, metavar='I', help='several processes: this one, 0..N-1')
    return parser


def main(argv=None, prog=PROG):
    """Runs training; returns the exit code (see the module docstring)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        config = load_config(args.config, args.set)
    except (UsageError, ConfigError) as error:
        return parser.fail(error)
    # Imported here, so that importing this module does not import TensorFlow (see commands/).
    from inpaint import training
    from inpaint.backends import PeerLostError
    from inpaint.checkpoint import CheckpointError

    try:
        training.train(config, coordinator=args.coordinator, num_processes=args.num_processes,
                       process_id=args.process_id)
    except PeerLostError as error:
        parser.fail(error, code=3)
        sys.stderr.flush()
        sys.stdout.flush()
        # Now, without the interpreter's exit: JAX's runtime would wait there for the lost
        # process (its shutdown barrier) and then abort with its own messages.
        os._exit(3)
    except training.TrainingInterrupted as error:
        parser.note(error)
        return 130
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the training loop started
        parser.note('interrupted; the last saved checkpoint (if any) is kept; run the same '
                    'command to resume')
        return 130
    except training.NonFiniteLossError as error:
        return parser.fail(error, code=1)
    except (ConfigError, InputError, CheckpointError) as error:
        return parser.fail(error)
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
