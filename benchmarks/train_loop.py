"""Training throughput of sepconv's loop against a plain PyTorch loop, side by side in one run.

Both train the same model (same initial weights) on the same data (the bundled digits) at the
same batch size, optimizer (AdamW, or SGD with Nesterov momentum 0.9; same lr and weight
decay), label-smoothed cross-entropy and per-step cosine schedule, on the same number of
threads. Epochs alternate (plain, sepconv, plain, sepconv, ...) so that both see the same machine
load; the median images/s over the timed epochs (after one warm-up epoch each) is reported, per
wall-clock second and per CPU-second of this process (steadier on a shared machine), and the ratios.

Both run in fp32 without torch.compile (sepconv's automatic speed settings are pinned off here;
``benchmarks/train_speed.py`` measures those), NCHW unless ``--channels-last``. What differs is the
loop itself: the plain loop is the textbook one (a ``DataLoader`` with
``shuffle=True`` over a ``TensorDataset`` of preprocessed images, ``loss.item()`` every step);
sepconv's (:meth:`sepconv.train.Trainer.train_epoch`) gathers each batch in one indexing op,
augments it on the fly (random resized crop + normalisation as one ``grid_sample``: work the
plain loop does not do), keeps its running sums on the device and syncs every few steps.

Usage::

    python benchmarks/train_loop.py [--model mobilenet_v2:width_mult=0.5] [--img-size 32] [--batch-size 128]
                                    [--epochs 3] [--threads N] [--channels-last] [--optimizer adamw|sgd]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from sepconv.models import create_model, parse_spec
from sepconv.train import TrainConfig, Trainer


def timed(fn):  # noqa: ANN001, ANN201
    """``fn()``'s images, wall-clock seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    images = fn()
    return images, time.perf_counter() - wall, time.process_time() - cpu


def plain_epoch(model, loader, optimizer, scheduler, channels_last: bool) -> int:
    """One epoch of the textbook loop; returns the number of images."""
    model.train()
    seen = 0
    for x, y in loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss.item()  # logged every step, as a plain loop does
        seen += y.numel()
    return seen


def plain_setup(trainer: Trainer, optimizer_name: str = "adamw", channels_last: bool = False,
                epochs: int | None = None):  # noqa: ANN201
    """The textbook loop's (model, loader, optimizer, scheduler) for the same model, initial
    weights, data, batch size, lr and weight decay as ``trainer``, fp32."""
    config = trainer.config
    model = create_model(config.model, **trainer.model.provenance.kwargs)
    model.load_state_dict(trainer.model.state_dict())  # the same initial weights
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    data = trainer.data.train
    images = trainer.aug.eval(data.images).contiguous()  # preprocessed once: resized and normalised
    loader = DataLoader(TensorDataset(images, data.labels), batch_size=config.batch_size, shuffle=True,
                        drop_last=True)
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                    weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = len(loader) * (epochs or config.epochs)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    return model, loader, optimizer, scheduler


def sepconv_epoch(trainer: Trainer, epoch: int) -> int:
    """One epoch of sepconv's loop; returns the number of images."""
    trainer.train_epoch(epoch)
    return trainer.steps_per_epoch * trainer.local_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2:width_mult=0.5")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per loop (after one warm-up epoch)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name, kwargs = parse_spec(args.model)
    epochs = args.epochs + 1
    config = TrainConfig(name, kwargs, data="digits", img_size=args.img_size, batch_size=args.batch_size,
                         epochs=epochs, optimizer=args.optimizer, channels_last=args.channels_last, precision="fp32",
                         compile=False, progress=False, threads=args.threads)
    trainer = Trainer(config)
    model, loader, optimizer, scheduler = plain_setup(trainer, args.optimizer, args.channels_last)

    runs: dict[str, list[tuple[int, float, float]]] = {"plain": [], "sepconv": []}
    for epoch in range(epochs):
        runs["plain"].append(timed(lambda: plain_epoch(model, loader, optimizer, scheduler, args.channels_last)))
        runs["sepconv"].append(timed(lambda: sepconv_epoch(trainer, epoch)))
        line = ", ".join(f"{k} {v[-1][0] / v[-1][1]:.0f} img/s" for k, v in runs.items())
        print(f"epoch {epoch}{' (warm-up)' if epoch == 0 else ''}: {line}", flush=True)
    wall = {k: statistics.median(n / w for n, w, _ in v[1:]) for k, v in runs.items()}
    cpu = {k: statistics.median(n / c for n, _, c in v[1:]) for k, v in runs.items()}
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{args.model} on digits at {args.img_size} px, batch {args.batch_size}, {args.optimizer}, "
          f"{torch.get_num_threads()} threads{', channels_last' if args.channels_last else ''}: median of "
          f"{args.epochs} epochs each, alternating; load average {load}")
    print(f"wall clock: plain PyTorch loop {wall['plain']:.0f} images/s, sepconv loop {wall['sepconv']:.0f} images/s; "
          f"ratio sepconv/plain {wall['sepconv'] / wall['plain']:.2f}x")
    print(f"per CPU-second: plain {cpu['plain']:.0f}, sepconv {cpu['sepconv']:.0f} images; "
          f"ratio {cpu['sepconv'] / cpu['plain']:.2f}x")


if __name__ == "__main__":
    main()
