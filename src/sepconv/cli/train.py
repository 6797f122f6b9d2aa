"""``sepconv train``, ``eval``, ``sweep`` and ``inspect``: the training library from the command line.

Example::

    $ sepconv train mobilenet_v2 --width-mult 0.5 --data digits --img-size 32 --epochs 30 --out runs/mnv2
    $ sepconv eval runs/mnv2/model.safetensors --data digits
    $ sepconv train ssnet_m --data photos --scale 2 --batch-size 16 --epochs 20 --out runs/ssnet_m
    $ sepconv eval runs/ssnet_m
    $ sepconv sweep mobilenet_v2 --width-mults 0.25,0.5,0.75,1.0 --data digits --out runs/sweep
    $ sepconv inspect runs/mnv2
    $ torchrun --standalone --nproc_per_node 2 -m sepconv train mobilenet_v2 --data digits --out runs/ddp

``train`` chooses its speed settings (precision, channels_last, torch.compile) for the machine
(:mod:`sepconv.train.speed`) and prints them, with the reasons, in its first lines on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import torch

from ..models import parse_spec
from ..train.loop import TrainConfig
from ..train.optim import OPTIMIZERS
from ..train.speed import PRECISIONS

HELP_DATA = ("'digits' (bundled, no download), 'folder:PATH' (ImageFolder: one sub-folder per class; train/ and val/ "
             "sub-directories or a --val-split), 'cifar10:PATH' / 'cifar100:PATH' (python-pickle release), or a "
             "directory (its kind detected); for a super-resolution model: 'photos' (the photographs bundled in "
             "scikit-learn and scikit-image) or 'photos:PATH' (a folder of PNG/JPEG photos, --val-split of them "
             "held out)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``eval``, ``sweep`` and ``inspect`` (see :mod:`sepconv.cli`)."""
    t = subparsers.add_parser(
        "train", help="train a model on digits, an ImageFolder or CIFAR (super-resolution: photos); checkpoints, "
                      "metrics, curves",
        description="Train MODEL (a registry name, optionally 'name:key=value,...'). Each epoch writes a checkpoint "
                    "(safetensors weights + JSON state, atomically), metrics.csv/json and curve.png to --out; "
                    "--resume continues exactly. Under torchrun it trains data-parallel (DDP). Precision, "
                    "channels_last and torch.compile are chosen for the machine unless given, and printed first.")
    t.add_argument("model", metavar="MODEL", help="registry name, optionally with arguments: 'name:key=value,...'")
    t.add_argument("--width-mult", type=float, default=None, help="width multiplier alpha (the model's width_mult)")
    t.add_argument("--scale", type=int, default=None,
                   help="super-resolution: the upscaling factor, 2, 3 or 4 (the model's scale; default its own, 2)")
    _train_args(t)
    t.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/<model>)")
    t.add_argument("--json", action="store_true", help="print the final metrics as JSON on stdout")
    t.set_defaults(func=run_train)

    e = subparsers.add_parser(
        "eval", help="top-1 accuracy of a trained checkpoint (super-resolution: PSNR/SSIM against bicubic)",
        description="Evaluate CHECKPOINT (a model .safetensors written by 'sepconv train', or its run directory) "
                    "with the preprocessing it was trained with. A super-resolution model: PSNR and SSIM (Y of "
                    "BT.601, 'scale' pixels cropped at the borders) of each held-out photo, beside bicubic "
                    "interpolation's.")
    _checkpoint_args(e, "evaluate")
    e.add_argument("--data", default=None, metavar="SPEC", help=f"{HELP_DATA}; default: the training data")
    e.add_argument("--split", choices=("val", "train"), default="val", help="which split (default val)")
    e.add_argument("--batch-size", type=int, default=256, help="images per batch (default 256)")
    e.add_argument("--workers", type=int, default=0, help="image-decoding processes for folders (default 0)")
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    e.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    e.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto",
                   help="autocast precision (default auto: the run's own where this machine can, else fp32)")
    e.set_defaults(func=run_eval)

    s = subparsers.add_parser(
        "sweep", help="accuracy against MACs and latency over width multipliers (trained)",
        description="Train MODEL at each width multiplier with the same recipe, then count its MACs and measure its "
                    "latency: the MobileNet paper's accuracy/computation trade-off on real data. Writes "
                    "OUT/width-<alpha>/ runs, OUT/sweep.json and OUT/sweep.png.")
    s.add_argument("model", metavar="MODEL", help="registry name, optionally with arguments (not width_mult)")
    s.add_argument("--width-mults", default="0.25,0.5,0.75,1.0", metavar="A,B,...",
                   help="comma-separated width multipliers (default 0.25,0.5,0.75,1.0)")
    s.add_argument("--img-sizes", default=None, metavar="S1,S2,...",
                   help="also sweep the input size, MobileNets' resolution multiplier (Section 4.2): every width at "
                        "every size, each trained and measured at it, into OUT/width-<alpha>-img-<size> "
                        "(not with --img-size)")
    _train_args(s)
    s.add_argument("--out", default=None, metavar="DIR", help="sweep directory (default runs/sweep-<model>)")
    s.add_argument("--repeats", type=int, default=20, help="timed runs per model for latency (default 20)")
    s.add_argument("--json", action="store_true", help="print sweep.json's document instead of the table")
    s.set_defaults(func=run_sweep)

    i = subparsers.add_parser(
        "inspect", help="dead depthwise kernels and BN scale statistics of a checkpoint",
        description="Per depthwise layer of CHECKPOINT: kernels with near-zero L2 norm ('dead', the MobileNetV1 "
                    "failure), the following BatchNorm's |gamma| and channels a ReLU after it keeps at zero.")
    _checkpoint_args(i, "inspect")
    i.add_argument("--tol", type=float, default=1e-3, help="a kernel is dead below this L2 norm (default 1e-3)")
    i.set_defaults(func=run_inspect)


def _checkpoint_args(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="model .safetensors file or run directory")
    p.add_argument("--ema", action="store_true", help=f"in a run directory, {verb} the EMA weights")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="SPEC", help=HELP_DATA)
    p.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    p.add_argument("--batch-size", type=int, default=128,
                   help="global batch size, split across DDP ranks (default 128)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw",
                   help="adamw (default) or sgd (Nesterov momentum 0.9)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: adamw 0.002, sgd 0.1 x batch/256)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="on conv/linear weights, never on BN or biases (default: adamw 0.05, sgd 5e-4)")
    p.add_argument("--dw-weight-decay", type=float, default=0.0, help="on depthwise kernels (default 0, as MobileNets)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--warmup-epochs", type=float, default=1.0, help="linear LR warm-up before the cosine (default 1)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="default 0.1")
    p.add_argument("--ema", type=float, nargs="?", const=0.999, default=None, metavar="DECAY",
                   help="keep an EMA of the weights (decay default 0.999) and validate it too")
    p.add_argument("--img-size", type=int, default=None,
                   help="input size (default: digits/CIFAR 32, folders 224); super-resolution: the side of a "
                        "high-resolution training patch (default 48)")
    p.add_argument("--val-split", type=float, default=0.2, help="held-out fraction of a folder without val/ (0.2)")
    p.add_argument("--crop-scale", default=None, metavar="MIN[,MAX]",
                   help="random-resized-crop area range (default: digits 0.8, CIFAR 0.35, folders 0.08; max 1)")
    p.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=None,
                   help="random horizontal flips (default: on, off for digits)")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto",
                   help="training precision: fp32, or bf16/fp16 autocast (fp16 with a gradient scaler, CUDA only); "
                        "default auto: bf16 where the CPU's oneDNN or the GPU has native bf16, fp16 on other GPUs, "
                        "else fp32; one the machine cannot run is refused")
    _on_off(p, "channels-last", "NHWC memory format for model and inputs (default: on for models with convolutions)")
    _on_off(p, "compile", "torch.compile the training step (default: only when the run's remaining steps x the "
                          "expected saving per step outweigh the estimated compile time)")
    p.add_argument("--amp", action="store_true",
                   help="deprecated: use --precision (--amp means the device's reduced precision: bf16 on CPU, "
                        "fp16 on CUDA)")
    p.add_argument("--workers", type=int, default=0, help="image-decoding processes for folders (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    p.add_argument("--seed", type=int, default=0, help="seeds initialisation, data order and augmentation (0)")
    p.add_argument("--save-every", type=int, default=0, metavar="STEPS",
                   help="also checkpoint every STEPS steps within an epoch (default: at epoch ends only)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines on stderr")


def _on_off(p: argparse.ArgumentParser, name: str, help_text: str) -> None:
    """``--NAME`` / ``--no-NAME`` for one setting whose default (None) is automatic. Two actions,
    ``--no-NAME`` first: an error about the setting then names ``--NAME`` (sepconv.cli.flags takes
    the last option of a dest), not the negation BooleanOptionalAction would give."""
    dest = name.replace("-", "_")
    p.add_argument(f"--no-{name}", dest=dest, action="store_false", default=None, help=f"turn off: --{name}")
    p.add_argument(f"--{name}", dest=dest, action="store_true", default=None, help=help_text)


def _warn(message: str) -> None:
    print(f"sepconv: warning: {message}", file=sys.stderr)


def _crop_scale(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise ValueError(f"--crop-scale={text!r} must be MIN or MIN,MAX (fractions of the image area)")
    return (parts[0], parts[1] if len(parts) == 2 else 1.0)


def _config(args: argparse.Namespace, out: str) -> TrainConfig:
    name, kwargs = parse_spec(args.model)
    if getattr(args, "width_mult", None) is not None:
        kwargs["width_mult"] = args.width_mult
    if getattr(args, "scale", None) is not None:
        kwargs["scale"] = args.scale
    if args.amp:
        _warn("--amp is deprecated: --precision auto (the default) chooses the machine's reduced precision; "
              "--amp now means that one (bf16 on CPU where it is native, fp16 on CUDA)")
    with warnings.catch_warnings():  # TrainConfig's own DeprecationWarning: said above, on the command line
        warnings.simplefilter("ignore", DeprecationWarning)
        return TrainConfig(
            model=name, model_kwargs=kwargs, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
            optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, dw_weight_decay=args.dw_weight_decay,
            momentum=args.momentum, warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
            ema=args.ema, amp=args.amp, precision=args.precision, channels_last=args.channels_last,
            compile=args.compile, img_size=args.img_size, val_split=args.val_split,
            crop_scale=_crop_scale(args.crop_scale), hflip=args.hflip, seed=args.seed, workers=args.workers,
            threads=args.threads, out=out, resume=args.resume, save_every=args.save_every, device=args.device,
            progress=not args.quiet)


def run_train(args: argparse.Namespace) -> int:
    from ..train.loop import Trainer

    config = _config(args, args.out or f"runs/{parse_spec(args.model)[0]}")
    trainer = Trainer(config)
    if trainer.info.is_main:  # the first lines: what this run trains with, and why
        for line in trainer.speed_lines():
            print(f"sepconv train: {line}", file=sys.stderr, flush=True)
    summary = trainer.fit()
    if not trainer.info.is_main:  # under torchrun, rank 0 reports
        return 0
    if args.json:
        print(json.dumps(summary, indent=2))
    elif "val_psnr" in summary:
        for row in summary.get("held_out", []):
            print(_sr_line(row))
        print(f"{config.model} {config.model_kwargs} on {config.data}: held-out PSNR {summary['val_psnr']:.2f} dB, "
              f"SSIM {summary['val_ssim']:.4f} (bicubic {summary['val_bicubic_psnr']:.2f} dB, "
              f"{summary['val_bicubic_ssim']:.4f}) after {summary['epochs_done']} epochs; checkpoint "
              f"{config.out}/model.safetensors")
    else:
        ema = f", EMA {summary['ema_val_acc']:.4f}" if "ema_val_acc" in summary else ""
        print(f"{config.model} on {config.data}: val acc {summary.get('val_acc', float('nan')):.4f}{ema} after "
              f"{summary['epochs_done']} epochs; checkpoint {config.out}/model.safetensors")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ..train.loop import evaluate

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads={args.threads} must be a positive integer")
        torch.set_num_threads(args.threads)
    result = evaluate(args.checkpoint, args.data, split=args.split, batch_size=args.batch_size, ema=args.ema,
                      device=args.device, workers=args.workers, precision=args.precision)
    if args.json:
        print(json.dumps(result, indent=2))
    elif result.get("task") == "super_resolution":
        for row in result["per_image"]:
            print(_sr_line(row))
        print(f"{result['checkpoint']} on {result['data']} ({result['split']}, {result['images']} photos, "
              f"x{result['scale']}): PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f} (bicubic "
              f"{result['bicubic_psnr']:.2f} dB, {result['bicubic_ssim']:.4f}); Y, {result['scale']} px border "
              f"cropped ({result['precision']})")
    else:
        print(f"{result['checkpoint']} on {result['data']} ({result['split']}, {result['images']} images, "
              f"{result['img_size']} px): top-1 {result['acc']:.4f}, loss {result['loss']:.4f}, "
              f"{result['images_per_s']:.0f} images/s ({result['precision']})")
    return 0


def _sr_line(row: dict) -> str:
    """One held-out photo's figures, a line of ``sepconv train`` / ``eval`` for super-resolution."""
    return (f"  {row['image']}: PSNR {row['psnr']:.2f} dB (bicubic {row['bicubic_psnr']:.2f}), SSIM {row['ssim']:.4f} "
            f"(bicubic {row['bicubic_ssim']:.4f})")


def run_sweep(args: argparse.Namespace) -> int:
    from ..train.width_sweep import parse_img_sizes, parse_widths, sweep, sweep_table

    widths = parse_widths(args.width_mults)
    img_sizes = None if args.img_sizes is None else parse_img_sizes(args.img_sizes)
    if args.repeats < 1:
        raise ValueError(f"--repeats={args.repeats} must be a positive integer")
    out = args.out or f"runs/sweep-{parse_spec(args.model)[0]}"
    doc = sweep(_config(args, out), widths, out, img_sizes=img_sizes, repeats=args.repeats)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        from .._util.console import stdout_console

        stdout_console().print(sweep_table(doc))
        print(f"wrote {out}/sweep.json and {out}/sweep.png", file=sys.stderr)
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from ..train.health import health_table, inspect_checkpoint

    doc = inspect_checkpoint(args.checkpoint, tol=args.tol, ema=args.ema)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        from .._util.console import stdout_console

        stdout_console().print(health_table(doc))
    return 0
