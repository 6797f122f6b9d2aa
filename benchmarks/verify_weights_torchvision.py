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

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    /tmp/tv/bin/pip install timm --no-deps && /tmp/tv/bin/pip install pyyaml huggingface_hub safetensors
    /tmp/tv/bin/python benchmarks/verify_weights_torchvision.py export /tmp/wexport
    .venv/bin/python benchmarks/verify_weights_torchvision.py check /tmp/wexport
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


def synth():
    spec = importlib.util.spec_from_file_location("weights_synth", ROOT / "tests/support/weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_model(source: str, name: str, num_classes: int = 1000) -> torch.nn.Module:
    if source == "torchvision":
        import torchvision

        return getattr(torchvision.models, name)(num_classes=num_classes)
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


def export(out: Path) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    for source, name, size in CASES:
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


def check(out: Path) -> int:
    from safetensors.torch import load_file

    from sepconv.weights import create_with_weights

    failures = 0
    print(f"{'source':<12} {'model':<22} {'input':>5} {'max|logit|':>11} {'max|diff|':>10} {'tolerance':>10}  ok")
    for source, name, size in CASES:
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
    parser.add_argument("step", choices=("export", "check", "fixture"))
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    if args.step == "export":
        export(args.path)
    elif args.step == "fixture":
        fixture(args.path)
    else:
        return check(args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
