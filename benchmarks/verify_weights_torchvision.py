"""End-to-end parity of sepconv's torchvision and timm weight import against the real libraries.

torchvision and timm do not install on the project's CPU machines, so this runs in two steps and
two environments (not part of the test suite):

1. ``export DIR`` in an environment with torchvision and timm: builds each covered model, fills
   it with deterministic synthetic weights (BatchNorm statistics far from their defaults, see
   tests/support/weights.py), saves the state dict (``.pth`` for torchvision, ``.safetensors``
   for timm) and the logits of a fixed input, in eval mode.
2. ``check DIR`` with sepconv: imports every file with ``create_with_weights`` and prints
   max |difference| of the logits against max(1, max |logit|) * 1e-4.

``fixture FILE`` (step 1's environment) writes the same comparison's reference logits for a
10-class head at 64 px into a JSON fixture, which tests/weights/test_layouts.py replays.

The classification baselines (torchvision's GoogLeNet, Inception v3, ResNet-18, -50, -152 and AlexNet,
sepconv's ``variant="torchvision"``) are in ``export`` and ``check`` too, and have three steps of their
own, all in step 1's environment: ``layouts DIR`` writes their state-dict layouts (key, shape) as
tests/fixtures/weights/torchvision_<model>.json; ``fixture-baselines FILE`` their logits, and the
auxiliary heads' (computed in eval mode from the maps they read), for 10 classes at a small input
(parity_torchvision_baselines.json, which tests/weights/test_from_torchvision.py replays); ``counts``
prints their parameters (with and without the auxiliary heads) and the MACs of ``forward`` in eval mode,
counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, FLOPs / 2),
the figures tests/models/test_counts.py pins for the torchvision variants.

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    /tmp/tv/bin/pip install timm --no-deps && /tmp/tv/bin/pip install pyyaml huggingface_hub safetensors
    /tmp/tv/bin/python benchmarks/verify_weights_torchvision.py export /tmp/wexport
    .venv/bin/python benchmarks/verify_weights_torchvision.py check /tmp/wexport
    /tmp/tv/bin/python benchmarks/verify_weights_torchvision.py layouts tests/fixtures/weights
    /tmp/tv/bin/python benchmarks/verify_weights_torchvision.py fixture-baselines \
        tests/fixtures/weights/parity_torchvision_baselines.json
    /tmp/tv/bin/python benchmarks/verify_weights_torchvision.py counts
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# (source, the source's model name, which sepconv.weights also accepts, input size)
CASES = [
    *[("torchvision", name, 224) for name in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")],
    *[("timm", name, 224) for name in ("mobilenetv1_100", "mobilenetv1_125", "mobilenetv2_035", "mobilenetv2_050",
                                       "mobilenetv2_075", "mobilenetv2_100", "mobilenetv2_140",
                                       "mobilenetv3_large_100", "mobilenetv3_small_100")],
    ("timm", "legacy_xception", 299),
]
# The classification baselines: (torchvision name, input size for export/check, input size for the fixture:
# the smallest each takes, except Inception v3's auxiliary head, which needs 299).
BASELINES = [("googlenet", 224, 64), ("inception_v3", 299, 299), ("resnet18", 224, 64), ("resnet50", 224, 64),
             ("resnet152", 224, 64), ("alexnet", 224, 64)]
# Each model's classifier layers, whose first dimension is num_classes (the auxiliary heads' included).
CLASSIFIERS = {"googlenet": ("fc", "aux1.fc2", "aux2.fc2"), "inception_v3": ("fc", "AuxLogits.fc"),
               "alexnet": ("classifier.6",)}
# Where each auxiliary head reads: (the module whose output it takes, the head).
AUX = {"googlenet": [("inception4a", "aux1"), ("inception4d", "aux2")], "inception_v3": [("Mixed_6e", "AuxLogits")]}


def synth():
    spec = importlib.util.spec_from_file_location("weights_synth", ROOT / "tests/support/weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_model(source: str, name: str, num_classes: int = 1000) -> torch.nn.Module:
    if source == "torchvision":
        import torchvision

        extra = {"init_weights": False} if name in AUX else {}  # GoogLeNet, Inception v3: skip the slow init
        return getattr(torchvision.models, name)(num_classes=num_classes, **extra)
    import timm

    return timm.create_model(name, num_classes=num_classes)


def reference(source: str, name: str, size: int, batch: int, num_classes: int = 1000):
    """(state dict, input, eval-mode logits) of the real model with synthetic weights."""
    s = synth()
    model = source_model(source, name, num_classes).eval()
    layout = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    state = {k: torch.from_numpy(v) for k, v in s.synthetic_state(layout).items()}
    model.load_state_dict(state, strict=True)
    x = torch.from_numpy(s.synthetic_input(batch, size))
    with torch.no_grad():
        return state, x, model(x)


def cases() -> list[tuple[str, str, int]]:
    """Every (source, model, input size) that export and check cover."""
    return CASES + [("torchvision", name, size) for name, size, _ in BASELINES]


def export(out: Path) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    for source, name, size in cases():
        state, x, logits = reference(source, name, size, batch=2)
        if source == "torchvision":
            torch.save(state, out / f"{source}_{name}.pth")
        else:
            save_file(state, str(out / f"{source}_{name}.safetensors"))
        save_file({"input": x, "logits": logits}, str(out / f"{source}_{name}.io.safetensors"))
        print(f"exported {source} {name}", file=sys.stderr)


def fixture(path: Path) -> None:
    rows = []
    for source, name, _ in CASES:
        _, _, logits = reference(source, name, 64, batch=1, num_classes=10)
        rows.append({"source": source, "model": name, "input_size": 64, "num_classes": 10,
                     "logits": [round(float(v), 7) for v in logits[0]]})
    versions = {m: importlib.import_module(m).__version__.split("+")[0] for m in ("torch", "torchvision", "timm")}
    cases = ",\n".join(f"  {json.dumps(row)}" for row in rows)  # one case a line
    path.write_text(f'{{\n "versions": {json.dumps(versions)},\n "cases": [\n{cases}\n ]\n}}\n')


def layouts(out: Path) -> None:
    """tests/fixtures/weights/torchvision_<model>.json for the baselines, as the MobileNets' were written."""
    import torchvision

    for name, _, _ in BASELINES:
        state = source_model("torchvision", name).state_dict()
        keys = ",\n".join(f"    {json.dumps([k, list(v.shape)])}" for k, v in state.items())
        text = (f'{{\n  "source": "torchvision",\n  "model": "{name}",\n  "version": "torchvision '
                f'{torchvision.__version__.split("+")[0]}",\n  "keys": [\n{keys}\n  ]\n}}\n')
        (out / f"torchvision_{name}.json").write_text(text)
        print(f"wrote {out / f'torchvision_{name}.json'}: {len(state)} keys", file=sys.stderr)


def fixture_baselines(path: Path, num_classes: int = 10) -> None:
    """The baselines' logits (and their auxiliary heads', in eval mode) for synthetic weights."""
    s = synth()
    rows = []
    for name, _, size in BASELINES:
        model = source_model("torchvision", name, num_classes).eval()
        layout = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
        model.load_state_dict({k: torch.from_numpy(v) for k, v in s.synthetic_state(layout).items()}, strict=True)
        seen = {}
        for tap, _ in AUX.get(name, []):
            getattr(model, tap).register_forward_hook(lambda m, i, o, tap=tap: seen.__setitem__(tap, o))
        x = torch.from_numpy(s.synthetic_input(1, size))
        with torch.no_grad():
            logits = model(x)
            aux = [getattr(model, head)(seen[tap]) for tap, head in AUX.get(name, [])]
        rows.append({"model": name, "input_size": size, "num_classes": num_classes,
                     "classifiers": list(CLASSIFIERS.get(name, ("fc",))),
                     "logits": [round(float(v), 7) for v in logits[0]],
                     "aux_logits": [[round(float(v), 7) for v in a[0]] for a in aux]})
        print(f"fixture {name} at {size} px", file=sys.stderr)
    versions = {m: importlib.import_module(m).__version__.split("+")[0] for m in ("torch", "torchvision")}
    cases = ",\n".join(f"  {json.dumps(row)}" for row in rows)
    path.write_text(f'{{\n "versions": {json.dumps(versions)},\n "cases": [\n{cases}\n ]\n}}\n')


def counts() -> None:
    """Parameters (with and without auxiliary heads) and forward MACs of torchvision's baselines."""
    from torch.utils.flop_counter import FlopCounterMode

    print(f"{'model':<14} {'input':>5} {'params (builder default)':>25} {'params without aux':>19} {'MACs':>15}")
    for name, size, _ in BASELINES:
        model = source_model("torchvision", name).eval()
        total = sum(p.numel() for p in model.parameters())
        aux = sum(p.numel() for head in AUX.get(name, []) for p in getattr(model, head[1]).parameters())
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, 3, size, size))
        flops = counter.get_total_flops()
        print(f"{name:<14} {size:>5} {total:>25,} {total - aux:>19,} {flops // 2:>15,}")


def check(out: Path) -> int:
    from safetensors.torch import load_file

    from sepconv.weights import create_with_weights

    failures = 0
    print(f"{'source':<12} {'model':<22} {'input':>5} {'max|logit|':>11} {'max|diff|':>10} {'tolerance':>10}  ok")
    for source, name, size in cases():
        path = next(out.glob(f"{source}_{name}.p*"), None) or out / f"{source}_{name}.safetensors"
        io = load_file(str(out / f"{source}_{name}.io.safetensors"))
        model = create_with_weights(name, path, source).eval()
        with torch.no_grad():
            logits = model(io["input"])
        scale = io["logits"].abs().max().item()
        diff = (logits - io["logits"]).abs().max().item()
        tol = 1e-4 * max(1.0, scale)
        failures += diff > tol
        ok = "yes" if diff <= tol else "NO"
        print(f"{source:<12} {name:<22} {size:>5} {scale:>11.4f} {diff:>10.2e} {tol:>10.1e}  {ok}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("export", "check", "fixture", "layouts", "fixture-baselines", "counts"))
    parser.add_argument("path", type=Path, nargs="?")
    args = parser.parse_args()
    if args.step != "counts" and args.path is None:
        parser.error(f"{args.step} needs a path")
    if args.step == "export":
        export(args.path)
    elif args.step == "fixture":
        fixture(args.path)
    elif args.step == "layouts":
        layouts(args.path)
    elif args.step == "fixture-baselines":
        fixture_baselines(args.path)
    elif args.step == "counts":
        counts()
    else:
        return check(args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
