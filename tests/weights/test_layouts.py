"""torchvision and timm import, without torchvision or timm.

tests/fixtures/weights/<source>_<model>.json hold the exact (key, shape) layouts of the real state
dicts (dumped from torchvision 0.29.1 and timm 1.0.31); parity_torch.json holds the real models'
logits for synthetic weights (benchmarks/verify_weights_torchvision.py, which made both).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.weights import synthetic_input, synthetic_state, with_classes

import sepconv.weights as W

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weights"
LAYOUTS = sorted(p.stem for p in FIXTURES.glob("*.json") if not p.stem.startswith("parity"))
PARITY = json.loads((FIXTURES / "parity_torch.json").read_text())["cases"]


def layout(stem: str) -> tuple[str, str, list]:
    fixture = json.loads((FIXTURES / f"{stem}.json").read_text())
    return fixture["source"], fixture["model"], fixture["keys"]


def tensors(state: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in state.items()}


def test_fixtures_cover_the_issue() -> None:
    covered = {(s, m) for s, m, _ in map(layout, LAYOUTS)}
    assert {("torchvision", n) for n in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")} <= covered
    assert {("timm", n) for n in ("mobilenetv1_100", "mobilenetv2_050", "mobilenetv2_100", "mobilenetv2_140",
                                  "mobilenetv3_large_100", "mobilenetv3_small_100", "legacy_xception")} <= covered


@pytest.mark.parametrize("stem", LAYOUTS)
def test_every_key_of_the_real_layout_lands_in_one_tensor(stem: str) -> None:
    source, name, keys = layout(stem)
    state = synthetic_state(keys)
    model = W.create_with_weights(name, tensors(state), source)  # strict: nothing missing or left over
    assert model.provenance.weights["loaded"] == len(keys)
    own = model.state_dict()
    assert len(own) == len(keys)
    # Every source tensor (all distinct random numbers) is, byte for byte, exactly one model tensor.
    ours = sorted(v.numpy().tobytes() for k, v in own.items() if not k.endswith("num_batches_tracked"))
    theirs = sorted(v.tobytes() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert ours == theirs
    assert all(int(v) == 7 for k, v in own.items() if k.endswith("num_batches_tracked"))


# Hand-read from torchvision/models/mobilenetv{2,3}.py, timm/models/_efficientnet_blocks.py and
# timm/models/xception.py: the places where tensors of equal shape could be confused.
SPOT_CHECKS = {
    "torchvision_mobilenet_v2": {
        "blocks.0.dw.conv.weight": "features.1.conv.0.0.weight",
        "blocks.0.project.norm.running_var": "features.1.conv.2.running_var",
        "blocks.1.expand.norm.running_mean": "features.2.conv.0.1.running_mean",
        "blocks.1.dw.norm.running_var": "features.2.conv.1.1.running_var",
        "blocks.16.project.conv.weight": "features.17.conv.2.weight",
        "head_conv.norm.weight": "features.18.1.weight",
        "classifier.weight": "classifier.1.weight",
    },
    "torchvision_mobilenet_v3_large": {
        "blocks.3.dw.norm.running_var": "features.4.block.1.1.running_var",
        "blocks.3.se.fc1.weight": "features.4.block.2.fc1.weight",
        "blocks.3.project.norm.running_mean": "features.4.block.3.1.running_mean",
        "head_conv.conv.weight": "features.16.0.weight",
        "head_fc.weight": "classifier.0.weight",
        "classifier.bias": "classifier.3.bias",
    },
    "torchvision_mobilenet_v3_small": {
        "blocks.0.se.fc2.bias": "features.1.block.1.fc2.bias",
        "blocks.0.project.norm.running_var": "features.1.block.2.1.running_var",
    },
    "timm_mobilenetv1_100": {
        "blocks.5.dw.conv.weight": "blocks.3.0.conv_dw.weight",
        "blocks.12.pw.norm.running_var": "blocks.4.1.bn2.running_var",
    },
    "timm_mobilenetv2_100": {
        "blocks.0.project.norm.running_mean": "blocks.0.0.bn2.running_mean",
        "blocks.2.expand.norm.running_var": "blocks.1.1.bn1.running_var",
        "blocks.2.dw.norm.running_var": "blocks.1.1.bn2.running_var",
        "blocks.16.project.norm.weight": "blocks.6.0.bn3.weight",
        "head_conv.norm.running_mean": "bn2.running_mean",
    },
    "timm_mobilenetv3_large_100": {
        "blocks.14.se.fc1.weight": "blocks.5.2.se.conv_reduce.weight",
        "head_conv.norm.running_var": "blocks.6.0.bn1.running_var",
        "head_fc.weight": "conv_head.weight",
    },
    "timm_mobilenetv3_small_100": {
        "blocks.0.se.fc2.weight": "blocks.0.0.se.conv_expand.weight",
        "head_conv.conv.weight": "blocks.5.0.conv.weight",
    },
    "timm_legacy_xception": {
        "blocks.0.branch.1.running_var": "block1.rep.1.running_var",
        "blocks.5.branch.4.dw.weight": "block6.rep.4.conv1.weight",
        "blocks.10.branch.8.running_mean": "block11.rep.8.running_mean",
        "blocks.11.shortcut.norm.running_var": "block12.skipbn.running_var",
        "blocks.12.3.pw.weight": "conv4.pointwise.weight",
        "blocks.12.4.running_var": "bn4.running_var",
        "classifier.weight": "fc.weight",
    },
}


@pytest.mark.parametrize("stem", sorted(SPOT_CHECKS))
def test_tensors_land_where_the_source_code_says(stem: str) -> None:
    source, name, keys = layout(stem)
    state = tensors(synthetic_state(keys))
    own = W.create_with_weights(name, state, source).state_dict()
    for ours, theirs in SPOT_CHECKS[stem].items():
        assert torch.equal(own[ours], state[theirs].reshape(own[ours].shape)), (ours, theirs)


def run_case(case: dict, state: dict[str, torch.Tensor] | None = None) -> tuple[float, float]:
    """(max |difference|, tolerance) of sepconv's logits against the real library's."""
    source, name = case["source"], case["model"]
    stem = f"{source}_{name}"
    family = W.resolve(source, name)[0]
    classifier = W.SOURCES[source].CLASSIFIER[family].rsplit(".", 1)[0]
    if state is None:
        state = tensors(synthetic_state(with_classes(layout(stem)[2], classifier, case["num_classes"])))
    model = W.create_with_weights(name, state, source).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(synthetic_input(1, case["input_size"])))[0]
    reference = torch.tensor(case["logits"])
    return (logits - reference).abs().max().item(), 1e-4 * max(1.0, reference.abs().max().item())


@pytest.mark.parametrize("case", PARITY, ids=[f"{c['source']}-{c['model']}" for c in PARITY])
def test_logits_equal_the_real_libraries(case: dict) -> None:
    diff, tolerance = run_case(case)
    assert diff <= tolerance


def test_parity_detects_swapped_batchnorm_statistics() -> None:
    """The parity test has power: two same-shaped statistics exchanged change the logits."""
    case = next(c for c in PARITY if c["model"] == "mobilenetv2_100")
    state = tensors(synthetic_state(with_classes(layout("timm_mobilenetv2_100")[2], "classifier", 10)))
    a, b = "blocks.1.1.bn1.running_var", "blocks.1.1.bn2.running_var"
    state[a], state[b] = state[b], state[a]
    diff, tolerance = run_case(case, state)
    assert diff > 10 * tolerance


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_files_load_like_mappings(tmp_path: Path, suffix: str) -> None:
    from safetensors.torch import save_file

    source, name, keys = layout("timm_mobilenetv2_035")
    state = tensors(synthetic_state(keys))
    path = tmp_path / f"w{suffix}"
    if suffix == ".pth":
        wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}  # as timm's train.py
        torch.save(wrapped, path)
    else:
        save_file(state, str(path))
    from_file = W.create_with_weights(name, path, source).state_dict()
    from_mapping = W.create_with_weights(name, state, source).state_dict()
    assert all(torch.equal(from_file[k], from_mapping[k]) for k in from_mapping)


@pytest.mark.parametrize("stem", ["torchvision_mobilenet_v3_small", "timm_mobilenetv2_035"])
def test_numpy_mappings_load_like_tensor_mappings(stem: str) -> None:
    """The issue's "an in-memory mapping of names to arrays also works", for torchvision and timm
    too: a dict of NumPy arrays goes straight to load(), create_model() and create_with_weights()."""
    from sepconv import create_model

    source, name, keys = layout(stem)
    arrays = synthetic_state(keys)  # {name: np.ndarray}, num_batches_tracked a 0-d int64 array
    reference = W.create_with_weights(name, tensors(arrays), source).state_dict()
    family, config = W.resolve(source, name)
    built = W.create_with_weights(name, arrays, source)
    via_create = create_model(name, weights=arrays, weights_source=source)
    loaded = create_model(family, **config)
    report = W.load(loaded, source, arrays)
    assert report.loaded == len(keys)
    for model in (built, via_create, loaded):
        own = model.state_dict()
        assert own.keys() == reference.keys()
        assert all(torch.equal(own[k], reference[k]) for k in reference)
