"""``sepconv compare``: one conv layer in every separable form, and ``--sweep`` over one argument.

``--impl native,im2col`` times every form under PyTorch's kernels and under a reproduction of
Caffe's historical im2col + per-group GEMM algorithm (:mod:`sepconv.engines.im2col`; to explain old
reports, not a recommended path); ``--train`` times forward + backward.

The library is :mod:`sepconv.compare`; this module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import inspect
import json

from rich.console import Console

from .._util.console import stdout_console
from .._util.figures import require_matplotlib
from ..compare.layer import compare_layer
from ..compare.sweep import PARAMETERS, parse_sweep, save_sweep_plot, sweep_layer, sweep_table
from ..engines.im2col import IMPLS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sepconv compare`` (see :mod:`sepconv.cli`)."""
    p = subparsers.add_parser(
        "compare", help="one conv layer in all its forms: params, MACs, ratios, measured time",
        description="Compare a standard KxK conv with its grouped, depthwise-separable, spatially "
                    "separable and segmented forms: parameters and MACs (exact cost model), their ratio "
                    "to the standard conv beside the closed-form theory, and measured latency.",
    )
    p.add_argument("--in-channels", type=int, default=3, metavar="M", help="input channels (default 3)")
    p.add_argument("--out-channels", type=int, default=4, metavar="N", help="output channels (default 4)")
    p.add_argument("--kernel", type=int, default=3, metavar="K", help="kernel size K (default 3)")
    p.add_argument("--size", type=int, default=64, metavar="D", help="input height and width (default 64)")
    p.add_argument("--stride", type=int, default=1, help="stride (default 1)")
    p.add_argument("--padding", choices=("same", "valid"), default="same",
                   help="same (default: the map keeps its size at stride 1) or valid (no padding: the seed's "
                        "81 against 72 with --in-channels 1 --out-channels 1 --size 5)")
    p.add_argument("--groups", type=int, default=None, metavar="G",
                   help="groups of the grouped form (default: the largest of 8, 4, 2 dividing M and N)")
    p.add_argument("--depth-multiplier", type=int, default=1, metavar="d",
                   help="depthwise outputs per input channel (default 1)")
    p.add_argument("--segments", type=int, default=None, metavar="S",
                   help="segments of the segmented form (default: the largest of 8, 4, 2 below N dividing it)")
    p.add_argument("--batch", type=int, default=1, metavar="B", help="batch size (default 1)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch threads for timing (default: torch's default here)")
    p.add_argument("--repeats", type=int, default=20, metavar="R",
                   help="timed runs per form, median reported; 0 skips timing (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    p.add_argument("--impl", default="native", metavar="NAME[,NAME...]",
                   help=f"convolution implementations to time every form with, side by side: {', '.join(IMPLS)}. "
                        "native = PyTorch's own kernels; im2col = a reproduction of Caffe's historical "
                        "algorithm (per image im2col, then one GEMM per group: a depthwise conv becomes "
                        "N*C GEMV-shaped calls), to see why old reports found depthwise-separable nets slow "
                        "to train - not a recommended path. Shows each im2col form's matrix calls "
                        "(default native)")
    p.add_argument("--train", action="store_true",
                   help="time forward + backward (input and weight gradients) instead of forward only")
    group = p.add_argument_group("sweep")
    group.add_argument("--sweep", default=None, metavar="PARAM[=V1,V2,...]",
                       help=f"repeat the comparison over values of one of: {', '.join(PARAMETERS)} "
                            "(default values: segments 1..N's divisors, kernel 1,3,5,7, ...)")
    group.add_argument("--plot", default=None, metavar="FILE.png", help="with --sweep: write the chart")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.sweep is not None:
        return run_sweep(args)
    if args.plot is not None:
        raise ValueError(f"plot={args.plot!r} draws a sweep: give --sweep PARAM as well")
    result = compare_layer(
        in_channels=args.in_channels, out_channels=args.out_channels, kernel=args.kernel, size=args.size,
        stride=args.stride, groups=args.groups, depth_multiplier=args.depth_multiplier, segments=args.segments,
        batch=args.batch, threads=args.threads, repeats=args.repeats, warmup=args.warmup, impl=args.impl,
        train=args.train, padding=args.padding,
    )
    if args.json:
        print(result.to_json())
    else:
        Console().print(result.table())
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    if args.plot is not None and not args.plot.lower().endswith(".png"):
        raise ValueError(f"plot={args.plot!r} must end in .png")
    if args.plot is not None:
        require_matplotlib("plot", args.plot)
    config = {name: getattr(args, name) for name in inspect.signature(compare_layer).parameters if hasattr(args, name)}
    parameter, values = parse_sweep(args.sweep, config)
    doc = sweep_layer(parameter, values, **config)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        stdout_console().print(sweep_table(doc))
    if args.plot:
        save_sweep_plot(doc, args.plot)
        Console(stderr=True).print(f"wrote {args.plot}", highlight=False, soft_wrap=True)
    return 0
