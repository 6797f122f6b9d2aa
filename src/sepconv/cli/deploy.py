"""``sepconv export``, ``sepconv bench`` and ``sepconv optimize``: the deploy library from the command line.

Example::

    $ sepconv optimize runs/mnv2 --data digits --out mnv2-deployed    # every engine x precision, fastest kept
    $ sepconv bench mnv2-deployed                                      # time what it chose

    $ sepconv export mobilenet_v3_small:num_classes=10 --format onnx --input-size 96 --out mnv3s.onnx
    $ sepconv export mobilenet_v2 --format onnx --int8 --calib digits --out mnv2-int8.onnx
    $ sepconv bench mobilenet_v2 --backends eager,onnxruntime,int8 --batch 1 8
    $ sepconv export runs/mnv2/model.safetensors --out mnv2.onnx     # a checkpoint saved by sepconv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..engines import runner
from .model_arg import add_model_arguments, resolve_args

FORMATS = ("onnx",)
CALIB_COUNT, HELD_OUT_COUNT = 256, 512


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sepconv export`` and ``sepconv bench`` (see :mod:`sepconv.cli`)."""
    p = subparsers.add_parser(
        "export", help="export a model to a clean ONNX graph (BN folded), optionally int8",
        description="Export MODEL (a registry name with optional arguments, e.g. 'mobilenet_v2:num_classes=10') "
                    "to ONNX: BatchNorm folded, padding merged into convs, checked with onnx.checker and against "
                    "PyTorch (max absolute difference <= 1e-4) before anything is written to --out.")
    _model_args(p)
    p.add_argument("--format", choices=FORMATS, default="onnx", help="output format (default onnx)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the model")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 14..20 (default 17)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch size (default: dynamic batch axis)")
    p.add_argument("--int8", action="store_true", help="quantize to int8 (QDQ, per-channel weights) with --calib")
    p.add_argument("--calib", metavar="DATA",
                   help="calibration images for --int8: 'digits' (bundled) or a .npy/.npz/.safetensors "
                        f"file of (N, C, H, W) images; the first {CALIB_COUNT} calibrate, up to "
                        f"{HELD_OUT_COUNT} more are held out for the agreement report")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor (default: per channel)")
    p.add_argument("--overwrite", action="store_true", help="replace a file already at --out")
    p.set_defaults(func=run_export)

    b = subparsers.add_parser(
        "bench", help="latency of a model on each inference backend, side by side",
        description="Measure MODEL's median latency on each backend (BN folded for all) at each batch size, "
                    "in one run, with the speed-up over eager PyTorch and the largest difference from it.")
    _model_args(b)
    b.add_argument("--backends", default="eager,channels_last,onnxruntime",
                   help=f"comma-separated list of {', '.join(runner.BACKENDS)}, or 'all'; eager is always "
                        "measured, the reference (default eager,channels_last,onnxruntime; inductor is "
                        "torch.compile, which compiles for minutes; 'compile' is its deprecated name)")
    b.add_argument("--batch", type=int, nargs="+", default=None, metavar="B",
                   help="batch sizes (default 1; for an optimize output folder, the batch it was optimized at)")
    b.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    b.add_argument("--repeats", type=int, default=20, help="timed runs per backend, median reported (default 20)")
    b.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    b.add_argument("--json", action="store_true", help="print JSON instead of the table")
    b.set_defaults(func=run_bench)

    o = subparsers.add_parser(
        "optimize", help="every engine x precision, checked on held-out images, timed side by side; keep the fastest",
        description="Build MODEL on every engine and precision this machine runs (PyTorch, ONNX Runtime, OpenVINO; "
                    "fp32, bf16, fp16, int8), check each against the fp32 model on held-out images of --data at "
                    "--input-size, time those within the budget side by side in interleaved rounds (with plain "
                    "ONNX Runtime fp32 on a plain torch.onnx.export as the baseline), and write the fastest to "
                    "--out with report.json and the table of every candidate. Without --data: the fp32 candidates "
                    "only, each checked against PyTorch's output.")
    _model_args(o)
    o.add_argument("--data", metavar="SPEC", default=None,
                   help="held-out images: 'digits' (bundled), a training data spec (folder:PATH, cifar10:PATH, ...) "
                        "or a .npy/.npz/.safetensors file of (N, C, H, W) images; 256 calibrate int8, the rest "
                        "(at least 1000) are held out. A model sepconv train saved gets its own preprocessing")
    o.add_argument("--max-drop", type=float, default=0.5, metavar="POINTS",
                   help="largest accuracy drop allowed, in points (default 0.5)")
    o.add_argument("--min-agreement", type=float, default=99.5, metavar="PERCENT",
                   help="least top-1 agreement with fp32 allowed, in percent (default 99.5)")
    o.add_argument("--engines", default=None, metavar="LIST",
                   help="comma-separated engines to try: torch, onnxruntime, openvino (default: all)")
    o.add_argument("--precisions", default=None, metavar="LIST",
                   help="comma-separated precisions to try: fp32, bf16, fp16, int8 (default: all)")
    o.add_argument("--batch", type=int, default=1, help="batch size it is timed and deployed at (default 1)")
    o.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    o.add_argument("--held-out", type=int, default=None, metavar="N",
                   help="held-out images to check on (default: all not calibrating; at least 1000)")
    o.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    o.add_argument("--out", required=True, metavar="DIR", help="folder to write the chosen artifact and report to")
    o.add_argument("--overwrite", action="store_true", help="replace an existing --out (only once the new one is "
                                                            "complete)")
    o.add_argument("--json", action="store_true", help="print report.json instead of the table")
    o.set_defaults(func=run_optimize)


def _model_args(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="input height and width (default: the model's img_size or registry size, else 224)")


def _model(args: argparse.Namespace) -> tuple[torch.nn.Module, tuple[int, int, int, int]]:
    """The model in eval mode and its input shape at batch 1 (:func:`sepconv.resolve.resolve_model`)."""
    resolved = resolve_args(args)
    return resolved.model.eval(), resolved.shape(input_size=args.input_size)


def run_export(args: argparse.Namespace) -> int:
    from ..engines.onnx_export import export_onnx, max_abs_diff, to_onnx

    if args.calib and not args.int8:
        raise ValueError("--calib is for --int8 only")
    if args.int8 and not args.calib:
        raise ValueError("--int8 needs calibration images: --calib digits, or a .npy/.npz/.safetensors file")
    from .._util.io import check_output

    out = check_output(args.out, "out", overwrite=args.overwrite)  # before any work
    model, shape = _model(args)
    check_output(out, "out", overwrite=args.overwrite,
                 need_bytes=sum(t.numel() * t.element_size() for t in model.state_dict().values()))
    if not args.int8:
        exported = export_onnx(model, out, shape, dynamic_batch=not args.static_batch, opset=args.opset)
        print(f"wrote {out}: {_ops(exported.ops)}; ONNX Runtime vs PyTorch max |diff| {exported.max_abs_diff:.2g}")
        return 0
    from ..data.images import load_images
    from ..engines.quantize import quantize
    from ..engines.shapes import example_input

    images, labels = load_images(args.calib, shape)  # checks the shape before the export's work
    exported = to_onnx(model, shape, dynamic_batch=not args.static_batch, opset=args.opset)
    diff = max_abs_diff(exported.proto, model, example_input(model, shape))
    if not diff <= 1e-4:
        raise ValueError(f"ONNX Runtime's fp32 output differs from PyTorch's by {diff:.3g}; nothing written")
    calib, held = images[:CALIB_COUNT], images[CALIB_COUNT:CALIB_COUNT + HELD_OUT_COUNT]
    held_labels = None if labels is None else labels[CALIB_COUNT:CALIB_COUNT + HELD_OUT_COUNT]
    if len(held) == 0:
        held, held_labels = calib, (None if labels is None else labels[:CALIB_COUNT])
    data = f"{args.calib} {'held-out' if len(images) > CALIB_COUNT else 'calibration'}"
    trained = args.weights or Path(args.model).exists()  # a checkpoint or a run directory
    weights = "" if trained else " (random weights: the agreement says little about trained accuracy)"
    quantized = quantize(exported.proto, calib, per_channel=not args.per_tensor, held_out=held, labels=held_labels,
                         path=out, data_name=data)
    print(f"wrote {out}: int8 QDQ, {'per-tensor' if args.per_tensor else 'per-channel'} weights, "
          f"calibrated on {len(calib)} images; fp32 export vs PyTorch max |diff| {diff:.2g}")
    print(quantized.report.summary() + weights)
    return 0


def _ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(ops.items(), key=lambda kv: -kv[1]))


def parse_bench_backends(text: str) -> list[str]:
    """``--backends``' value -> runner names (every runner, int8 included); a deprecated name works
    and prints one warning line to stderr."""
    return runner.parse_backends(text, runner.BACKENDS, "backends", warn=_warn)


def _warn(message: str) -> None:
    print(f"sepconv: warning: {message}", file=sys.stderr)


def run_bench(args: argparse.Namespace) -> int:
    from .._util.checks import non_negative_int, positive_int
    from .._util.runtime import cores
    from ..data.images import digits
    from ..formats.manifest import is_deploy_folder

    for batch in args.batch or []:
        positive_int("batch", batch)
    positive_int("repeats", args.repeats)
    non_negative_int("warmup", args.warmup)
    if is_deploy_folder(args.model):
        return _bench_deployed(args)
    args.batch = args.batch or [1]
    backends = parse_bench_backends(args.backends)
    threads = cores() if args.threads is None else positive_int("threads", args.threads)
    model, shape = _model(args)
    calibration = None
    if any(runner.RUNNERS[name].needs_calibration for name in backends):
        print(f"int8: calibrating on {CALIB_COUNT} bundled digits images...", file=sys.stderr)
        calibration = digits(shape)[0][:CALIB_COUNT]
    rows = runner.time_backends(model, shape, backends, args.batch, args.repeats, args.warmup, threads,
                                fold=True, calibration=calibration)
    if args.json:
        print(json.dumps({"model": args.model, "input_shape": list(shape[1:]), "threads": threads,
                          "rows": [row.to_dict() for row in rows]}, indent=2))
        return 0
    print(runner.results_table(rows, f"{args.model}: input {list(shape[1:])}, {threads} threads, BN folded, "
                                     f"median of {args.repeats} runs"))
    if rows and all(row.status != "ok" for row in rows):  # nothing ran: the table says why, the exit status too
        raise ValueError(f"model={args.model!r}: no backend could run it ({rows[0].backend}: {rows[0].error})")
    return 0


def _list(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def run_optimize(args: argparse.Namespace) -> int:
    from .._util.console import stage_progress, stderr_console
    from ..deploy.optimize import optimize

    resolved = resolve_args(args)
    with stage_progress(stderr_console()) as step:
        result = optimize(resolved, data=args.data, engines=_list(args.engines), precisions=_list(args.precisions),
                          max_drop=args.max_drop, min_agreement=args.min_agreement, input_size=args.input_size,
                          batch=args.batch, threads=args.threads, held_out=args.held_out, rounds=args.rounds,
                          out=args.out, overwrite=args.overwrite, step=step)
    if args.json:
        print(json.dumps(result.report, indent=2))
    else:
        print(result.table())
        chosen = result.chosen
        speed = "" if chosen.speedup is None else f", {chosen.speedup:.2f}x plain ONNX Runtime fp32"
        print(f"chose {chosen.backend} ({chosen.engine} {chosen.precision}{speed}); wrote {result.folder}")
    return 0


def _bench_deployed(args: argparse.Namespace) -> int:
    """``sepconv bench DIR``: time what ``sepconv optimize`` chose, as :func:`sepconv.deploy.load` runs it."""
    import functools

    from ..deploy.artifact import load

    deployed = load(args.model, threads=args.threads)
    batches = args.batch or [deployed.input_shape[0]]
    rows = []
    generator = torch.Generator().manual_seed(0)
    for batch in batches:
        x = torch.randn((batch, *deployed.input_shape[1:]), generator=generator)
        timing = runner.time_runner(functools.partial(deployed, x), args.repeats, args.warmup)
        rows.append({"backend": deployed.backend, "engine": deployed.engine, "precision": deployed.precision,
                     "batch": batch, "median_ms": timing.median_ms, "p90_ms": timing.p90_ms,
                     "samples_per_s": batch / (timing.median_ms * 1e-3)})
    if args.json:
        print(json.dumps({"model": args.model, "input_shape": list(deployed.input_shape[1:]),
                          "threads": deployed.threads, "rows": rows}, indent=2))
        return 0
    print(f"{args.model}: {deployed.backend} ({deployed.engine} {deployed.precision}), input "
          f"{list(deployed.input_shape[1:])}, {deployed.threads} threads, median of {args.repeats} runs")
    print(f"{'batch':>5} {'median ms':>10} {'p90 ms':>9} {'samples/s':>10}")
    for row in rows:
        print(f"{row['batch']:>5} {row['median_ms']:>10.2f} {row['p90_ms']:>9.2f} {row['samples_per_s']:>10.1f}")
    return 0
