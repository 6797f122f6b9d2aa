"""sepconv.cli.flags: a library error names the Python argument; the command line names the flag of
the command that ran, for the erroring argument only, and leaves arguments it has no flag for alone."""

from __future__ import annotations

import argparse
import doctest

import pytest

from sepconv._util.checks import ArgumentError
from sepconv.cli import flags
from sepconv.cli.flags import DESTS, cli_message, flags_of


def test_flags_of_gives_each_optional_its_longest_spelling():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("-t", "--threads", type=int)
    parser.add_argument("--input-size", dest="input_size")
    parser.add_argument("-q", "--quiet", action="store_true")
    assert flags_of(parser) == {"threads": "--threads", "input_size": "--input-size", "quiet": "--quiet"}


FLAGS = {"threads": "--threads", "resume": "--resume", "input": "--input", "batch": "--batch",
         "overwrite": "--overwrite"}


@pytest.mark.parametrize("argument, message, expected", [
    ("threads", "threads=0 must be a positive integer", "--threads=0 must be a positive integer"),
    ("resume", "out holds a run; pass resume=True to continue it", "out holds a run; pass --resume to continue it"),
    # only the erroring argument is rewritten: batch= stays as it is
    ("threads", "threads=0 must be at most batch=4", "--threads=0 must be at most batch=4"),
    # a name inside another name is not the argument
    ("batch", "micro_batch=3 and batch=2", "micro_batch=3 and --batch=2"),
    ("batch", "num-batch=3", "num-batch=3"),
    # the library spells it input_shape, the command's dest is input (DESTS)
    ("input_shape", "input_shape=(3, 4) must be 4 positive integers", "--input=(3, 4) must be 4 positive integers"),
    # an argument the command has no flag for (a model spec's) is left alone
    ("width_mult", "width_mult=0 must be a positive number", "width_mult=0 must be a positive number"),
])
def test_the_erroring_argument_is_written_as_the_flag(argument, message, expected):
    assert cli_message(ArgumentError(argument, message), FLAGS) == expected


def test_errors_without_an_argument_keep_their_message_on_one_line():
    assert cli_message(ValueError("threads=0 must be\n  a positive   integer"), FLAGS) == (
        "threads=0 must be a positive integer")  # no .argument: nothing rewritten, whitespace folded
    assert cli_message(KeyError(), FLAGS) == "KeyError"  # an empty message says what it was
    err = ValueError("overwrite=True is needed")
    err.argument = 3  # not a name: ignored
    assert cli_message(err, FLAGS) == "overwrite=True is needed"


def test_dests_map_to_real_flags_of_the_commands():
    """Every DESTS target is the dest of a flag of some command (a stale entry would never match)."""
    from sepconv import cli

    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    dests = set().union(*(flags_of(p) for p in subparsers.choices.values()))
    assert set(DESTS.values()) <= dests, set(DESTS.values()) - dests


def test_docstring_example():
    result = doctest.testmod(flags)
    assert result.attempted > 0 and result.failed == 0


def test_a_switch_to_pass_is_written_as_the_flag_whichever_argument_erred():
    err = ArgumentError("input", "input='p.npy' already exists; pass overwrite=True to replace it")
    assert cli_message(err, FLAGS) == "--input='p.npy' already exists; pass --overwrite to replace it"
    err = ArgumentError("out", "out='m.safetensors' already exists; pass overwrite=True or force=True")
    assert cli_message(err, FLAGS) == "out='m.safetensors' already exists; pass --overwrite or force=True"
