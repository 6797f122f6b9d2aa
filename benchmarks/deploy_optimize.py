"""``sepconv optimize``'s choice against plain ONNX Runtime fp32, side by side (GitHub issue 15).

For each model trained on the bundled digits at the size it is timed at (``benchmarks/deploy_train.sh``:
224 px; the accuracy reached is printed), one run:

1. ``sepconv.deploy.optimize(checkpoint, data="digits", batch=1, threads=T_max, out=RUNS/<model>-deployed)``:
   every engine x precision this machine runs, each checked on the 1,541 held-out digits (256
   calibrate int8) against the fp32 model: top-1 agreement >= 99.5%, accuracy drop <= 0.5 points;
2. for each batch (1, 8) and thread count (1, 2): the passing candidates rebuilt at that batch and
   thread count (their accuracy rows kept: ``optimize(..., checked=first)``) and timed in interleaved
   rounds beside plain ONNX Runtime fp32 on a plain ``torch.onnx.export`` of the same model; the
   chooser keeps the fastest; its latency over the plain export's is the figure (target <= 0.5);
3. ``sepconv.deploy.load(DIR)`` re-timed against the best candidate's runner in a fresh interleaved
   run: their ratio, and the spread of that ratio round by round;
4. where the choice lands against the precision-aware roofline: the model's FLOPs (2 x MACs, batch
   included) per second over the machine's measured peak for the chosen precision
   (``sepconv profile --machine-only``), and the kind of layer that holds most of the choice's time
   (its engine's own per-node profile mapped to sepconv's layers: ONNX Runtime fp32, or OpenVINO at
   any precision, ``sepconv.engines.openvino_layers``).

Load average is recorded before and after each timed row; nothing else should run meanwhile.

    .venv/bin/python benchmarks/deploy_optimize.py                                 # all, runs/deploy/*
    .venv/bin/python benchmarks/deploy_optimize.py --models mobilenet_v2 --runs runs/deploy --threads 1
    .venv/bin/python benchmarks/deploy_optimize.py --models xception --held-out 1000 \
        --engines onnxruntime openvino --out benchmarks/results/deploy/optimize-amx-xception
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from sepconv._util.io import atomic_write_text
from sepconv._util.runtime import cores, cpu_name
from sepconv.cost import analyze
from sepconv.deploy import load, optimize
from sepconv.engines.interleave import interleaved, round_ratios
from sepconv.engines.openvino import capabilities
from sepconv.machine import machine_profile
from sepconv.resolve import resolve_model

MODELS = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "xception"]
RESULTS = Path(__file__).resolve().parent / "results" / "deploy"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def trained_accuracy(run: Path) -> dict:
    rows = json.loads((run / "metrics.json").read_text())  # one object per epoch
    return {"epochs": rows[-1]["epoch"], "val_acc": rows[-1]["val_acc"]} if rows else {}


def roofline(model: torch.nn.Module, shape: tuple, precision: str, ms: float, threads: int) -> dict:
    """Achieved GFLOP/s (2 x MACs per image, batch included; int8: GOP/s) against the machine's
    measured peak of the chosen precision."""
    flops = analyze(model, (1, *shape[1:])).flops * shape[0]
    peak = machine_profile(threads).peak(precision).gflops_per_s
    achieved = flops / (ms * 1e-3) / 1e9
    return {"gflops_per_s": achieved, "peak": peak, "fraction_of_peak": achieved / peak if peak else None}


def by_kind(resolved, chosen, shape: tuple, threads: int) -> dict | None:  # noqa: ANN001
    """Which kind of layer holds most of the chosen runner's time, from its engine's own per-node
    profile: ONNX Runtime's (fp32) or OpenVINO's (any precision; int8 on the same calibration
    images ``optimize`` used). None for the other runners (no per-layer view of them yet)."""
    model = resolved.model.eval()
    if chosen.engine == "onnxruntime" and chosen.precision == "fp32":
        from sepconv.engines.ort_layers import ort_layer_times

        kinds = ort_layer_times(model, shape, threads=threads, repeats=10, warmup=2).by_kind()
        total = sum(kinds.values())
        top = max((k for k in kinds if k not in ("functional", "unmapped")), key=kinds.get)
        return {"engine": "onnxruntime", "precision": "fp32", "top_kind": top, "top_share": kinds[top] / total,
                "kinds_ms": kinds}
    if chosen.engine == "openvino":
        from sepconv.deploy.heldout import deploy_images
        from sepconv.engines.openvino_layers import openvino_kind_times

        calibration = None
        if chosen.precision == "int8":
            calibration = deploy_images("digits", shape, resolved.sidecar.train).calibration
        return openvino_kind_times(model, shape, precision=chosen.precision, threads=threads, repeats=10,
                                   calibration=calibration).to_dict()
    return None


def load_check(folder: Path, best, rounds: int, budget: float) -> dict:  # noqa: ANN001 - a Runner
    """``load(folder)`` against the best candidate's runner in a fresh interleaved run. "Within" the
    spread: no slower beyond it, i.e. in at least one round it was not slower (a consistent slowdown,
    every round above 1, is outside)."""
    deployed = load(folder)
    x = torch.randn(deployed.input_shape, generator=torch.Generator().manual_seed(0))
    timings = interleaved({"load": lambda: deployed(x), "best": lambda: best(x)}, rounds=rounds, budget_s=budget)
    ratios = round_ratios(timings, "load", "best")
    ratio = timings["load"].median_ms / timings["best"].median_ms
    return {"load_ms": timings["load"].median_ms, "best_ms": timings["best"].median_ms, "ratio": ratio,
            "round_ratio_min": min(ratios), "round_ratio_max": max(ratios),
            "within_spread": ratio <= 1.0 or min(ratios) <= 1.0}


def within(check: dict) -> bool:
    """No slower beyond the round-by-round spread: faster overall, or not slower in some round."""
    return check["ratio"] <= 1.0 or check["round_ratio_min"] <= 1.0


def recheck_loads(names: list[str], runs: Path, rounds: int, budget: float) -> str:
    """``--load-check-only``: step 3 again for folders an earlier run wrote (the best candidate rebuilt
    from the source checkpoint with the same runner and threads)."""
    from sepconv.engines.runner import prepare

    lines = []
    for name in names:
        folder = runs / f"{name}-deployed"
        if not (folder / "report.json").is_file():
            continue
        manifest = json.loads((folder / "report.json").read_text())
        model = resolve_model(folder).model.eval()
        shape = tuple(manifest["input_shape"])
        calibration = None
        if manifest["precision"] == "int8":  # the same calibration images optimize used
            from sepconv.deploy.heldout import deploy_images

            calibration = deploy_images("digits", shape, resolve_model(folder).sidecar.train).calibration
        best = prepare(manifest["backend"], model, torch.zeros(shape), threads=manifest["threads"], fold=True,
                       calibration=calibration)
        lc = load_check(folder, best, rounds, budget)
        lines.append(f"{name}: load(DIR) {lc['load_ms']:.2f} ms vs best candidate {lc['best_ms']:.2f} ms, ratio "
                     f"{lc['ratio']:.3f}, round-by-round {lc['round_ratio_min']:.3f}..{lc['round_ratio_max']:.3f} "
                     f"({'within' if within(lc) else 'OUTSIDE'} the spread; load {os.getloadavg()[0]:.2f})")
        log(lines[-1])
    return "\n".join(lines)


def one_model(name: str, run: Path, out_dir: Path, batches: list[int], threads_list: list[int], rounds: int,
              budget: float, held_out: int | None = None, engines: list[str] | None = None) -> dict:
    resolved = resolve_model(run)
    model = resolved.model.eval()
    record = {"model": name, "checkpoint": str(run), "trained": trained_accuracy(run), "rows": [],
              "engines": engines or "all", "held_out": held_out or "all"}
    t_max = max(threads_list)
    log(f"{name}: building and checking every candidate (batch 1, {t_max} threads)")
    first = optimize(resolved, data="digits", batch=1, threads=t_max, rounds=rounds, budget_s=budget,
                     held_out=held_out, engines=engines, out=out_dir / f"{name}-deployed", overwrite=True)
    record["candidates"] = [row.to_dict() for row in first.results]
    record["table_first"] = first.table()
    print(first.table(), flush=True)
    for threads in threads_list:
        for batch in batches:
            load_before = os.getloadavg()[0]
            result = optimize(resolved, data="digits", batch=batch, threads=threads, rounds=rounds,
                              budget_s=budget, engines=engines, checked=first)
            load_after = os.getloadavg()[0]
            chosen = result.chosen
            ratio = None if chosen.speedup is None else 1 / chosen.speedup
            row = {"batch": batch, "threads": threads, "chosen": chosen.backend, "engine": chosen.engine,
                   "precision": chosen.precision, "chosen_ms": chosen.median_ms,
                   "plain_ort_ms": result.report["baseline_ms"], "ratio_vs_plain_ort": ratio,
                   "agreement": chosen.accuracy.agreement, "drop": chosen.accuracy.drop,
                   "load_before": load_before, "load_after": load_after,
                   "candidates": {r.backend: r.median_ms for r in result.results if r.median_ms}}
            row["roofline"] = roofline(model, result.example_shape, chosen.precision, chosen.median_ms, threads)
            record["rows"].append(row)
            log(f"{name} b{batch} t{threads}: {chosen.backend} {chosen.median_ms:.2f} ms, plain ORT "
                f"{row['plain_ort_ms']:.2f} ms, ratio {ratio:.3f} (load {load_before:.2f}->{load_after:.2f})")
    record["load_check"] = load_check(out_dir / f"{name}-deployed", first.runner, rounds, budget)
    record["by_kind"] = by_kind(resolved, first.chosen, first.example_shape, t_max)
    return record


def table(results: list[dict]) -> str:
    lines = ["model               acc%  epochs batch thr chosen            ms    plain ORT ms  ratio  "
             "agree%  drop  %peak  load"]
    for rec in results:
        acc = rec["trained"].get("val_acc")
        for row in rec["rows"]:
            peak = row["roofline"]["fraction_of_peak"]
            lines.append(
                f"{rec['model']:<19} {100 * acc if acc else float('nan'):5.1f} {rec['trained'].get('epochs') or '-':>6}"
                f" "
                f"{row['batch']:>5} {row['threads']:>3} {row['chosen']:<15} {row['chosen_ms']:8.2f} "
                f"{row['plain_ort_ms']:12.2f} {row['ratio_vs_plain_ort']:6.3f} {row['agreement']:7.2f} "
                f"{row['drop']:5.2f} {100 * peak if peak else float('nan'):6.1f} "
                f"{row['load_before']:.2f}-{row['load_after']:.2f}")
    for rec in results:
        lc = rec["load_check"]
        lines.append(f"{rec['model']}: load(DIR) {lc['load_ms']:.2f} ms vs best candidate {lc['best_ms']:.2f} ms, "
                     f"ratio {lc['ratio']:.3f}, round-by-round {lc['round_ratio_min']:.3f}..{lc['round_ratio_max']:.3f}"
                     f" ({'within' if within(lc) else 'OUTSIDE'} the spread)")
        if rec.get("by_kind"):
            k = rec["by_kind"]
            on = f"{k.get('engine', 'onnxruntime')} {k.get('precision', 'fp32')}"
            lines.append(f"{rec['model']}: most time in {k['top_kind']} layers "
                         f"({100 * k['top_share']:.0f}% on {on})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--runs", default="runs/deploy", help="where deploy_train.sh wrote the trained runs")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, cores()}))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--budget", type=float, default=1.5, help="seconds of timing per runner and row")
    p.add_argument("--held-out", type=int, default=None,
                   help="held-out images per accuracy check (default: all the digits not used for calibration, "
                        "1,541; at least 1,000). Xception at 299 px: each candidate's check takes minutes")
    p.add_argument("--engines", nargs="+", default=None, help="only these engines' candidates (torch, onnxruntime, "
                   "openvino; default all). Xception at 299 px: torch's runners are the slowest to check")
    p.add_argument("--out", default=str(RESULTS / "optimize"), help="output stem (.json and .txt; use another "
                   "stem for a run of some models, e.g. benchmarks/results/deploy/optimize-xception)")
    p.add_argument("--load-check-only", action="store_true",
                   help="only re-time load(DIR) against the best candidate for folders an earlier run wrote")
    p.add_argument("--retable", action="store_true", help="only re-render the .txt table from the .json")
    args = p.parse_args(argv)
    if args.retable:
        doc = json.loads(Path(args.out).with_suffix(".json").read_text())
        text = table(doc["results"])
        old = Path(args.out).with_suffix(".txt").read_text().splitlines()[0]
        atomic_write_text(Path(args.out).with_suffix(".txt"), old + " (table re-rendered from the .json by --retable)\n"
                          + text + "\n")
        print(text)
        return 0
    if args.load_check_only:
        text = recheck_loads(args.models.split(","), Path(args.runs), args.rounds, args.budget)
        out = Path(args.out).with_name(Path(args.out).name + "-load-recheck.txt")
        atomic_write_text(out, time.strftime("%Y-%m-%d %H:%M UTC\n", time.gmtime()) + text + "\n")
        print(text)
        return 0
    started = time.time()
    results, missing = [], []
    for name in args.models.split(","):
        run = Path(args.runs) / name
        if not (run / "model.safetensors").is_file():
            missing.append(name)
            log(f"{name}: no trained run in {run} (benchmarks/deploy_train.sh); skipped")
            continue
        results.append(one_model(name, run, Path(args.runs), args.batches, args.threads, args.rounds, args.budget,
                                 args.held_out, args.engines))
    doc = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_name(), "cores": cores(),
           "openvino_capabilities": list(capabilities()), "torch": torch.__version__, "seconds": time.time() - started,
           "missing": missing, "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.with_suffix(".json"), json.dumps(doc, indent=2, default=float) + "\n")
    text = table(results) + (f"\nnot run (no trained checkpoint): {', '.join(missing)}" if missing else "")
    header = (f"{doc['date']}, {doc['cpu']}, {doc['cores']} cores, OpenVINO capabilities "
              f"{', '.join(doc['openvino_capabilities'])}; {len(results)} models; ratio = chosen / plain ORT fp32\n")
    atomic_write_text(out.with_suffix(".txt"), header + text + "\n")
    print(header + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
