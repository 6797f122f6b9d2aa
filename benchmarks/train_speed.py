"""``sepconv train``'s automatic speed settings against fp32, and against a plain PyTorch loop.

Speed (the default mode): whole commands, each a fresh process timed from its start to its exit,
side by side in interleaved rounds (each round runs every variant once, the order rotated from
round to round so that none always goes first), the load average recorded before and after each:

- ``defaults``: ``sepconv train`` as a user types it, its precision, layout and torch.compile
  chosen for the machine (the choice and the reasons it prints are recorded);
- ``fp32``: the same command with ``--precision fp32 --no-compile --no-channels-last`` (same
  augmentation, EMA and evaluation);
- ``plain``: a plain PyTorch loop (``benchmarks/train_loop.py``'s: a ``DataLoader`` over
  preprocessed images, fp32, NCHW, AdamW, label smoothing, cosine schedule) training the same model
  at the same batch size for the same epochs, and evaluating on the validation split after each
  epoch, no augmentation, EMA or checkpoints.

for two cases: MobileNetV2 (width 1.0) at 112 px, batch 32, on the digits (``mnv2_112``), and
README's 32 px digits recipe (``recipe_32``: MobileNetV2 0.5, batch 32, EMA 0.99, 25 epochs,
1 thread; its ``--channels-last`` left to the default). The medians and ratios are printed side
by side and saved, with every sample, under ``benchmarks/results/training/``.

Accuracy (``--accuracy``): README's recipe trained with the defaults and with the fp32 settings
for each of ``--seeds`` seeds (at least 5); the EMA weights' validation accuracy. Passes when the
difference of the two means is within max(0.5 points, the seed spread), the seed spread being the
larger of the two settings' standard deviations over the seeds. ``--jobs`` runs that many commands
at once (each uses 1 thread; default: the number of cores).

Compile cost (``--compile-cost``): torch.compile's measured compile time and per-step saving for
each case's model and batch, against the documented estimates of ``sepconv.train.speed``
(``COMPILE_SECONDS``, ``COMPILE_SAVING``) that the break-even rule uses.

Usage::

    .venv/bin/python benchmarks/train_speed.py [--rounds 2] [--cases mnv2_112,recipe_32]   # ~17 min, 2 cores
    .venv/bin/python benchmarks/train_speed.py --accuracy [--seeds 5] [--jobs 2]             # ~8 min, 2 cores
    .venv/bin/python benchmarks/train_speed.py --compile-cost                               # ~5 min, 2 cores
    .venv/bin/python benchmarks/train_speed.py --accuracy --defaults-flags="--precision bf16"  # bf16 forced
    .venv/bin/python benchmarks/train_speed.py --smoke [--accuracy]   # seconds: checks the script, records nothing
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # train_loop.py, beside this file: its plain loop is the reference

RESULTS = HERE / "results" / "training"
FP32 = ["--precision", "fp32", "--no-compile", "--no-channels-last"]
VARIANTS = ("defaults", "fp32", "plain")


@dataclass(frozen=True)
class Case:
    """One training command: the model spec and ``sepconv train``'s options (without --out)."""

    name: str
    model: str
    img_size: int
    batch_size: int
    epochs: int
    threads: int | None
    extra: tuple[str, ...] = ()  # options beside data, size, batch, epochs, threads
    note: str = ""

    def train_args(self, epochs: int | None = None) -> list[str]:
        threads = ["--threads", str(self.threads)] if self.threads else []
        return [self.model, "--data", "digits", "--img-size", str(self.img_size), "--batch-size",
                str(self.batch_size), "--epochs", str(epochs or self.epochs), *self.extra, *threads]


CASES = {
    # 44 steps per epoch; 3 epochs: ~1 min per command with the defaults on 2 cores, ~2 in fp32 NCHW
    "mnv2_112": Case("mnv2_112", "mobilenet_v2", 112, 32, 3, None, ("--ema", "0.99"),
                     "MobileNetV2 1.0 at 112 px, batch 32, EMA 0.99, 3 epochs, all cores"),
    # README's recipe (its --channels-last left to the default: the defaults choose it)
    "recipe_32": Case("recipe_32", "mobilenet_v2:width_mult=0.5", 32, 32, 25, 1, ("--ema", "0.99"),
                      "README's digits recipe: MobileNetV2 0.5 at 32 px, batch 32, EMA 0.99, 25 epochs, 1 thread"),
}
SMOKE = {  # the same code paths in seconds
    "mnv2_112": Case("mnv2_112", "mobilenet_v2:width_mult=0.35", 32, 128, 1, None, ("--ema", "0.99"), "smoke"),
    "recipe_32": Case("recipe_32", "mobilenet_v2:width_mult=0.35", 16, 128, 1, 1, ("--ema", "0.99"), "smoke"),
}


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def environment() -> dict:
    from sepconv._util.runtime import cores, cpu_name
    from sepconv.train import speed

    caps = speed.probe_capabilities("cpu")
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_name(), "cores": cores(),
            "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn": torch.backends.mkldnn.is_available(), "bf16": caps.bf16, "compile_available": caps.compile,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


# ---- one command ----------------------------------------------------------------------------------

@dataclass
class Sample:
    case: str
    variant: str
    round: int
    wall_s: float
    returncode: int
    load_before: list[float]
    load_after: list[float]
    val_acc: float | None = None
    ema_val_acc: float | None = None
    speed: list[str] = field(default_factory=list)  # the lines `sepconv train` printed first
    seed: int = 0


DEFAULTS_FLAGS: list[str] = []  # --defaults-flags: added to the defaults variant's command


def command(case: Case, variant: str, out: Path, seed: int = 0, epochs: int | None = None) -> list[str]:
    if variant == "plain":
        threads = ["--threads", str(case.threads)] if case.threads else []
        smoke = ["--smoke"] if case.note == "smoke" else []
        return [sys.executable, str(Path(__file__).resolve()), "--plain-run", case.name, "--epochs",
                str(epochs or case.epochs), "--seed", str(seed), *threads, *smoke]
    flags = FP32 if variant == "fp32" else DEFAULTS_FLAGS
    return [sys.executable, "-m", "sepconv", "train", *case.train_args(epochs), *flags, "--seed", str(seed),
            "--out", str(out), "--quiet", "--json"]


def run(case: Case, variant: str, rnd: int, out: Path, seed: int = 0, epochs: int | None = None) -> Sample:
    cmd = command(case, variant, out, seed, epochs)
    before = load()
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    sample = Sample(case.name, variant, rnd, round(wall, 2), proc.returncode, before, load(), seed=seed)
    if proc.returncode != 0:
        print(f"  {variant} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}", file=sys.stderr)
        return sample
    doc = json.loads(proc.stdout)
    sample.val_acc, sample.ema_val_acc = doc.get("val_acc"), doc.get("ema_val_acc")
    sample.speed = [line.removeprefix("sepconv train: ") for line in proc.stderr.splitlines()
                    if line.startswith("sepconv train: ")]
    return sample


# ---- the plain PyTorch loop, as a whole command -------------------------------------------------------

def plain_run(args: argparse.Namespace) -> None:
    """``--plain-run CASE``: train CASE's model with train_loop.py's plain loop; print JSON."""
    from train_loop import plain_epoch, plain_setup

    from sepconv.models import parse_spec
    from sepconv.train import TrainConfig, Trainer

    case = (SMOKE if args.smoke else CASES)[args.plain_run]
    if case.threads:
        torch.set_num_threads(case.threads)
    torch.manual_seed(args.seed)
    name, kwargs = parse_spec(case.model)
    # sepconv's Trainer only loads the data and builds the model here (fp32, NCHW): the loop is plain
    trainer = Trainer(TrainConfig(name, kwargs, data="digits", img_size=case.img_size, batch_size=case.batch_size,
                                  epochs=args.epochs, precision="fp32", compile=False, channels_last=False,
                                  progress=False, seed=args.seed))
    model, loader, optimizer, scheduler = plain_setup(trainer, "adamw", False, args.epochs)
    val_x, val_y = trainer.aug.eval(trainer.data.val.images), trainer.data.val.labels
    acc = 0.0
    for _ in range(args.epochs):
        plain_epoch(model, loader, optimizer, scheduler, False)
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(val_x[i:i + 256]).argmax(1) == val_y[i:i + 256]).sum())
                          for i in range(0, len(val_y), 256))
        acc = correct / len(val_y)
    print(json.dumps({"val_acc": acc, "epochs": args.epochs}))


# ---- speed ------------------------------------------------------------------------------------------

def median(samples: list[Sample], case: str, variant: str) -> float | None:
    walls = [s.wall_s for s in samples if s.case == case and s.variant == variant and s.returncode == 0]
    return statistics.median(walls) if walls else None


def speed_mode(args: argparse.Namespace, cases: list[Case], out_dir: Path) -> int:
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for case in cases:
                order = VARIANTS[rnd % 3:] + VARIANTS[:rnd % 3]  # rotated: no variant always first
                for variant in order:
                    s = run(case, variant, rnd, Path(tmp) / f"{case.name}-{variant}-{rnd}")
                    samples.append(s)
                    acc = "" if s.val_acc is None else f", val acc {s.val_acc:.4f}"
                    ema = "" if s.ema_val_acc is None else f", EMA {s.ema_val_acc:.4f}"
                    print(f"round {rnd + 1}/{args.rounds} {case.name:9s} {variant:8s} {s.wall_s:7.1f} s"
                          f"{acc}{ema} (load {s.load_before[0]:.2f} -> {s.load_after[0]:.2f})", flush=True)
    lines = ["", (f"Whole commands, process start to exit, seconds: median of {args.rounds} interleaved round(s). "
                  "fp32/defaults: the defaults' speed-up over fp32 (> 1: faster); defaults/plain, fp32/plain: time "
                  "against the plain PyTorch loop (> 1: slower than it).")]
    header = (f"{'case':10s} {'defaults':>9s} {'fp32':>9s} {'plain':>9s} {'fp32/defaults':>14s} "
              f"{'defaults/plain':>15s} {'fp32/plain':>11s}")
    lines += [header, "-" * len(header)]
    table = {}
    for case in cases:
        d, f, p = (median(samples, case.name, v) for v in VARIANTS)
        ratio = (lambda a, b: round(a / b, 3) if a and b else None)
        table[case.name] = {"defaults_s": d, "fp32_s": f, "plain_s": p, "speedup_defaults_vs_fp32": ratio(f, d),
                            "defaults_over_plain": ratio(d, p), "fp32_over_plain": ratio(f, p), "note": case.note}
        fmt = (lambda v, w=9: f"{v:>{w}.1f}" if v is not None else f"{'-':>{w}s}")
        fr = (lambda v, w: f"{v:>{w}.2f}x" if v is not None else f"{'-':>{w + 1}s}")
        row = table[case.name]
        lines.append(f"{case.name:10s} {fmt(d)} {fmt(f)} {fmt(p)} {fr(row['speedup_defaults_vs_fp32'], 13)} "
                     f"{fr(row['defaults_over_plain'], 14)} {fr(row['fp32_over_plain'], 10)}")
    chosen = {c.name: next((s.speed for s in samples if s.case == c.name and s.variant == "defaults" and s.speed), [])
              for c in cases}
    for name, speed_lines in chosen.items():
        lines.append(f"{name}: the defaults chose " + ("; ".join(speed_lines) if speed_lines else "(no run succeeded)"))
    lines.append(f"load average at the end: {', '.join(map(str, load()))}")
    text = "\n".join(lines)
    print(text)
    doc = {"mode": "speed", "environment": environment(), "rounds": args.rounds,
           "cases": {c.name: {"command": " ".join(command(c, "defaults", Path("OUT"))[2:]),
                              "fp32_flags": " ".join(FP32), "note": c.note} for c in cases},
           "summary": table, "choice": chosen, "samples": [vars(s) for s in samples]}
    write(out_dir, "train_speed", doc, text)
    return 0 if all(s.returncode == 0 for s in samples) else 1


# ---- accuracy ----------------------------------------------------------------------------------------

def accuracy_mode(args: argparse.Namespace, case: Case, out_dir: Path) -> int:
    from concurrent.futures import ThreadPoolExecutor

    if args.seeds < 5 and not args.smoke:
        raise SystemExit(f"--seeds={args.seeds}: the check needs at least 5 seeds")
    jobs = [(variant, seed) for seed in range(args.seeds) for variant in ("defaults", "fp32")]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run, case, v, 0, Path(tmp) / f"{v}-{seed}", seed) for v, seed in jobs]
        samples = []
        for (variant, seed), fut in zip(jobs, futures, strict=True):
            s = fut.result()
            samples.append(s)
            print(f"seed {seed} {variant:8s}: EMA val acc {s.ema_val_acc}, val acc {s.val_acc}, {s.wall_s:.0f} s",
                  flush=True)
    if any(s.returncode != 0 or s.ema_val_acc is None for s in samples):
        print("some runs failed; no verdict", file=sys.stderr)
        return 1
    acc = {v: [100 * s.ema_val_acc for s in samples if s.variant == v] for v in ("defaults", "fp32")}
    means = {v: statistics.mean(a) for v, a in acc.items()}
    spreads = {v: statistics.stdev(a) if len(a) > 1 else 0.0 for v, a in acc.items()}
    spread = max(spreads.values())
    diff = means["defaults"] - means["fp32"]
    bound = max(0.5, spread)
    ok = abs(diff) <= bound
    lines = ["", f"EMA validation accuracy (%) over seeds 0..{args.seeds - 1}, {case.note}",
             f"{'seed':>4s} {'defaults':>9s} {'fp32':>9s}"]
    lines += [f"{i:>4d} {a:>9.2f} {b:>9.2f}" for i, (a, b) in enumerate(zip(acc["defaults"], acc["fp32"], strict=True))]
    lines += [f"mean {means['defaults']:>9.2f} {means['fp32']:>9.2f}",
              f"std  {spreads['defaults']:>9.2f} {spreads['fp32']:>9.2f}",
              (f"difference of the means {diff:+.2f} points; bound max(0.5, seed spread {spread:.2f}) = "
               f"{bound:.2f}: {'PASS' if ok else 'FAIL'}"),
              "the defaults chose: " + "; ".join(next((s.speed for s in samples if s.speed), [])),
              f"load average at the end: {', '.join(map(str, load()))}"]
    text = "\n".join(lines)
    print(text)
    doc = {"mode": "accuracy", "environment": environment(), "case": case.note,
           "command": " ".join(command(case, "defaults", Path("OUT"))[2:]), "fp32_flags": " ".join(FP32),
           "ema_val_acc_percent": acc, "mean": means, "std": spreads, "difference": diff, "bound": bound, "pass": ok,
           "samples": [vars(s) for s in samples]}
    write(out_dir, "train_speed_accuracy", doc, text)
    return 0 if ok else 1


# ---- compile cost ------------------------------------------------------------------------------------

def compile_cost_mode(args: argparse.Namespace, cases: list[Case], out_dir: Path) -> int:
    import torch.nn.functional as F

    from sepconv.models import create_model, parse_spec
    from sepconv.train import speed

    caps = speed.probe_capabilities("cpu")
    rows, lines = [], [""]
    for case in cases:
        name, kwargs = parse_spec(case.model)
        threads = case.threads or torch.get_num_threads()
        torch.set_num_threads(threads)
        model = create_model(name, num_classes=10, in_chans=1, **kwargs).train()
        shape = (case.batch_size, 1, case.img_size, case.img_size)
        choice = speed.decide_speed(  # the precision and layout `sepconv train` would choose here
            caps, compile=False, step_seconds=lambda precision, channels_last: speed.measure_step_seconds(
                model, shape, precision, channels_last, torch.device("cpu")))
        if choice.channels_last:
            model = model.to(memory_format=torch.channels_last)
        x = torch.randn(shape)
        x = x.contiguous(memory_format=torch.channels_last) if choice.channels_last else x
        y = torch.randint(0, 10, (case.batch_size,))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)

        def step(net: torch.nn.Module) -> float:
            began = time.perf_counter()
            with speed.autocast_for("cpu", choice.precision):
                logits = net(x)
            F.cross_entropy(logits.float(), y).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return time.perf_counter() - began

        eager = [step(model) for _ in range(args.steps + 1)][1:]
        compiled = torch.compile(model)
        first = step(compiled)  # compiles forward and backward
        first += step(compiled) + step(compiled)  # and any recompilation the next steps bring
        fast = [step(compiled) for _ in range(args.steps)]
        first -= 2 * statistics.median(fast)
        e, c = statistics.median(eager), statistics.median(fast)
        estimate = speed.estimate_compile_seconds(model, "cpu")
        row = {"case": case.name, "precision": choice.precision, "channels_last": choice.channels_last,
               "threads": threads, "eager_step_s": e, "compiled_step_s": c, "saving": 1 - c / e,
               "compile_s": first - c, "estimated_compile_s": estimate, "documented_saving": speed.COMPILE_SAVING["cpu"]}
        rows.append(row)
        lines.append(f"{case.name}: {choice.precision}, channels_last {choice.channels_last}, {threads} threads: eager "
                     f"{1000 * e:.0f} ms/step, compiled {1000 * c:.0f} ms/step (saving {row['saving']:.0%}; "
                     f"documented {speed.COMPILE_SAVING['cpu']:.0%}); compile {row['compile_s']:.0f} s "
                     f"(estimated {estimate:.0f} s); break-even at "
                     f"{row['compile_s'] / max(e - c, 1e-9):.0f} steps" if c < e else
                     f"{case.name}: compiled {1000 * c:.0f} ms/step is no faster than eager {1000 * e:.0f} ms/step; "
                     f"compile {first - c:.0f} s (estimated {estimate:.0f} s)")
    text = "\n".join(lines)
    print(text)
    write(out_dir, "train_speed_compile", {"mode": "compile-cost", "environment": environment(), "rows": rows}, text)
    return 0


def write(out_dir: Path | None, stem: str, doc: dict, text: str) -> None:
    if out_dir is None:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / f"{stem}.txt").write_text(text.lstrip("\n") + "\n")
    print(f"wrote {out_dir / stem}.json and .txt", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accuracy", action="store_true", help="accuracy over seeds instead of speed")
    parser.add_argument("--compile-cost", action="store_true", help="measure torch.compile's cost and saving")
    parser.add_argument("--cases", default="mnv2_112,recipe_32", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (speed; default 2)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds (accuracy; at least 5; default 5)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="commands at once (accuracy)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps each (compile cost; default 5)")
    parser.add_argument("--defaults-flags", default="", metavar="FLAGS",
                        help="added to the defaults' command, e.g. '--precision bf16' to check a setting the "
                             "defaults did not choose on this machine")
    parser.add_argument("--smoke", action="store_true", help="tiny cases, 1 round / 2 seeds: checks the script, "
                                                             "writes nothing unless --out")
    parser.add_argument("--out", type=Path, default=None, help=f"results folder (default {RESULTS.relative_to(HERE.parent)})")
    # internal: one plain-loop command
    parser.add_argument("--plain-run", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    DEFAULTS_FLAGS[:] = shlex.split(args.defaults_flags)
    if args.plain_run:
        plain_run(args)
        return 0
    table = SMOKE if args.smoke else CASES
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"--cases: unknown {', '.join(unknown)} (known: {', '.join(table)})")
    cases = [table[n] for n in names]
    out_dir = args.out if args.out is not None else (None if args.smoke else RESULTS)
    if args.smoke:
        args.rounds, args.seeds, args.steps = 1, min(args.seeds, 2), min(args.steps, 2)
    env = environment()
    print(f"# {env['date']}, {env['cpu']}, {env['cores']} cores, torch {env['torch']} ({env['cpu_capability']}), "
          f"load average {', '.join(map(str, load()))}", flush=True)
    if args.accuracy:
        return accuracy_mode(args, table["recipe_32"], out_dir)
    if args.compile_cost:
        return compile_cost_mode(args, cases, out_dir)
    return speed_mode(args, cases, out_dir)


if __name__ == "__main__":
    sys.exit(main())
