"""``sepconv separate``: a trained model's standard convs turned separable, with the report.

The model is any model reference (:func:`sepconv.resolve.resolve_model`): a sepconv checkpoint
(``.safetensors`` with its JSON sidecar) or run directory, a registry spec
(``mobilenet_v1:conv=standard,width_mult=0.25`` -- random weights unless ``--weights``, for trying
the command) or ``package.module:callable``. The
calibration batch is random normal unless ``--data`` gives real images, which also give top-1
accuracy before and after; ``--recalibrate-bn`` re-estimates BatchNorm statistics on them and
``--finetune`` distils the original into the separated model (:mod:`sepconv.separation.finetune`).

Example::

    $ sepconv separate mobilenet_v1:conv=standard,width_mult=0.25,num_classes=10 --input-size 32 \\
          --to depthwise --depth-multiplier 2 --out sep.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console

from .._util.io import check_output
from ..formats.checkpoint import check_checkpoint_output, save_model
from ..formats.plan import TARGETS
from ..models.provenance import provenance_of
from ..separation.core import separate
from .model_arg import add_model_arguments, resolve_args


def _layer_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no layer")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sepconv separate`` (see :mod:`sepconv.cli`)."""
    p = subparsers.add_parser(
        "separate", help="turn a trained model's standard convs into separable ones, in closed form",
        description="Replace each standard conv of a model by a depthwise-separable (per-channel truncated "
                    "SVD), spatially separable (k x 1 then 1 x k, SVD of the reshaped kernel) or grouped "
                    "(block diagonal under the best channel permutation) form computed from its weights, and "
                    "report per layer: weight error, output error on a calibration batch, params, MACs "
                    "(multiply-accumulates per image) and measured time, before and after.")
    add_model_arguments(p)
    p.add_argument("--to", choices=TARGETS, default="depthwise", help="the separable form (default depthwise)")
    p.add_argument("--depth-multiplier", type=int, default=1, metavar="D",
                   help="depthwise outputs per input channel, 1..min(N, k*k) (default 1)")
    p.add_argument("--rank", type=int, default=None, metavar="R",
                   help="channels between the k x 1 and 1 x k convs, 1..min(M*k, N*k) "
                        "(default: out_channels, capped at the exact rank)")
    p.add_argument("--groups", type=int, default=None, metavar="G", help="groups of the grouped form (required for it)")
    p.add_argument("--layers", type=_layer_list, default=None, metavar="NAME,...",
                   help="only these convs: module names or shell patterns, comma-separated ('blocks.*'); "
                        "default: all eligible")
    p.add_argument("--min-macs", type=float, default=0, metavar="N", help="skip convs with fewer MACs per image")
    p.add_argument("--input-size", type=int, default=None, metavar="S",
                   help="calibration image height and width (default: the model's img_size or registry input "
                        "size, else 224)")
    p.add_argument("--batch", type=int, default=None, metavar="B",
                   help="calibration images (default 8 random ones, or 256 real ones with --data)")
    p.add_argument("--threads", type=int, default=None, metavar="T", help="torch threads for timing")
    p.add_argument("--no-time", action="store_true", help="skip the per-layer timing")
    p.add_argument("--data", default=None, metavar="SPEC",
                   help="real images (a sepconv train data spec: digits, folder:PATH, cifar10:PATH) for calibration "
                        "and accuracy before/after (default: random calibration inputs, no accuracy)")
    p.add_argument("--recalibrate-bn", action="store_true",
                   help="re-estimate BatchNorm statistics on the calibration images after separating (needs --data)")
    p.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="then distil the original into the separated model for EPOCHS epochs with the training loop "
                        "(needs --data, or a checkpoint written by sepconv train)")
    p.add_argument("--lr", type=float, default=0.01, help="fine-tune learning rate (SGD, cosine; default 0.01)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="write the separated model here (.safetensors + JSON sidecar)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a checkpoint already at --out (without it, one there is refused before any work)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.out is not None:  # before any work: the suffix, the folder, a checkpoint already there
        check_checkpoint_output(args.out, "out", overwrite=args.overwrite)
    if args.batch is None:
        args.batch = 8 if args.data is None else 256
    if args.batch < 1:
        raise ValueError(f"--batch={args.batch} must be a positive integer")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads={args.threads} must be a positive integer")
        torch.set_num_threads(args.threads)
    if args.finetune < 0:
        raise ValueError(f"--finetune={args.finetune} must be a number of epochs >= 0")
    resolved = resolve_args(args)
    model = resolved.model
    if args.out is not None and provenance_of(model) is None:  # said before the work, not after
        raise ValueError(f"--out: {args.model} is no zoo model, so a checkpoint of it could not be rebuilt; "
                         "separate it in Python and save it yourself")
    if args.out is not None:  # the separated model is at most the original's size
        check_output(args.out, "out", need_bytes=sum(t.numel() * t.element_size() for t in model.state_dict().values()))
    trained = resolved.sidecar.train if resolved.sidecar is not None and resolved.sidecar.train else {}
    data = args.data or (trained.get("data") if args.finetune else None)
    if args.finetune and data is None:
        raise ValueError("--finetune needs --data SPEC (the model's checkpoint does not name its training data)")
    if args.recalibrate_bn and data is None:
        raise ValueError("--recalibrate-bn needs --data SPEC: BatchNorm statistics from random inputs would be wrong")
    common = dict(depth_multiplier=args.depth_multiplier, rank=args.rank, groups=args.groups, layers=args.layers,
                  min_macs=args.min_macs, measure_time=not args.no_time)
    if data is None:
        new, report = separate(model, args.to, input_shape=resolved.shape(args.batch, args.input_size), **common)
    else:
        from ..separation.finetune import Distillation

        distill = Distillation(model, data, img_size=args.input_size or trained.get("img_size"),
                               epochs=max(args.finetune, 1), lr=args.lr, progress=True)
        original = distill.accuracy(model)
        new, report = separate(model, args.to, calibration=distill.calibration(args.batch),
                               recalibrate_bn=args.recalibrate_bn, **common)
        report.accuracy = {"original": original, "separated": distill.accuracy(new)}
        if args.finetune:
            report.accuracy["finetuned"] = float(distill.finetune(new)["val_acc"])
    if args.out is not None:
        save_model(new, args.out, extra={"train": trained} if trained else None)
    if args.json:
        print(report.to_json(), end="")
    else:
        console = Console()
        Console(width=console.width if console.is_terminal else 160).print(report.table())
        if args.out is not None:
            print(f"wrote {args.out}")
    return 0
