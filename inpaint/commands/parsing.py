"""What every command's flags share: one parser, one error type, one message style.

Each command module builds a `Parser` from its docstring and its program name: `--help` prints the
docstring's first paragraph (a sentence) as the description and the rest (examples, exit codes)
after the flags, and every command has `--verbose`. A problem is reported as one line on stderr,
`<program>: error: <message>`, with exit code 2 (`Parser.fail`); a bad flag is a `UsageError`,
reported the same way. <program> is the command as the user typed it (`program_name`): `test.py`,
`deepfill-export`, `python -m inpaint.commands.serve`.
"""
import argparse
import os
import sys

VERBOSE_HELP = "show TensorFlow's start-up and C++ log lines and INFO logs (hidden by default)"


class UsageError(ValueError):
    """Flags that cannot run: the message is one line naming the flag and the fix."""


def program_name():
    """The running command as the user typed it: `python -m <module>` for `python -m`, else the
    script's file name (`test.py`, `deepfill-train`); None when there is none (`python -c`, an
    interactive session), and the command then names itself."""
    spec = getattr(sys.modules.get('__main__'), '__spec__', None)
    if spec is not None and spec.name:
        return f'python -m {spec.name.removesuffix(".__main__")}'
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ''
    return script if script and script != '-c' else None


class Parser(argparse.ArgumentParser):
    """An ArgumentParser for a command: its help from the module docstring, `--verbose`, and
    errors raised as `UsageError` (so that `main` returns the exit code) instead of exiting.

    Args:
        prog: the program name, as the user typed it (see `program_name`).
        doc: the command module's docstring; its first paragraph must be whole sentences.
        verbose_help: the help of `--verbose`.
    """

    def __init__(self, prog, doc, verbose_help=VERBOSE_HELP):
        summary, _, details = doc.strip().partition('\n\n')
        super().__init__(prog=prog, description=summary, epilog=details or None,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_argument('--verbose', action='store_true', help=verbose_help)

    def add_overwrite(self, what):
        """`--overwrite`: replace `what` (what an earlier run of the command wrote), nothing else."""
        self.add_argument('--overwrite', action='store_true',
                          help=f'replace {what}; nothing else is ever replaced')

    def error(self, message):
        raise UsageError(message)

    def fail(self, error, code=2):
        """Prints `<prog>: error: <error>` on stderr; returns `code` (the exit code)."""
        print(f'{self.prog}: error: {error}', file=sys.stderr)
        return code

    def note(self, message):
        """Prints `<prog>: <message>` on stderr (an interruption, not an error)."""
        print(f'{self.prog}: {message}', file=sys.stderr)
