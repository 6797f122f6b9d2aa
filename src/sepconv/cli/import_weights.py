"""``sepconv import-weights``: a torchvision, timm or Keras checkpoint as a sepconv checkpoint.

Example::

    $ sepconv import-weights keras mobilenet.weights.h5 --model mobilenet_v1 --width-mult 0.25 \\
          --out mnv1.safetensors
    mobilenet_v1 <- keras mobilenet.weights.h5: 137 tensors -> mnv1.safetensors (+ mnv1.json)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._util.io import check_output
from ..formats.checkpoint import check_checkpoint_output
from ..weights import SOURCES, create_with_weights, save


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-weights", help="convert torchvision/timm/Keras weights to a sepconv checkpoint",
        description="Map every tensor of a torchvision, timm or Keras checkpoint onto a sepconv model "
                    "built as the source computes, and save it as .safetensors + JSON sidecar, which "
                    "`sepconv.create_model(weights=OUT)` rebuilds. Nothing is downloaded.")
    p.add_argument("source", metavar="SOURCE", help=f"where the weights come from: {', '.join(SOURCES)}")
    p.add_argument("path", metavar="PATH", help=".pth/.pt/.safetensors (torchvision, timm); "
                                                ".keras/.weights.h5/.h5 (keras)")
    p.add_argument("--model", required=True, help="sepconv model name (mobilenet_v2, ...) or the source's "
                                                   "own (mobilenetv2_050, MobileNetV2, ...)")
    p.add_argument("--width-mult", type=float, default=None, help="width multiplier (Keras: alpha)")
    p.add_argument("--num-classes", type=int, default=None, help="default: read from the file's classifier")
    p.add_argument("--no-strict", action="store_true",
                   help="skip tensors the model or the file lacks (e.g. a headless file) instead of failing")
    p.add_argument("--out", required=True, help="the sepconv checkpoint to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a checkpoint already at --out (without it, one there is refused before any work)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.source not in SOURCES:
        raise ValueError(f"SOURCE={args.source!r} must be one of {', '.join(SOURCES)}")
    check_checkpoint_output(args.out, "out", overwrite=args.overwrite)  # before the file is even read
    source = Path(args.path)
    if source.is_file():  # the checkpoint holds the same tensors, about the file's size
        check_output(args.out, "out", need_bytes=source.stat().st_size)
    kwargs: dict[str, Any] = {}
    if args.width_mult is not None:
        kwargs["width_mult"] = args.width_mult
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = create_with_weights(args.model, args.path, args.source, strict=not args.no_strict, **kwargs)
    out = save(model, args.out)
    loaded = model.provenance.weights["loaded"]
    print(f"{model.provenance.model} <- {args.source} {Path(args.path).name}: {loaded} tensors -> "
          f"{out} (+ {out.with_suffix('.json').name})")
    return 0
