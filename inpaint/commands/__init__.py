"""The command lines, one module per verb; each parses its flags, calls the library once and
returns an exit code.

    inpaint   test.py, deepfill-inpaint, python -m inpaint.commands.inpaint
    train     train.py, deepfill-train, python -m inpaint.commands.train
    evaluate  deepfill-evaluate, python -m inpaint.commands.evaluate
    serve     deepfill-serve, python -m inpaint.commands.serve
    export    deepfill-export, python -m inpaint.commands.export
    convert   deepfill-convert, python -m inpaint.commands.convert

Shared: `parsing` (the one parser, error type and message style), `quiet` (TensorFlow's start-up
lines hidden unless `--verbose`). A command's `main(argv=None, prog=PROG)` takes the arguments
without the program name (default `sys.argv[1:]`) and the program name its messages use. Every
entry point goes through `run`, which hides TensorFlow's lines before `main` can import it, and
passes the program name as typed. A command
module imports nothing that imports TensorFlow at module level (`tests/test_commands.py`). To add a
flag, add it to the command's `build_parser`; its `main` hands the value to the library.
"""
import importlib
import sys

from inpaint.commands.parsing import program_name
from inpaint.commands.quiet import quiet_tensorflow

VERBS = ('inpaint', 'train', 'evaluate', 'serve', 'export', 'convert')


def run(main, argv=None):
    """Runs a command's `main(argv, prog)` with TensorFlow quiet (unless `--verbose`).

    A Keras backend that is not installed (`KERAS_BACKEND=torch` without torch, or TensorFlow,
    the default, in a JAX-only install) is one line on stderr and exit code 2, before `import
    keras` would raise it as a traceback (`--help` still works).

    Args:
        main: the command's `main(argv, prog) -> int`.
        argv: arguments without the program name (default `sys.argv[1:]`).
    Returns:
        the exit code.
    """
    from inpaint import extras

    argv = sys.argv[1:] if argv is None else list(argv)
    named = {'prog': program_name()} if program_name() else {}  # else the command's own name
    quiet_tensorflow(argv)
    problem = None if {'-h', '--help'} & set(argv) else extras.backend_missing()
    if problem:
        print(f'{named.get("prog", "deepfill")}: error: {problem}', file=sys.stderr)
        return 2
    return main(argv, **named)


def _console_script(verb):
    """The entry point of a console script: imports the verb's module (cheap: no TensorFlow) and
    runs its `main`."""
    def entry_point():
        return run(importlib.import_module(f'inpaint.commands.{verb}').main)
    entry_point.__name__ = entry_point.__qualname__ = f'{verb}_command'
    entry_point.__doc__ = f'Console script for `inpaint.commands.{verb}` (see its docstring).'
    return entry_point


# setup.cfg [options.entry_points] console_scripts point here.
inpaint_command = _console_script('inpaint')    # deepfill-inpaint: test.py's flags
train_command = _console_script('train')        # deepfill-train: train.py's flags
evaluate_command = _console_script('evaluate')  # deepfill-evaluate
serve_command = _console_script('serve')        # deepfill-serve
export_command = _console_script('export')      # deepfill-export
convert_command = _console_script('convert')    # deepfill-convert
