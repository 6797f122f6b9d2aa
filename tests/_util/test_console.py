"""sepconv._util.console: off a terminal (a file, a pipe) the console is 200 columns wide, so that
no table column is cut."""

from __future__ import annotations

from sepconv._util.console import stdout_console


def test_off_a_terminal_the_console_is_wide(capsys):
    console = stdout_console()
    assert not console.is_terminal and console.width == 200
    console.print("x" * 150)
    assert capsys.readouterr().out == "x" * 150 + "\n"  # one line, not wrapped at 80
