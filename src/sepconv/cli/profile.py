"""``sepconv profile``: FLOPs against real time, per layer, on this machine.

    sepconv profile [MODEL ...] [--input 1x3x224x224] [--batch N]
                    [--backend eager|channels_last|inductor|onnxruntime|all] [--threads T]
                    [--layers-on eager|onnxruntime]
                    [--train [--precision fp32,bf16,fp16|all]] [--impl native|im2col]
                    [--json FILE|DIR] [--plot FILE.png|DIR] [--html FILE.html|DIR] [--overwrite] [--remeasure]
    sepconv profile --machine-only [--remeasure] [--threads T] [--json FILE|-] [--overwrite]

MODEL (default ``mobilenet_v2``) is a registered name with arguments, ``package.module:callable``,
a sepconv ``.safetensors`` checkpoint or a run directory, with optional ``--weights``
(:func:`sepconv.resolve.resolve_model`). Tables go
to stdout, the progress bar and the names of written files to stderr. ``--machine-only`` prints
the machine's roofline ceilings (cached, or measured with ``--remeasure``) and profiles no model.
``--train`` adds the training half (each layer's forward and backward, the whole training step per
backend and precision; the input's batch defaults to 8 and must be at least 2). Several MODELs
(given together, before the options) are profiled one after the other and summed up in one table;
``--json``, ``--plot`` and ``--html`` then name directories, each holding one file per model and
``summary.json`` / ``summary.png`` / ``summary.html``. ``--machine-only`` prints every ceiling: each
memory level's bandwidth, capacity, where the sweep found it and the source of its size, each
precision's peak with its engine (or why it is unavailable), and the library versions; with
``--json FILE`` (``-``: stdout only) it writes them as JSON (``SCHEMA["machine_only"]``).
``--layers-on onnxruntime`` takes the per-layer and by-kind tables from ONNX Runtime's own profiler
(the BN-folded export, each node mapped back to sepconv's layer names; a fused Conv+BN+activation
counts as its conv's layer) instead of eager PyTorch's replay; ``--backend`` keeps its meaning
(whole-model timing per engine). An input or batch whose tensors cannot fit in memory is refused
before anything is allocated. Every output path is checked before anything is measured (a
directory in the way, a folder that cannot be written); a file already there is replaced only with
``--overwrite``.

Example::

    $ sepconv profile mobilenet_v1:width_mult=0.5 --input 1x3x160x160 --json profile.json
    $ sepconv profile vgg16 mobilenet_v1 mobilenet_v1:conv=standard --train --input 8x3x112x112 --json out/
    $ sepconv profile --machine-only --threads 1 --json machine.json
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rich.console import Console

from .._util.console import stage_progress, stderr_console, stdout_console
from ..engines.im2col import IMPLS
from ..profile.backends import BACKENDS as PROFILE_BACKENDS
from ..profile.backends import parse_backends
from ..profile.profiler import LAYERS_ON
from ..profile.step import PRECISIONS, TRAIN_BACKENDS
from ..profile.summary import SUMMARY
from .model_arg import add_model_arguments, resolve_args

__all__ = ["parse_shape", "register", "run"]

DEFAULT_MODEL = "mobilenet_v2"
TRAIN_BATCH = 8  # the input's batch with --train when --input is not given
OUTPUTS = (("json", ".json"), ("plot", ".png"), ("html", ".html"))  # option, suffix of each file it writes


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
    p.add_argument("more", nargs="*", metavar="MODEL",
                   help="more models, profiled one after the other and summed up side by side in one table (give "
                        "them together with the first); --json, --plot and --html then name directories")
    p.add_argument("--input", default=None, metavar="BxCxHxW",
                   help="input shape for the per-layer profile (default 1x3xSxS, S the model's input size; "
                        f"{TRAIN_BATCH}x3xSxS with --train)")
    p.add_argument("--batch", type=int, default=8, metavar="N",
                   help="also time the whole model at this batch size (default 8)")
    p.add_argument("--backend", default="eager", metavar="NAME",
                   help=f"{', '.join(PROFILE_BACKENDS)}, a comma-separated list, or all (default eager; eager is "
                        "always measured as the reference; inductor is torch.compile, 'compile' its deprecated "
                        "name; the model runs as given, BN and all, except on onnxruntime, whose export folds BN)")
    p.add_argument("--layers-on", default="eager", metavar="ENGINE",
                   help=f"the engine whose own profiler gives the per-layer and by-kind tables: "
                        f"{', '.join(LAYERS_ON)} (default eager: each layer replayed alone and timed in place; "
                        "onnxruntime: its profiler's node times on the BN-folded export, mapped back to the layer "
                        "names, a fused Conv+BN+activation counted as its conv; openvino: not available yet); "
                        "--backend still times the whole model per engine")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch (and ONNX Runtime) threads (default: torch's default here)")
    p.add_argument("--repeats", type=int, default=20, metavar="R",
                   help="timed rounds; the median is reported (default 20)")
    p.add_argument("--warmup", type=int, default=2, metavar="W", help="untimed rounds first (default 2)")
    p.add_argument("--budget", type=float, default=20.0, metavar="SECONDS",
                   help="cap on the seconds spent timing (each timing still makes at least 5 calls); "
                        "0 for no cap (default 20)")
    p.add_argument("--train", action="store_true",
                   help="add the training half: per layer the forward and backward time (a conv's backward split "
                        "into its input- and weight-gradient passes), their MACs, bytes and roofline fraction, the "
                        "activations kept for backward; by kind the share of training MACs against training time; "
                        f"the whole training step (SGD) per backend that can train ({', '.join(TRAIN_BACKENDS)}) and "
                        "precision, at the input's batch and --batch: images/s, peak memory, speed-up")
    p.add_argument("--precision", default=None, metavar="NAME",
                   help=f"the training step's precisions with --train: {', '.join(PRECISIONS)} (bf16/fp16: autocast "
                        "mixed precision), a comma-separated list, or all (default all: those this machine cannot "
                        "run are skipped, saying why; one named that it cannot run is an error)")
    p.add_argument("--impl", default="native", choices=IMPLS, metavar="IMPL",
                   help="convolution implementation: native (PyTorch's kernels, the default) or im2col (Caffe's "
                        "historical per-image, per-group GEMM algorithm, reproduced; eager only)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write the JSON document (- for stdout only); with several models a directory; with "
                        "--machine-only the machine's ceilings")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="write the roofline and by-kind charts; with several models a directory")
    p.add_argument("--html", default=None, metavar="FILE.html",
                   help="write one self-contained HTML report; with several models a directory")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files already at --json, --plot or --html (without it, one there is refused "
                        "before any measuring)")
    p.add_argument("--remeasure", action="store_true",
                   help="measure the machine's ceilings (memory levels, precision peaks) again instead of using "
                        "the cache")
    p.add_argument("--machine-only", action="store_true",
                   help="print the machine's ceilings for --threads (cached, or measured with --remeasure): each "
                        "memory level's bandwidth and capacity, each precision's peak and engine, the library "
                        "versions; --json writes them; no model is loaded or timed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._util.checks import ArgumentError, non_negative_int, positive_int
    from ..machine import cache_path
    from ..profile.profiler import check_layers_on
    from ..profile.step import parse_precisions
    from ..profile.training import check_batch

    # Every argument is checked before anything slow happens.
    specs = [args.model, *args.more]
    shape = parse_shape(args.input) if args.input is not None else None
    backends = parse_backends(args.backend, warn=lambda message: print(f"sepconv: warning: {message}",
                                                                       file=sys.stderr))
    positive_int("batch", args.batch)
    positive_int("repeats", args.repeats)
    non_negative_int("warmup", args.warmup)
    if args.threads is not None:
        positive_int("threads", args.threads)
    if not math.isfinite(args.budget) or args.budget < 0:
        raise ArgumentError("budget", f"budget={args.budget} must be a finite number of seconds >= 0 (0: no cap)")
    check_layers_on(args.layers_on)
    if args.precision is not None and not args.train:
        raise ValueError(f"--precision={args.precision!r} is the training step's: it needs --train")
    precisions = args.precision or "all"  # "all": the precisions this machine lacks become skipped rows
    if args.train:
        parse_precisions(precisions)  # a precision named that this machine cannot run: refused now
    if args.train and shape is not None:
        check_batch(shape)
    _check_outputs(args, several=len(specs) > 1)
    if args.machine_only:
        given = [f"--{name}" for name in ("plot", "html") if getattr(args, name) is not None]
        given += [flag for flag, value in (("--weights", args.weights), ("--weights-source", args.weights_source),
                                           ("--train", args.train), ("--impl", args.impl != "native"),
                                           ("--layers-on", args.layers_on != "eager"))
                  if value not in (None, False)]
        if given or specs != [DEFAULT_MODEL] or args.input is not None:
            raise ValueError(f"--machine-only measures the machine alone; it takes no "
                             f"{', '.join(given) or 'MODEL or --input'} (only --threads, --remeasure and --json)")
    if len(specs) > 1 and (args.weights is not None or args.weights_source is not None):
        raise ValueError(f"--weights loads one model's weights; {len(specs)} MODELs were given: "
                         f"{', '.join(specs)}")

    import torch

    threads = args.threads or torch.get_num_threads()
    err = stderr_console()
    if args.machine_only:
        return _machine_only(threads, args.remeasure, args.json, err)
    measured = args.remeasure or not cache_path(threads).is_file()
    docs = _profile_each(args, specs, shape, backends, precisions, threads, err)
    if len(specs) == 1:
        _single_outputs(args, docs[0], err)
    else:
        _several_outputs(args, specs, docs, err)
    if measured:
        err.print(f"machine measured and cached in {cache_path(threads)}", highlight=False, soft_wrap=True)
    return 0


def _check_outputs(args: argparse.Namespace, several: bool) -> None:
    """``--json``/``--plot``/``--html``: files with their suffix for one model, directories for several
    (each file they will hold checked); writable, and replaced only with ``--overwrite``; matplotlib
    present for the charts (before minutes of measuring, not after)."""
    from .._util.figures import require_matplotlib
    from .._util.io import check_output
    from ..profile.summary import file_stems

    files: list[tuple[str, Path]] = []  # (option, a file it will write)
    for option, suffix in OUTPUTS:
        path = getattr(args, option)
        if path is None or (option == "json" and path == "-" and not several):
            continue
        if several:
            if path == "-" or Path(path).is_file():
                raise ValueError(f"{option}={path!r}: with several models --{option} names a directory (one "
                                 f"file per model and {SUMMARY}{suffix})")
            check_output(path, option, directory=True)
            files += [(option, Path(path) / f"{stem}{suffix}") for stem in [*file_stems([args.model, *args.more]),
                                                                             SUMMARY]]
        else:
            suffixes = (".html", ".htm") if option == "html" else (suffix,)
            if option != "json" and not path.lower().endswith(suffixes):
                raise ValueError(f"{option}={path!r} must end in {' or '.join(suffixes)}")
            files.append((option, Path(path)))
        if option != "json":
            require_matplotlib(option, path)
    for option, path in files:  # every one checked (and cleared of what a killed run left) ...
        check_output(path, option)
    for option, path in files if not args.overwrite else ():  # ... before any that is there is refused
        check_output(path, option, overwrite=False)


def _profile_each(args: argparse.Namespace, specs: list[str], shape: tuple[int, ...] | None, backends: list[str],
                  precisions: str, threads: int, err: Console) -> list[dict]:
    """Load every model first (a bad MODEL or an untrainable one fails before any measuring), then
    profile and print each in turn; the JSON documents."""
    from ..profile.profiler import profile_model
    from ..profile.report import print_report, to_dict
    from ..profile.training import check_trainable

    several = len(specs) > 1
    with stage_progress(err) as step:
        done = step("loading the model" + (f"s ({len(specs)})" if several else ""), None)
        resolved = [resolve_args(argparse.Namespace(**{**vars(args), "model": spec})) for spec in specs]
        done()
    if args.train:
        for spec, r in zip(specs, resolved):
            check_trainable(r.model, spec)
    docs = []
    for i, spec in enumerate(specs):
        r, resolved[i] = resolved[i], None  # each model is freed once profiled
        model_shape = shape or (r.shape(batch=TRAIN_BATCH) if args.train else r.input_shape)
        with stage_progress(err) as step:
            profile = profile_model(r.model, model_shape, spec=spec, description=r.description, backends=backends,
                                    batch=args.batch, threads=threads, repeats=args.repeats, warmup=args.warmup,
                                    budget_s=args.budget or None, remeasure=args.remeasure and i == 0, step=step,
                                    train=args.train, precisions=precisions, impl=args.impl,
                                    layers_on=args.layers_on)
        doc = to_dict(profile)
        if args.json != "-":
            if several:
                stdout_console().rule(f"{spec} ({i + 1} of {len(specs)})")
            print_report(doc)
        docs.append(doc)
    return docs


def _single_outputs(args: argparse.Namespace, doc: dict, err: Console) -> None:
    from ..profile.html import save_html
    from ..profile.plot import save_plot
    from ..profile.report import write_json

    if args.json == "-":
        import json

        print(json.dumps(doc, indent=2))
    for path, write in ((None if args.json == "-" else args.json, write_json), (args.plot, save_plot),
                        (args.html, save_html)):
        if path is not None:
            write(doc, path)
            err.print(f"wrote {path}", highlight=False, soft_wrap=True)


def _several_outputs(args: argparse.Namespace, specs: list[str], docs: list[dict], err: Console) -> None:
    """The summary table; in each output directory one file per model and the summary's."""
    from ..profile.html import save_html
    from ..profile.plot import save_plot
    from ..profile.report import write_json
    from ..profile.summary import file_stems, save_summary_html, save_summary_plot, summary_dict, summary_table

    stems = file_stems(specs)
    summary = summary_dict(docs, stems)
    stdout_console().print(summary_table(summary))
    writers = {"json": (write_json, write_json), "plot": (save_plot, save_summary_plot),
               "html": (save_html, save_summary_html)}
    for option, suffix in OUTPUTS:
        directory = getattr(args, option)
        if directory is None:
            continue
        each, whole = writers[option]
        for stem, doc in zip(stems, docs):
            each(doc, Path(directory) / f"{stem}{suffix}")
        whole(summary, Path(directory) / f"{SUMMARY}{suffix}")
        err.print(f"wrote {directory}: {', '.join(f'{stem}{suffix}' for stem in stems)} and {SUMMARY}{suffix}",
                  highlight=False, soft_wrap=True)


def _machine_only(threads: int, remeasure: bool, json_path: str | None, err: Console) -> int:
    """``sepconv profile --machine-only [--remeasure] [--json FILE|-]``: the ceilings, and nothing else."""
    from ..machine import cache_path, machine_profile
    from ..profile.report import machine_document, print_machine, write_json

    measured = remeasure or not cache_path(threads).is_file()
    with stage_progress(err) as step:
        done = step(f"the machine's ceilings: memory levels and precision peaks ({threads} threads)", None)
        machine = machine_profile(threads, remeasure=remeasure)
        done()
    doc = machine_document(machine)
    if json_path == "-":
        import json

        print(json.dumps(doc, indent=2))
    else:
        print_machine(doc)
        if json_path is not None:
            write_json(doc, json_path)
            err.print(f"wrote {json_path}", highlight=False, soft_wrap=True)
    if measured:
        err.print(f"machine measured and cached in {cache_path(threads)}", highlight=False, soft_wrap=True)
    return 0
