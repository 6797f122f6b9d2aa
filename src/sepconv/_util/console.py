"""Where results are printed: a rich console on stdout that never cuts a table column."""

from __future__ import annotations

from rich.console import Console

__all__ = ["stdout_console"]


def stdout_console() -> Console:
    """A console on stdout; on a file or a pipe 200 columns wide, so that no table column is cut."""
    console = Console()
    return console if console.is_terminal else Console(width=200)

