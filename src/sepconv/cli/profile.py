"""``sepconv profile``: FLOPs against real time, per layer, on this machine.

    sepconv profile [MODEL] [--input 1x3x224x224] [--batch N]
                    [--backend eager|channels_last|inductor|onnxruntime|all] [--threads T]
                    [--json FILE] [--plot FILE.png] [--html FILE.html] [--remeasure]
    sepconv profile --machine-only [--remeasure] [--threads T]

MODEL (default ``mobilenet_v2``) is a registered name with arguments, ``package.module:callable``,
a sepconv ``.safetensors`` checkpoint or a run directory, with optional ``--weights``
(:func:`sepconv.resolve.resolve_model`). Tables go
to stdout, the progress bar and the names of written files to stderr. ``--machine-only`` prints
the machine's roofline ceilings (cached, or measured with ``--remeasure``) and profiles no model.

Example::

    $ sepconv profile mobilenet_v1:width_mult=0.5 --input 1x3x160x160 --json profile.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..profile.backends import BACKENDS as PROFILE_BACKENDS
from ..profile.backends import parse_backends
from .model_arg import add_model_arguments, resolve_args

__all__ = ["parse_shape", "register", "run", "stderr_console"]

DEFAULT_MODEL = "mobilenet_v2"


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` -> ``(1, 3, 224, 224)``: positive integers joined by ``x``.

    Example::

        >>> parse_shape("1x3x224x224")
        (1, 3, 224, 224)
    """
    parts = str(text).lower().replace("×", "x").split("x")
    if len(parts) < 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"input={text!r} must be positive integers joined by 'x', batch first, e.g. 1x3x224x224")
    return tuple(int(p) for p in parts)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sepconv profile`` (see :mod:`sepconv.cli`)."""
    p = subparsers.add_parser(
        "profile", help="per-layer time against MACs and the machine's roofline (the main job)",
        description="Profile a model on this machine: per layer its MACs, bytes moved, arithmetic intensity, "
                    "measured time, achieved GFLOP/s and GB/s against the roofline; by kind the share of MACs "
                    "against the share of time; the whole model per backend. MACs = multiply-accumulates, "
                    "FLOPs = 2 x MACs.")
    add_model_arguments(p, default=DEFAULT_MODEL)
    p.add_argument("--input", default=None, metavar="BxCxHxW",
                   help="input shape for the per-layer profile (default 1x3xSxS, S the model's input size)")
    p.add_argument("--batch", type=int, default=8, metavar="N",
                   help="also time the whole model at this batch size (default 8)")
    p.add_argument("--backend", default="eager", metavar="NAME",
                   help=f"{', '.join(PROFILE_BACKENDS)}, a comma-separated list, or all (default eager; eager is "
                        "always measured as the reference; inductor is torch.compile, 'compile' its deprecated "
                        "name; the model runs as given, BN and all, except on onnxruntime, whose export folds BN)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch (and ONNX Runtime) threads (default: torch's default here)")
    p.add_argument("--repeats", type=int, default=20, metavar="R",
                   help="timed rounds; the median is reported (default 20)")
    p.add_argument("--warmup", type=int, default=2, metavar="W", help="untimed rounds first (default 2)")
    p.add_argument("--budget", type=float, default=20.0, metavar="SECONDS",
                   help="cap on the seconds spent timing (each timing still makes at least 5 calls); "
                        "0 for no cap (default 20)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the JSON document (- for stdout only)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="write the roofline and by-kind charts")
    p.add_argument("--html", default=None, metavar="FILE.html", help="write one self-contained HTML report")
    p.add_argument("--remeasure", action="store_true",
                   help="measure the machine's peak GFLOP/s and GB/s again instead of using the cache")
    p.add_argument("--machine-only", action="store_true",
                   help="print the machine's ceilings for --threads (cached, or measured with --remeasure) and "
                        "stop: no model is loaded or timed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._util.checks import non_negative_int, positive_int
    from .._util.figures import require_matplotlib
    from ..machine import cache_path
    from ..profile.profiler import profile_model
    from ..profile.report import print_report, to_dict, write_json

    # Every argument is checked before anything slow happens.
    shape = parse_shape(args.input) if args.input is not None else None
    backends = parse_backends(args.backend, warn=lambda message: print(f"sepconv: warning: {message}",
                                                                       file=sys.stderr))
    positive_int("batch", args.batch)
    positive_int("repeats", args.repeats)
    non_negative_int("warmup", args.warmup)
    if args.threads is not None:
        positive_int("threads", args.threads)
    if args.budget < 0:
        raise ValueError(f"budget={args.budget} must be >= 0 seconds (0: no cap)")
    for option, suffixes in (("plot", (".png",)), ("html", (".html", ".htm"))):
        path = getattr(args, option)
        if path is not None and not path.lower().endswith(suffixes):
            raise ValueError(f"{option}={path!r} must end in {' or '.join(suffixes)}")
        if path is not None:
            require_matplotlib(option, path)  # before minutes of measuring, not after
    if args.machine_only:
        given = [f"--{name}" for name in ("json", "plot", "html") if getattr(args, name) is not None]
        given += [flag for flag, value in (("--weights", args.weights), ("--weights-source", args.weights_source))
                  if value is not None]
        if given or args.model != DEFAULT_MODEL or args.input is not None:
            raise ValueError(f"--machine-only measures the machine alone; it takes no "
                             f"{', '.join(given) or 'MODEL or --input'} (only --threads and --remeasure)")

    import torch

    threads = args.threads or torch.get_num_threads()
    err = stderr_console()
    if args.machine_only:
        return _machine_only(threads, args.remeasure, err)
    with _progress(err) as step:
        done = step("loading the model", None)
        resolved = resolve_args(args)
        done()
        shape = shape or resolved.input_shape
        measured = args.remeasure or not cache_path(threads).is_file()
        profile = profile_model(resolved.model, shape, spec=args.model, description=resolved.description,
                                backends=backends, batch=args.batch, threads=threads, repeats=args.repeats,
                                warmup=args.warmup, budget_s=args.budget or None, remeasure=args.remeasure, step=step)
    doc = to_dict(profile)
    if args.json == "-":
        import json

        print(json.dumps(doc, indent=2))
    else:
        print_report(doc)
    from ..profile.html import save_html
    from ..profile.plot import save_plot

    for path, write in ((None if args.json == "-" else args.json, write_json), (args.plot, save_plot),
                        (args.html, save_html)):
        if path is not None:
            write(doc, path)
            err.print(f"wrote {path}", highlight=False, soft_wrap=True)
    if measured:
        err.print(f"machine measured and cached in {cache_path(threads)}", highlight=False, soft_wrap=True)
    return 0


def stderr_console() -> Console:
    """Where the progress bar and the notes go (a function, so that tests can catch the bar)."""
    return Console(stderr=True)


def _machine_only(threads: int, remeasure: bool, err: Console) -> int:
    """``sepconv profile --machine-only [--remeasure]``: the ceilings, and nothing else."""
    from .._util.console import stdout_console
    from ..machine import cache_path, machine_profile
    from ..profile.report import machine_dict, machine_line

    measured = remeasure or not cache_path(threads).is_file()
    with _progress(err) as step:
        done = step(f"the machine's peak GFLOP/s and GB/s ({threads} threads)", None)
        machine = machine_profile(threads, remeasure=remeasure)
        done()
    stdout_console().print(f"[bold]Machine[/bold]: {machine_line({'machine': machine_dict(machine)})}",
                           highlight=False, soft_wrap=True)
    if measured:
        err.print(f"machine measured and cached in {cache_path(threads)}", highlight=False, soft_wrap=True)
    return 0


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str, int | None], Callable[[], None]]]:
    """A rich progress bar on stderr; yields ``step(label, total) -> advance``. A stage with
    ``total=None`` shows a spinner and ``advance()`` ends it. Every new stage and step is drawn at
    once (not only at the next timed refresh), so no stage goes unseen. Silent when stderr is no
    terminal."""
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
