"""The ``sepconv`` command: an argparse front end, each sub-command a thin call into the library.

Each command is one module of this package (``sepconv.cli.profile``, ``sepconv.cli.deploy``, ...)
listed in :data:`COMMANDS`; it defines ``register(subparsers)``, which adds its sub-parser(s) and
sets ``func=run`` (a function ``run(args) -> int``) with ``set_defaults``; adding a command is
adding a module and one line here. A module that cannot be imported (an optional dependency
missing) does not break the others: its commands are still listed, and using one prints one line
saying why it is unavailable. Their names are those after a colon in the entry
(``"sepconv.cli.deploy:export,bench"``), else the module's last path component.

Results go to stdout, progress and diagnostics to stderr. A ``ValueError``, ``TypeError``,
``OSError`` (a path that is missing, unwritable or a directory; a full disk) or ``MemoryError``
becomes one line ``sepconv: error: <message>`` on stderr and exit status 2 (as argparse does for
bad usage), with the library's argument names written as the command's flags
(:mod:`sepconv.cli.flags`). Any other exception is a bug: one line ``sepconv: internal error:
<type>: <message> (run with SEPCONV_DEBUG=1 for the traceback)`` and exit status 1;
``KeyboardInterrupt`` exits 130 and ``SystemExit`` passes through. ``SEPCONV_DEBUG=1`` shows the
traceback instead.

Example::

    $ sepconv compare --json | python -c "import json, sys; print(json.load(sys.stdin)['forms'][0]['params'])"
    108
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .._util.version import __version__
from .flags import cli_message, flags_of

COMMANDS = [
    "sepconv.cli.models",
    "sepconv.cli.compare",
    "sepconv.cli.profile",
    "sepconv.cli.separate",
    "sepconv.cli.import_weights:import-weights",
    "sepconv.cli.deploy:export,bench,optimize",
    "sepconv.cli.train:train,eval,sweep,inspect",
]

PROG = "sepconv"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (naming ``--help``) and exit status 2,
    like every other bad input, instead of the usage block and then the error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser with every sub-command in :data:`COMMANDS` registered."""
    parser = OneLineParser(
        prog=PROG, description="Separable convolutions: operators, networks, exact cost, measured speed.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in COMMANDS:
        path, _, names = entry.partition(":")
        try:
            module = importlib.import_module(path)
        except Exception as err:  # noqa: BLE001 - any failure of an optional part is reported on use
            for name in names.split(",") if names else [_guess_name(path)]:
                _register_unavailable(subparsers, name, path, err)
            continue
        module.register(subparsers)
    return parser


def _guess_name(path: str) -> str:
    return path.rpartition(".")[2]


def _register_unavailable(subparsers: argparse._SubParsersAction, name: str, path: str, err: Exception) -> None:
    reason = f"command {name!r} is unavailable: {path} failed to import ({type(err).__name__}: {err})"
    p = subparsers.add_parser(name, help=f"(unavailable: {type(err).__name__})", add_help=False)

    def unavailable(args: argparse.Namespace) -> int:
        raise ValueError(reason) from err

    unavailable.takes_any_arguments = True  # its real options are unknown: say why it fails instead
    p.set_defaults(func=unavailable)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sepconv`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args.func, "takes_any_arguments", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exit_:  # argparse: --help/--version (0) or a usage error (2, already printed)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, MemoryError) as err:  # bad input, a path, a size: the user's to fix
        if os.environ.get("SEPCONV_DEBUG") == "1":
            raise
        print(f"{PROG}: error: {cli_message(err, flags_of(_command_parser(parser, args)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a bug: one line, not a traceback; SystemExit passes through
        if os.environ.get("SEPCONV_DEBUG") == "1":
            raise
        print(f"{PROG}: internal error: {type(err).__name__}: {_one_line(str(err))} "
              "(run with SEPCONV_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _one_line(message: str) -> str:
    """A message on one line: an exception's text may span several (a torch error, an OSError's
    strerror), but the CLI's promise is one line on stderr."""
    return " ".join(message.split()) or "(no message)"


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The sub-parser of the command that ran (its flags name the library's arguments)."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction) and args.command in action.choices:
            return action.choices[args.command]
    return parser


if __name__ == "__main__":
    sys.exit(main())
