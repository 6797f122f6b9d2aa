"""Where output goes: results on a rich console on stdout that never cuts a table column; progress
and notes on stderr (:func:`stage_progress`, the bar ``profile`` and ``optimize`` show)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["Step", "stage_progress", "stderr_console", "stdout_console"]

Step = Callable[[str, "int | None"], Callable[[], None]]  # step(label, total) -> advance


def stdout_console() -> Console:
    """A console on stdout; on a file or a pipe 200 columns wide, so that no table column is cut."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def stderr_console() -> Console:
    """Where the progress bar and the notes go (a function, so that tests can catch the bar)."""
    return Console(stderr=True)


@contextmanager
def stage_progress(console: Console) -> Iterator[Step]:
    """A rich progress bar on ``console``; yields ``step(label, total) -> advance``. A stage with
    ``total=None`` shows a spinner and ``advance()`` ends it. Every new stage and step is drawn at
    once (not only at the next timed refresh), so no stage goes unseen. Silent when the console is
    no terminal."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        current: list[int] = []

        def step(label: str, total: int | None) -> Callable[[], None]:
            for task in current:
                progress.update(task, visible=False)
            task = progress.add_task(label, total=total)
            current[:] = [task]
            progress.refresh()
            if total is None:
                return lambda: progress.update(task, visible=False, refresh=True)
            return lambda: progress.update(task, advance=1, refresh=True)

        yield step
    sys.stderr.flush()
