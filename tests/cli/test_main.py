"""The sepconv command line itself: usage errors in one line with exit 2, --version, SEPCONV_DEBUG, a
command that cannot be imported, and the installed script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import forms_by_name, run_cli

import sepconv
from sepconv import cli


def test_debug_shows_the_exception(monkeypatch):
    monkeypatch.setenv("SEPCONV_DEBUG", "1")
    with pytest.raises(ValueError, match="kernel=0"):
        cli.main(["compare", "--kernel", "0"])


@pytest.mark.parametrize(("argv", "message"), [
    (["compare", "--bogus"], "sepconv: error: unrecognized arguments: --bogus (see 'sepconv --help')"),
    ([], "sepconv: error: the following arguments are required: COMMAND"),
    (["compare", "--kernel", "abc"], "sepconv compare: error: argument --kernel: invalid int value: 'abc' "
                                     "(see 'sepconv compare --help')"),
    (["frobnicate"], "sepconv: error: argument COMMAND: invalid choice: 'frobnicate'"),
    (["export", "mobilenet_v2"], "sepconv export: error: the following arguments are required: --out"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(message), err


def test_usage_errors_and_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sepconv {sepconv.__version__}"


def test_an_unimportable_command_breaks_only_itself(capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "sepconv.cli._not_a_module", "sepconv._nor_this:alpha,beta"])
    for name in ("_not_a_module", "alpha", "beta"):
        code, out, err = run_cli(capsys, name, "--anything")
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and f"'{name}' is unavailable" in err and "ModuleNotFoundError" in err
    code, out, _ = run_cli(capsys, "compare", "--json", "--repeats", "0")
    assert code == 0 and json.loads(out)["forms"][0]["params"] == 108


def test_console_script_and_python_m():
    """Real processes: the installed ``sepconv`` script (or ``python -m sepconv``) and an error."""
    script = Path(sys.executable).with_name("sepconv")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sepconv"]
    done = subprocess.run([*command, "compare", "--json", "--repeats", "1"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    forms = forms_by_name(json.loads(done.stdout))
    assert forms["standard"]["params"] == 108 and forms["depthwise_separable"]["params"] == 39
    failed = subprocess.run([sys.executable, "-m", "sepconv", "compare", "--kernel", "0"], capture_output=True,
                            text=True, timeout=300)
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr == "sepconv: error: --kernel=0 must be a positive integer\n"  # the flag, not the argument


def test_an_os_error_is_one_line_and_exit_2(capsys, monkeypatch):
    def refuse(args):
        raise PermissionError(13, "Permission denied", "/ro/out.json")

    monkeypatch.setattr(cli, "build_parser", _parser_with(refuse))
    code, out, err = run_cli(capsys, "models")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "Permission denied" in err and "/ro/out.json" in err


def test_an_unforeseen_exception_is_one_line_and_exit_1(capsys, monkeypatch):
    def crash(args):
        raise KeyError("surprise\nsecond line")

    monkeypatch.setattr(cli, "build_parser", _parser_with(crash))
    code, out, err = run_cli(capsys, "models")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("sepconv: internal error: KeyError:") and "SEPCONV_DEBUG=1" in err
    monkeypatch.setenv("SEPCONV_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["models"])


def test_system_exit_passes_through(monkeypatch):
    def leave(args):
        raise SystemExit(7)

    monkeypatch.setattr(cli, "build_parser", _parser_with(leave))
    with pytest.raises(SystemExit):
        cli.main(["models"])


def _parser_with(func):
    """``cli.build_parser`` whose ``models`` command runs ``func``."""
    build = cli.build_parser

    def patched():
        parser = build()
        for action in parser._subparsers._group_actions:
            action.choices["models"].set_defaults(func=func)
        return parser

    return patched
