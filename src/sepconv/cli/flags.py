"""Library arguments -> command-line flags, in one table.

Library errors name Python arguments (:class:`sepconv._util.checks.ArgumentError` carries it in
``.argument``: ``threads=0 must be a positive integer``). On the command line the same error should
name the flag the user typed (``--threads=0 must be a positive integer``). :func:`cli_message`
does that for the command that ran: an argument is a flag of that command when its parser has an
option whose ``dest`` is the argument — or the name :data:`DESTS` gives it where the library and
the command spell it differently. Arguments the command has no flag for (a model spec's
``width_mult=...``) are left as they are. ``NAME=True`` in such a message (``pass overwrite=True to
replace it``) is the command's switch (``--overwrite``) wherever the command has one.

Example::

    >>> from sepconv._util.checks import ArgumentError
    >>> cli_message(ArgumentError("resume", "out holds a run; pass resume=True to continue it"),
    ...             {"resume": "--resume"})
    'out holds a run; pass --resume to continue it'
"""

from __future__ import annotations

import argparse
import re

__all__ = ["DESTS", "cli_message", "flags_of"]

# library argument -> the command's argparse ``dest``, where the two names differ
DESTS: dict[str, str] = {
    "input_shape": "input",
    "model_spec": "model",
    "calibration": "calib",
    "num_workers": "workers",
    "plot_path": "plot",
}


def flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{dest: "--flag"}`` for every optional argument of ``parser`` (its longest spelling)."""
    return {action.dest: max(action.option_strings, key=len)
            for action in parser._actions if action.option_strings and action.dest != "help"}


def cli_message(err: BaseException, flags: dict[str, str]) -> str:
    """``err``'s message on one line, its argument (``err.argument``) written as the flag."""
    message = " ".join(str(err).split()) or type(err).__name__
    argument = getattr(err, "argument", None)
    if not isinstance(argument, str):
        return message
    # "pass resume=True" / "pass overwrite=True" -> "pass --resume" / "--overwrite": a switch to give
    message = re.sub(r"(?<![\w-])(\w+)=True\b", lambda m: flags.get(DESTS.get(m[1], m[1]), m[0]), message)
    flag = flags.get(DESTS.get(argument, argument))
    if flag is None:
        return message
    return re.sub(rf"(?<![\w-]){re.escape(argument)}=", f"{flag}=", message)
