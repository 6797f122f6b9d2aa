"""``sepconv export`` and ``sepconv bench``: the deploy library from the command line.

Example::

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

from ..models import parse_spec
from ..resolve import create_model, default_input_shape, load_model_spec

FORMATS = ("onnx",)
BENCH_BACKENDS = ("eager", "channels_last", "inductor", "onnxruntime", "int8")
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
    p.set_defaults(func=run_export)

    b = subparsers.add_parser(
        "bench", help="latency of a model on each inference backend, side by side",
        description="Measure MODEL's median latency on each backend (BN folded for all) at each batch size, "
                    "in one run, with the speed-up over eager PyTorch.")
    _model_args(b)
    b.add_argument("--backends", default="eager,channels_last,onnxruntime",
                   help=f"comma-separated list of {', '.join(BENCH_BACKENDS)}, or 'all' "
                        "(default eager,channels_last,onnxruntime; inductor compiles for minutes)")
    b.add_argument("--batch", type=int, nargs="+", default=[1], metavar="B", help="batch sizes (default 1)")
    b.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    b.add_argument("--repeats", type=int, default=20, help="timed runs per backend, median reported (default 20)")
    b.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    b.add_argument("--json", action="store_true", help="print JSON instead of the table")
    b.set_defaults(func=run_bench)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="a registry name with optional arguments ('name:key=value,...'), a sepconv checkpoint "
                        "(runs/x/model.safetensors, a separated model too) or package.module:callable")
    p.add_argument("--weights", metavar="FILE",
                   help="a sepconv .safetensors checkpoint to load into the registry model MODEL names")
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="input height and width (default: the model's registry size, else 224)")


def _model(args: argparse.Namespace) -> tuple[torch.nn.Module, tuple[int, int, int, int]]:
    if args.weights:
        name, kwargs = parse_spec(args.model)
        model = create_model(name, weights=args.weights, **kwargs)
    else:
        model, _ = load_model_spec(args.model)
    model = model.eval()
    shape = default_input_shape(model)
    if args.input_size is not None:
        if args.input_size < 1:
            raise ValueError(f"--input-size={args.input_size} must be a positive integer")
        shape = (1, shape[1], args.input_size, args.input_size)
    return model, shape


def run_export(args: argparse.Namespace) -> int:
    from ..engines.onnx_export import export_onnx, max_abs_diff, to_onnx

    if args.calib and not args.int8:
        raise ValueError("--calib is for --int8 only")
    if args.int8 and not args.calib:
        raise ValueError("--int8 needs calibration images: --calib digits, or a .npy/.npz/.safetensors file")
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out={args.out!r} is a directory; give a file name")
    model, shape = _model(args)
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
    weights = "" if args.weights else " (random weights: the agreement says little about trained accuracy)"
    quantized = quantize(exported.proto, calib, per_channel=not args.per_tensor, held_out=held, labels=held_labels,
                         path=out, data_name=data)
    print(f"wrote {out}: int8 QDQ, {'per-tensor' if args.per_tensor else 'per-channel'} weights, "
          f"calibrated on {len(calib)} images; fp32 export vs PyTorch max |diff| {diff:.2g}")
    print(quantized.report.summary() + weights)
    return 0


def _ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(ops.items(), key=lambda kv: -kv[1]))


def parse_bench_backends(text: str) -> list[str]:
    names = list(BENCH_BACKENDS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCH_BACKENDS]
    if unknown or not names:
        raise ValueError(f"--backends={text!r} must be 'all' or a comma-separated list of {', '.join(BENCH_BACKENDS)}")
    return names


def run_bench(args: argparse.Namespace) -> int:
    from .._util.checks import positive_int
    from .._util.runtime import cores
    from .._util.timing import measure
    from ..data.images import digits
    from ..deploy.optimize import optimize as compile_model
    from ..engines.ort import ort_session
    from ..engines.quantize import quantize

    backends = parse_bench_backends(args.backends)
    for batch in args.batch:
        positive_int("--batch", batch)
    positive_int("--repeats", args.repeats)
    model, shape = _model(args)
    threads = cores() if args.threads is None else positive_int("--threads", args.threads)
    rows = []
    int8 = None
    for batch in args.batch:
        x = torch.randn((batch, *shape[1:]), generator=torch.Generator().manual_seed(0))
        fp32 = [b for b in backends if b != "int8"]
        if fp32:
            compiled = compile_model(model, x, candidates=fp32, threads=threads, repeats=args.repeats,
                                     warmup=args.warmup)
            rows += [{"backend": r.backend, "batch": batch, "error": r.error,
                      **({"median_ms": r.timing.median_ms, "p90_ms": r.timing.p90_ms} if r.timing else {})}
                     for r in compiled.results]
        if "int8" in backends:
            if int8 is None:
                print("int8: calibrating on 256 bundled digits images...", file=sys.stderr)
                images, _ = digits(shape)
                int8 = ort_session(quantize(model, images[:CALIB_COUNT], input_shape=shape).proto, threads=threads)
            timing = measure(lambda: int8(x), args.repeats, args.warmup)
            rows.append({"backend": "int8", "batch": batch, "error": None, "median_ms": timing.median_ms,
                         "p90_ms": timing.p90_ms})
    for row in rows:
        eager = next((r.get("median_ms") for r in rows if r["backend"] == "eager" and r["batch"] == row["batch"]), None)
        if eager and row.get("median_ms"):
            row["speedup_vs_eager"] = eager / row["median_ms"]
    if args.json:
        print(json.dumps({"model": args.model, "input_shape": list(shape[1:]), "threads": threads, "rows": rows},
                         indent=2))
        return 0
    print(f"{args.model}: input {list(shape[1:])}, {threads} threads, BN folded, median of {args.repeats} runs")
    print(f"{'backend':<14} {'batch':>5} {'median ms':>10} {'p90 ms':>9} {'vs eager':>9}")
    for row in rows:
        if row.get("median_ms") is None:
            print(f"{row['backend']:<14} {row['batch']:>5} {'-':>10} {'-':>9} {'-':>9}  {row['error']}")
            continue
        speed = f"{row['speedup_vs_eager']:.2f}x" if "speedup_vs_eager" in row else "-"
        print(f"{row['backend']:<14} {row['batch']:>5} {row['median_ms']:>10.2f} {row['p90_ms']:>9.2f} {speed:>9}")
    return 0
