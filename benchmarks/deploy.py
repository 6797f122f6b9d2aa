"""Fast inference, side by side: sepconv's fp32 and int8 paths against the peers (GitHub issue 6).

For each model at its registry input size (224 px; Xception 299) and each batch size, in one run:

- peers, on the *unfolded* model: PyTorch eager (NCHW), ``torch.compile`` (default options), and
  ONNX Runtime on a plain ``torch.onnx.export`` with ORT's default session options;
- sepconv's fp32 candidates (BN folded, see ``sepconv.deploy.optimize``): eager, channels_last,
  Inductor with freezing, ONNX Runtime on the clean export; the best of them is "sepconv fp32";
- sepconv int8: the clean export quantized (QDQ, per-channel weights, calibrated on 256 bundled
  digits images at the model's size) on ONNX Runtime.

Every sepconv runner's output is checked against eager before it is timed (and every runner's
difference is recorded). Timing is interleaved: each round times every runner in turn (after a 0.3 s
pause, so that the previous runner's spinning threads go idle, and one untimed call), so that a shared machine's slow moments fall on all of them alike; the median of
all rounds' samples is reported, with the load average before and after, and beside sepconv fp32 / best peer
the lowest and highest of that ratio within one round (the rounds' spread).
Ratios are to the best peer. Without a trained checkpoint the weights are random but alive
(``sepconv.engines.synthetic.lively_weights``: He init, BN statistics of 16 digits images): a fresh
model's identity BatchNorms would make folding and int8 calibration prove nothing, and its eval-mode
logits are tiny (~1e-9 for MobileNetV2), below any meaningful SQNR. The int8 agreement with fp32 is measured on 512 held-out digits;
with random weights it is said as such, and the logit SQNR (signal over int8 error) is the
number that means most. With ``--trained NAME=CHECKPOINT`` (a sepconv checkpoint
trained on the digits at the model's input size) the accuracy drop is measured too.

Then MobileNetV2 0.5 and MobileNetV3-Small are trained on the digits (``sepconv.train``, 32 px,
``--epochs``, README's recipe: batch 32, EMA 0.99; the EMA weights are quantized) and int8 is compared with fp32 on the validation split: accuracy drop and agreement
on a model trained on real data (per-tensor weights too, for contrast).

On a CUDA machine the GPU figures (eager, channels_last, torch.compile, AMP fp16) are recorded too.

    .venv/bin/python benchmarks/deploy.py                       # all five models, batch 1 and 8
    .venv/bin/python benchmarks/deploy.py --models mobilenet_v2 --batches 1 --no-inductor
    .venv/bin/python benchmarks/deploy.py --profile-int8 mobilenet_v3_large --threads 1
    .venv/bin/python benchmarks/deploy.py --mixed-int8 mobilenet_v3_large
    .venv/bin/python benchmarks/deploy.py --alternatives mobilenet_v3_large --batches 1
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from sepconv._util.io import atomic_write_text
from sepconv._util.runtime import cores as available_cores
from sepconv._util.runtime import cpu_name
from sepconv._util.timing import measure
from sepconv.data.images import digits
from sepconv.deploy import optimize, to_onnx
from sepconv.engines.ort import OrtRunner, ort_session, session_options
from sepconv.engines.quantize import compare, needs_reduced_range, quantize, sqnr_db
from sepconv.engines.runner import FP32_BACKENDS
from sepconv.engines.synthetic import lively_weights
from sepconv.models import create_model
from sepconv.resolve import default_input_shape

MODELS = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "xception"]
PEERS = ["eager", "torch.compile", "onnxruntime (plain export)"]
OURS = list(FP32_BACKENDS)  # eager, channels_last, inductor (torch.compile), onnxruntime
RESULTS = Path(__file__).resolve().parent / "results"
Runner = Callable[[torch.Tensor], object]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- peers


def peer_eager(model: torch.nn.Module) -> Runner:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return run


def peer_compile(model: torch.nn.Module, x: torch.Tensor) -> Runner:
    compiled = torch.compile(model)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return compiled(x)

    run(x)
    return run


def peer_onnxruntime(model: torch.nn.Module, x: torch.Tensor) -> Runner:
    """A plain ``torch.onnx.export`` (TorchScript exporter: the default one needs onnxscript) and
    ORT's default session options."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False)
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


# ------------------------------------------------------------------------------------- measuring


def interleaved(runners: dict[str, Runner], x: torch.Tensor, rounds: int, budget_s: float,
                pause_s: float = 0.3) -> dict[str, dict]:
    """Median and p90 over ``rounds`` rounds, each timing every runner in turn; the repeats per
    round are sized from a warm-up call so that each runner gets about ``budget_s`` in all."""
    per_round = {}
    for name, run in runners.items():
        warm = measure(lambda: run(x), repeats=1, warmup=2).median_ms
        per_round[name] = max(1, min(20, round(budget_s * 1e3 / max(warm, 1e-3) / rounds)))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    by_round: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            # Let the previous runner's threads go idle first: OpenMP's (PyTorch's) spin-wait up to
            # 200 ms after a parallel region and ORT's pool spins after a run, stealing the 2 cores
            # from whoever runs next; then one untimed call
            time.sleep(pause_s)
            timing = measure(lambda: run(x), repeats=per_round[name], warmup=1)
            samples[name] += timing.samples_ms
            by_round[name].append(timing.median_ms)
    out = {}
    for name, values in samples.items():
        ranked = sorted(values)
        out[name] = {"median_ms": statistics.median(values), "p90_ms": ranked[int(np.ceil(0.9 * len(ranked))) - 1],
                     "samples": len(values), "round_medians_ms": by_round[name]}
    return out


def round_ratios(timings: dict[str, dict], a: str, b: str) -> list[float]:
    """``a`` over ``b`` in each interleaved round (their medians within the round): how much of a
    ratio of the overall medians is a steady difference and how much the rounds' spread."""
    return [x / y for x, y in zip(timings[a]["round_medians_ms"], timings[b]["round_medians_ms"])]


@torch.no_grad()
def noise_sensitivity(model: torch.nn.Module, images: torch.Tensor, snr_db: float = 40.0) -> dict:
    """How the fp32 model itself reacts to input noise at ``snr_db`` (1% at 40 dB): its own top-1
    agreement and logit SQNR. Random deep networks are chaotic (Poole et al. 2016, *Exponential
    expressivity in deep neural networks through transient chaos*): a small perturbation, int8
    rounding included, grows layer by layer, so agreement on random weights says little about int8."""
    g = torch.Generator().manual_seed(0)
    ref = model(images)
    noisy = model(images + torch.randn(images.shape, generator=g) * images.std() * 10 ** (-snr_db / 20))
    return {"input_snr_db": snr_db, "agreement": float((noisy.argmax(1) == ref.argmax(1)).float().mean()),
            "logit_sqnr_db": sqnr_db(noisy, ref), "samples": len(images)}


def max_diff(run: Runner, x: torch.Tensor, reference: torch.Tensor) -> float:
    return float((torch.as_tensor(run(x)) - reference).abs().max())


# ------------------------------------------------------------------------------------------- cpu


def bench_cpu(name: str, batches: list[int], threads: int, rounds: int, budget_s: float, inductor: bool,
              trained: str | None) -> list[dict]:
    torch.manual_seed(0)
    model = create_model(name, weights=trained).eval() if trained else create_model(name).eval()
    shape = default_input_shape(model)
    images, labels = digits(shape)
    calib, held, held_labels = images[:256], images[256:768], labels[256:768]
    if not trained:  # random weights with live activations; BN statistics from 16 other digits images
        lively_weights(model, images[768:784])
        held_labels = None  # a random 1000-way classifier has no accuracy on digits to lose
    fp32_proto = to_onnx(model, shape).proto
    log(f"{name}: quantizing (calibration: 256 digits images at {shape[2]} px)")
    quantized = quantize(fp32_proto, calib, batch=8)
    report = compare(fp32_proto, quantized.proto, held, held_labels,
                     "digits held-out" + ("" if trained else " (random weights)"), batch=8)
    int8 = ort_session(quantized.proto, threads=threads)
    sensitivity = None if trained else noise_sensitivity(model, held[:32])
    rows = []
    for batch in batches:
        # digits images, not noise: the BN statistics are the digits' (noise would blow activations up
        # to ~1e4 and float32 rounding with them); latency does not depend on the values
        x = images[784:784 + batch].contiguous()
        with torch.inference_mode():
            reference = model(x)
        runners: dict[str, Runner] = {}
        errors: dict[str, str] = {}
        # dynamo keeps 8 compiled versions of a forward code object shared by all models of a class, then
        # silently runs eager: start each row afresh (earlier rows' compiled runners are not used again)
        torch._dynamo.reset()
        log(f"{name} batch {batch}: building peers")
        runners["peer: eager"] = peer_eager(model)
        for label, build in (("peer: torch.compile", lambda: peer_compile(model, x)),
                             ("peer: onnxruntime (plain export)", lambda: peer_onnxruntime(model, x))):
            if label == "peer: torch.compile" and not inductor:
                errors[label] = "skipped (--no-inductor)"
                continue
            try:
                runners[label] = build()
            except Exception as e:  # noqa: BLE001 - a failing peer is recorded, not fatal
                errors[label] = f"failed: {' '.join(str(e).split())[:200]}"
        log(f"{name} batch {batch}: building sepconv paths")
        for backend in OURS:
            label = f"sepconv: {backend}"
            if backend == "inductor" and not inductor:
                errors[label] = "skipped (--no-inductor)"
                continue
            try:
                runners[label] = optimize(model, x, backend=backend, threads=threads)
            except ValueError as e:
                errors[label] = str(e)
        runners["sepconv: int8 onnxruntime"] = int8
        diffs = {label: max_diff(run, x, reference) for label, run in runners.items()}
        for label, error in errors.items():
            log(f"{name} batch {batch}: {label}: {error}")
        log(f"{name} batch {batch}: timing {len(runners)} runners, {rounds} interleaved rounds")
        load_before = os.getloadavg()[0]
        timings = interleaved(runners, x, rounds, budget_s)
        load_after = os.getloadavg()[0]
        peers = {k: v["median_ms"] for k, v in timings.items() if k.startswith("peer:")}
        ours = {k: v["median_ms"] for k, v in timings.items() if k.startswith("sepconv:") and "int8" not in k}
        best_peer = min(peers, key=peers.get)
        best_ours = min(ours, key=ours.get)
        int8_ms = timings["sepconv: int8 onnxruntime"]["median_ms"]
        row = {
            "model": name, "batch": batch, "input": list(shape[1:]), "threads": threads,
            "timings": timings, "max_abs_diff_vs_eager": diffs, "errors": errors,
            "load_avg_before": load_before, "load_avg_after": load_after,
            "best_peer": best_peer, "best_peer_ms": peers[best_peer],
            "sepconv_fp32": best_ours, "sepconv_fp32_ms": ours[best_ours],
            "fp32_vs_best_peer": ours[best_ours] / peers[best_peer],
            "fp32_vs_best_peer_by_round": round_ratios(timings, best_ours, best_peer),
            "fp32_speedup_vs_eager": peers["peer: eager"] / ours[best_ours],
            "int8_ms": int8_ms, "int8_vs_fp32": int8_ms / ours[best_ours],
            "int8_report": {k: v for k, v in vars(report).items()} | {"summary": report.summary()},
            "fp32_noise_sensitivity": sensitivity,
        }
        rows.append(row)
        log(f"{name} batch {batch}: sepconv fp32 {row['sepconv_fp32_ms']:.2f} ms ({best_ours}) = "
            f"{row['fp32_vs_best_peer']:.2f}x best peer ({best_peer} {row['best_peer_ms']:.2f} ms), "
            f"{row['fp32_speedup_vs_eager']:.1f}x faster than eager; int8 {int8_ms:.2f} ms = "
            f"{row['int8_vs_fp32']:.2f}x fp32")
    return rows


# -------------------------------------------------------------------------------- trained accuracy


def trained_int8(name: str, kwargs: dict, epochs: int, size: int) -> dict:
    """Train ``name`` on the digits with ``sepconv.train`` (1 input channel, ``size`` px), then
    compare int8 (per-channel weights, and per-tensor for contrast) with fp32 on the validation split."""
    from sepconv.train import TrainConfig, Trainer

    started = time.time()
    # README's digits recipe (the training issue's model): batch 32, EMA 0.99, channels_last; the
    # EMA weights are the ones quantized (and the ones whose accuracy is reported)
    trainer = Trainer(TrainConfig(name, {**kwargs, "in_chans": 1, "num_classes": 10}, data="digits", epochs=epochs,
                                  img_size=size, batch_size=32, ema=0.99, channels_last=True, progress=False))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny 32 px batches: more threads only spin (badly, on a shared machine)
    try:
        summary = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    model = trainer.ema.module.eval().to(memory_format=torch.contiguous_format)
    summary["val_acc"] = summary.get("ema_val_acc", summary["val_acc"])
    val_x, val_y = trainer.aug.eval(trainer.data.val.images), trainer.data.val.labels
    calib = trainer.aug.eval(trainer.data.train.images[:256])
    fp32 = to_onnx(model, (1, 1, size, size)).proto
    out = {"model": name, "kwargs": kwargs, "epochs": epochs, "img_size": size, "val_acc": summary["val_acc"],
           "train_seconds": round(time.time() - started)}
    # every image not used for calibration (the rest of the training split too): 1,541 images give the
    # agreement to about 0.1 point, where the 359 validation images alone move it 0.28 per image
    unseen = torch.cat([trainer.aug.eval(trainer.data.train.images[256:]), val_x])
    for label, per_channel in (("per_channel", True), ("per_tensor", False)):
        q = quantize(fp32, calib, per_channel=per_channel, held_out=val_x, labels=val_y,
                     data_name="digits validation")
        report = q.report
        wide = compare(fp32, q.proto, unseen, None, "digits not used for calibration", batch=64)
        out[label] = {k: v for k, v in vars(report).items()} | {
            "summary": f"{report.summary()}; on all {wide.samples} images not used for calibration: top-1 "
                       f"agreement {100 * wide.agreement:.2f}%",
            "agreement_uncalibrated_images": wide.agreement, "uncalibrated_images": wide.samples}
        log(f"{name} trained on digits, int8 {label}: {out[label]['summary']}")
    return out


# --------------------------------------------------------------------------------- int8 profile


def profile_int8(name: str, threads: int, repeats: int = 20) -> str:
    """Where int8 gains and loses against fp32: ONNX Runtime's own per-node profile of both
    sessions on one 224 px image, summed by op type and by the layer's role in the block."""
    import collections
    import json as json_mod

    model = create_model(name).eval()
    shape = default_input_shape(model)
    images, _ = digits(shape)
    lively_weights(model, images[768:784])
    fp32 = to_onnx(model, shape).proto
    int8 = quantize(fp32, images[:256], batch=8).proto
    x = torch.randn(shape).numpy()
    roles = ("dw", "expand", "project", "stem", "head", "se", "classifier", "pw", "shortcut", "branch")
    lines = [f"{name}, batch 1, {threads} threads: ms per run by (op, role)"]
    for tag, proto in (("fp32", fp32), ("int8", int8)):
        so = session_options(threads)
        so.enable_profiling = True
        so.profile_file_prefix = str(Path("/tmp") / f"sepconv_profile_{tag}")
        session = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
        timing = measure(lambda: session.run(None, {"input": x}), repeats, 3)
        trace = Path(session.end_profiling())
        total: dict = collections.defaultdict(float)
        for event in json_mod.loads(trace.read_text()):
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                role = next((r for r in roles if f"/{r}" in event["name"]), "other")
                total[(event["args"].get("op_name"), role)] += event["dur"] / 1e3 / (repeats + 3)
        trace.unlink()
        lines.append(f"  {tag}: median {timing.median_ms:.2f} ms")
        lines += [f"    {op:<26} {role:<10} {ms:7.2f}" for (op, role), ms in
                  sorted(total.items(), key=lambda kv: -kv[1])[:12]]
    return "\n".join(lines)


def mixed_int8(name: str, threads: int, rounds: int, budget_s: float) -> str:
    """Would mixed precision save MobileNetV3's int8 path? fp32, all-int8, and int8 with the
    depthwise convs, the hard-swish/hard-sigmoid ops, or both left in float, timed side by side."""
    model = create_model(name).eval()
    shape = default_input_shape(model)
    images, _ = digits(shape)
    lively_weights(model, images[768:784])
    fp32 = to_onnx(model, shape).proto
    depthwise = [n.name for n in fp32.graph.node if n.op_type == "Conv"
                 and next((a.i for a in n.attribute if a.name == "group"), 1) > 1]
    activations = ["HardSwish", "HardSigmoid"]
    variants = {"fp32": None, "int8": [], "int8, depthwise in float": depthwise,
                "int8, hard-swish/sigmoid in float": activations, "int8, both in float": depthwise + activations}
    present = {n.op_type for n in fp32.graph.node}  # quantize refuses an op type the graph lacks
    runners: dict[str, Runner] = {}
    for label, keep in variants.items():
        proto = fp32 if keep is None else quantize(
            fp32, images[:256], batch=8, keep_float=[k for k in keep if k in depthwise or k in present]).proto
        runners[label] = ort_session(proto, threads=threads)
    x = images[784:785].contiguous()
    timings = interleaved(runners, x, rounds, budget_s)
    base = timings["fp32"]["median_ms"]
    lines = [f"{name}, batch 1, {threads} threads, {len(depthwise)} depthwise convs: median ms (x fp32)"]
    lines += [f"  {label:<36} {t['median_ms']:7.2f}  ({t['median_ms'] / base:.2f}x)" for label, t in timings.items()]
    return "\n".join(lines)


def _openvino_runner(proto, threads: int) -> Runner:
    """OpenVINO's CPU plugin on an ONNX model, fp32 inference precision (it would pick bf16 here)."""
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(core.read_model(proto.SerializeToString(), b""), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    return lambda x: torch.from_numpy(request.infer({0: x.numpy()})[0].copy())


def alternatives(name: str, batch: int, threads: int, rounds: int, budget_s: float) -> str:
    """Does any other engine or setting close the missed targets? Beside the plain-export peer and
    sepconv's own fp32 and int8 paths: ORT with larger work blocks per thread
    (``session.dynamic_block_base``), ORT with one single-thread session per core each on its part
    of the batch, and OpenVINO fp32 and int8 on the same ONNX files (where installed: it is not a
    dependency). fp32 runners must match eager; each int8 one's logit SQNR against fp32 on the
    timed input is printed beside it. (PyTorch's own x86 int8, torchao's PT2E flow with
    X86InductorQuantizer, is left out: with torchao 0.18 it quantized MobileNetV2's classifier and
    none of its 52 convs, so its timings were Inductor fp32's.)"""
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(0)
    model = create_model(name).eval()
    shape = default_input_shape(model)
    images, _ = digits(shape)
    lively_weights(model, images[768:784])
    x = images[784:784 + batch].contiguous()
    fp32 = to_onnx(model, shape).proto
    int8 = quantize(fp32, images[:256], batch=8).proto
    with torch.inference_mode():
        reference = model(x)
    peer = "peer: onnxruntime (plain export)"
    runners: dict[str, Runner] = {peer: peer_onnxruntime(model, x),
                                  "sepconv fp32 (onnxruntime)": ort_session(fp32, threads=threads)}
    so = session_options(threads)
    so.add_session_config_entry("session.dynamic_block_base", "4")
    runners["onnxruntime, dynamic_block_base=4"] = OrtRunner(
        ort.InferenceSession(fp32.SerializeToString(), so, providers=["CPUExecutionProvider"]))
    with ThreadPoolExecutor(threads) as pool:
        if batch >= threads > 1:
            singles = [ort_session(fp32, threads=1) for _ in range(threads)]

            def split(x: torch.Tensor) -> torch.Tensor:  # ORT releases the GIL while it runs
                parts = torch.tensor_split(x, threads)
                return torch.cat([f.result() for f in [pool.submit(s, p) for s, p in zip(singles, parts)]])

            runners[f"onnxruntime, {threads} x 1 thread, batch split"] = split
        notes = []
        quantized = ("openvino int8 (sepconv's QDQ file)", "sepconv int8 (onnxruntime)")
        for label, build in (("openvino fp32", lambda: _openvino_runner(fp32, threads)),
                             (quantized[0], lambda: _openvino_runner(int8, threads)),
                             (quantized[1], lambda: ort_session(int8, threads=threads))):
            try:
                runners[label] = build()
            except ImportError as e:
                notes.append(f"  {label}: not installed ({e.name or e}; pip install openvino)")
            except Exception as e:  # noqa: BLE001 - a failing alternative is reported, the others still run
                notes.append(f"  {label}: failed: {' '.join(str(e).split())[:200]}")
        limit = 1e-4 + 1e-4 * float(reference.abs().max())
        checks = {label: max_diff(run, x, reference) for label, run in runners.items() if label not in quantized}
        if checks[peer] > limit:
            raise RuntimeError(f"the plain-export ORT peer differs from eager by {checks[peer]:.3g}")
        for label in [k for k, diff in checks.items() if diff > limit]:
            runners.pop(label)
            notes.append(f"  {label}: output differs from eager by {checks[label]:.3g}, not timed")
        sqnr = {label: sqnr_db(torch.as_tensor(run(x)), reference) for label, run in runners.items() if label in quantized}
        timings = interleaved(runners, x, rounds, budget_s)
    base = timings[peer]["median_ms"]
    lines = [f"{name}, batch {batch}, {threads} threads: median ms (x the plain-export ORT peer)"]
    lines += [f"  {label:<40} {t['median_ms']:8.2f}  ({t['median_ms'] / base:.2f}x)"
              + (f"  logit SQNR vs fp32 {sqnr[label]:.1f} dB" if label in sqnr else "")
              for label, t in timings.items()]
    return "\n".join(lines + notes)


# ------------------------------------------------------------------------------------------- gpu


def bench_cuda(name: str, batches: list[int], rounds: int, budget_s: float, inductor: bool) -> list[dict]:
    model = create_model(name).eval().cuda()
    shape = default_input_shape(model)
    rows = []
    for batch in batches:
        x = torch.randn((batch, *shape[1:]), device="cuda")

        def synced(fn: Callable[[torch.Tensor], object]) -> Runner:
            def run(x: torch.Tensor) -> object:
                with torch.inference_mode():
                    out = fn(x)
                torch.cuda.synchronize()
                return out

            return run

        cl = create_model(name).eval().cuda().to(memory_format=torch.channels_last)
        cl.load_state_dict(model.state_dict())
        runners = {
            "cuda: eager": synced(model),
            "cuda: channels_last": synced(lambda x: cl(x.contiguous(memory_format=torch.channels_last))),
        }

        def amp(x: torch.Tensor) -> object:
            with torch.autocast("cuda", dtype=torch.float16):
                return cl(x.contiguous(memory_format=torch.channels_last))

        runners["cuda: channels_last + AMP fp16"] = synced(amp)
        errors = {}
        if inductor:
            try:
                runners["cuda: torch.compile"] = synced(torch.compile(model))
                runners["cuda: torch.compile"](x)  # compile now (needs triton)
            except Exception as e:  # noqa: BLE001 - recorded, the other GPU figures still count
                runners.pop("cuda: torch.compile")
                errors["cuda: torch.compile"] = f"failed: {' '.join(str(e).split())[:200]}"
        timings = interleaved(runners, x, rounds, budget_s)
        rows.append({"model": name, "batch": batch, "device": torch.cuda.get_device_name(), "timings": timings,
                     "errors": errors})
        log(f"{name} batch {batch} cuda: " + ", ".join(f"{k} {v['median_ms']:.2f} ms" for k, v in timings.items()))
    return rows


# ------------------------------------------------------------------------------------------ report


def spread(row: dict) -> str:
    """`` (lo–hi)``: the lowest and highest per-round ratio of sepconv fp32 to the best peer."""
    ratios = row.get("fp32_vs_best_peer_by_round")
    return f" ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else ""


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "# sepconv deploy benchmark" + (" (partial: the run is still going or died)" if result.get("partial") else ""),
        "",
        f"{env['date']}; {env['cpu']}, {env['cores']} cores, {result['threads']} threads; torch {env['torch']}, "
        f"onnxruntime {env['onnxruntime']}; int8 weights {'7' if env['int8_reduced_range'] else '8'}-bit "
        f"(see sepconv.engines.quantize). Median latency in ms (interleaved rounds); ratios to the best peer, "
        "fp32 / best peer with its lowest and highest value in a single round (the rounds' spread). "
        "Load average before/after each row: a value above the core count means another process shared the cores.",
        "",
        "| model | batch | eager | torch.compile | ORT plain | sepconv fp32 (path) | fp32 / best peer | "
        "eager / fp32 | int8 | int8 / fp32 | load |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["cpu"]:
        t = r["timings"]

        def ms(key: str) -> str:
            return f"{t[key]['median_ms']:.2f}" if key in t else "-"

        lines.append(
            f"| {r['model']} | {r['batch']} | {ms('peer: eager')} | {ms('peer: torch.compile')} | "
            f"{ms('peer: onnxruntime (plain export)')} | {r['sepconv_fp32_ms']:.2f} "
            f"({r['sepconv_fp32'].removeprefix('sepconv: ')}) | {r['fp32_vs_best_peer']:.2f}x{spread(r)} | "
            f"{r['fp32_speedup_vs_eager']:.1f}x | {r['int8_ms']:.2f} | {r['int8_vs_fp32']:.2f}x | "
            f"{r['load_avg_before']:.1f}/{r['load_avg_after']:.1f} |")
    lines += ["", "Every sepconv candidate (fp32, BN folded), ms:", "",
              "| model | batch | " + " | ".join(OURS) + " |", "| --- | ---: |" + " ---: |" * len(OURS)]
    for r in result["cpu"]:
        t = r["timings"]
        cells = [f"{t[f'sepconv: {b}']['median_ms']:.2f}" if f"sepconv: {b}" in t else "-" for b in OURS]
        lines.append(f"| {r['model']} | {r['batch']} | " + " | ".join(cells) + " |")
    lines += ["", "int8 against fp32 (ONNX Runtime both), on 512 held-out digits images:", ""]
    seen = set()
    for r in result["cpu"]:
        if r["model"] not in seen:
            seen.add(r["model"])
            line = f"- {r['model']}: {r['int8_report']['summary']}"
            if (s := r.get("fp32_noise_sensitivity")) is not None:
                line += (f". The fp32 model itself, under {s['input_snr_db']:.0f} dB input noise: top-1 agreement "
                         f"{100 * s['agreement']:.1f}%, logit SQNR {s['logit_sqnr_db']:.1f} dB (random weights are "
                         "chaotic: the trained models below are the measure)")
            lines.append(line)
    if result.get("trained"):
        lines += ["", "int8 against fp32 on models trained on real data (the digits, with sepconv.train), "
                      "on the validation split:", ""]
        for t in result["trained"]:
            lines.append(f"- {t['model']} {t['kwargs']} at {t['img_size']} px, {t['epochs']} epochs "
                         f"(val {100 * t['val_acc']:.1f}%): per-channel: {t['per_channel']['summary']}; "
                         f"per-tensor, for contrast: {t['per_tensor']['summary']}")
    if not result.get("cuda"):
        lines += ["", "CUDA: no CUDA device on this machine; no GPU figures recorded."]
    else:
        lines += ["", f"CUDA ({result['cuda'][0]['device']}), ms:", ""]
        for r in result["cuda"]:
            lines.append(f"- {r['model']} batch {r['batch']}: " + ", ".join(
                f"{k.removeprefix('cuda: ')} {v['median_ms']:.2f}" for k, v in r["timings"].items()))
    lines += ["", f"Whole run: {result.get('seconds', 0)} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated registry names")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, default=None, help="default: all cores")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timing per runner and row (default 2)")
    p.add_argument("--no-inductor", action="store_true", help="skip torch.compile (minutes of compiling per model)")
    p.add_argument("--trained", action="append", default=[], metavar="NAME=CHECKPOINT",
                   help="a digits-trained sepconv checkpoint for NAME: the int8 report gets an accuracy drop")
    p.add_argument("--no-accuracy", action="store_true",
                   help="skip training mobilenet_v2 0.5 and mobilenet_v3_small on the digits for the int8 accuracy check")
    p.add_argument("--epochs", type=int, default=25, help="digits training epochs for the accuracy check (default 25)")
    p.add_argument("--accuracy-only", action="store_true",
                   help="only train the digits models and compare int8 with fp32 (no latency rows)")
    p.add_argument("--out", default=str(RESULTS / "deploy"), help="output stem (.json and .md are written)")
    p.add_argument("--profile-int8", metavar="MODEL",
                   help="only print ONNX Runtime's per-op profile of MODEL in fp32 and int8 (batch 1), then exit")
    p.add_argument("--mixed-int8", metavar="MODEL",
                   help="only time MODEL's fp32, int8 and mixed-precision int8 variants (batch 1), then exit")
    p.add_argument("--alternatives", metavar="MODEL",
                   help="only time MODEL on other engines and ORT settings (first --batches value), then exit")
    args = p.parse_args(argv)
    threads = args.threads or available_cores()
    torch.set_num_threads(threads)
    if args.profile_int8:
        print(profile_int8(args.profile_int8, threads))
        return 0
    if args.mixed_int8:
        print(mixed_int8(args.mixed_int8, threads, args.rounds, args.budget))
        return 0
    if args.alternatives:
        print(alternatives(args.alternatives, args.batches[0], threads, args.rounds, args.budget))
        return 0
    trained = dict(item.split("=", 1) for item in args.trained)
    started = time.time()
    result = {
        "threads": threads,
        "environment": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_name(),
            "cores": available_cores(), "torch": torch.__version__, "onnxruntime": ort.__version__,
            "python": platform.python_version(), "int8_reduced_range": needs_reduced_range(),
        },
        "cpu": [], "cuda": [],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(partial: bool) -> None:  # after every model, so that a long run that dies keeps its rows
        result["seconds"], result["partial"] = round(time.time() - started), partial
        atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=2, default=float) + "\n")
        atomic_write_text(out.with_suffix(".md"), markdown(result))

    for name in [] if args.accuracy_only else args.models.split(","):
        result["cpu"] += bench_cpu(name, args.batches, threads, args.rounds, args.budget, not args.no_inductor,
                                   trained.get(name))
        if torch.cuda.is_available():
            result["cuda"] += bench_cuda(name, args.batches, args.rounds, args.budget, not args.no_inductor)
        write(partial=True)
    if not args.no_accuracy:
        result["trained"] = [trained_int8("mobilenet_v2", {"width_mult": 0.5}, args.epochs, 32),
                             trained_int8("mobilenet_v3_small", {}, args.epochs, 32)]
    write(partial=False)
    print(markdown(result))
    log(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
