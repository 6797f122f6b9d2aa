"""torchvision's classification baselines (GoogLeNet, Inception v3, ResNet-18/50/152, AlexNet) into sepconv's
``variant="torchvision"`` models, without torchvision.

tests/fixtures/weights/torchvision_<model>.json hold the real state-dict layouts (key, shape) and
parity_torchvision_baselines.json the real models' logits, main and auxiliary, for the synthetic weights of
tests/support/weights.py with every classifier cut to 10 classes; both dumped from torchvision 0.29.1 with
``benchmarks/verify_weights_torchvision.py layouts`` and ``fixture-baselines``. (That every key of each
layout lands in exactly one tensor is tests/weights/test_layouts.py's check, which globs these fixtures too.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.weights import synthetic_input, synthetic_state

import sepconv.weights as W
from sepconv.models import create_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weights"
PARITY = json.loads((FIXTURES / "parity_torchvision_baselines.json").read_text())["cases"]
BASELINES = ["googlenet", "inception_v3", "resnet18", "resnet50", "resnet152", "alexnet"]


def layout(name: str) -> list:
    fixture = json.loads((FIXTURES / f"torchvision_{name}.json").read_text())
    assert (fixture["source"], fixture["model"]) == ("torchvision", name)
    return fixture["keys"]


def cut(keys: list, classifiers: list[str], num_classes: int) -> list:
    """The layout with every classifier (the auxiliary ones too) cut to ``num_classes`` outputs."""
    return [(k, [num_classes, *s[1:]] if k.rsplit(".", 1)[0] in classifiers else list(s)) for k, s in keys]


def tensors(state: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in state.items()}


def test_fixtures_cover_every_baseline_torchvision_has():
    assert sorted(c["model"] for c in PARITY) == sorted(BASELINES)
    assert set(BASELINES) <= set(W.supported()["torchvision"])
    for name in BASELINES:
        assert layout(name)


def run(case: dict, state: dict[str, torch.Tensor] | None = None) -> tuple[list[float], float]:
    """max |difference| of each output (main logits, then each auxiliary head's) against torchvision's, and
    the tolerance, 1e-4 x max(1, max |logit|), of the other parity checks."""
    name = case["model"]
    if state is None:
        state = tensors(synthetic_state(cut(layout(name), case["classifiers"], case["num_classes"])))
    model = W.create_with_weights(name, state, "torchvision").eval()
    assert model.variant == "torchvision" and model.num_classes == case["num_classes"]
    x = torch.from_numpy(synthetic_input(1, case["input_size"]))
    with torch.no_grad():
        outputs = model.forward_aux(x) if case["aux_logits"] else (model(x),)
    references = [case["logits"], *case["aux_logits"]]
    assert len(outputs) == len(references)
    diffs = [(out[0] - torch.tensor(ref)).abs().max().item() for out, ref in zip(outputs, references)]
    scale = max(abs(v) for ref in references for v in ref)
    return diffs, 1e-4 * max(1.0, scale)


@pytest.mark.parametrize("case", PARITY, ids=[c["model"] for c in PARITY])
def test_logits_equal_torchvisions(case):
    diffs, tolerance = run(case)
    assert max(diffs) <= tolerance, diffs


def test_parity_detects_two_swapped_same_shaped_convs():
    """The parity test has power: Mixed_6b's 1x1 branch and its pool projection (both 768 -> 192) exchanged
    change the logits."""
    case = next(c for c in PARITY if c["model"] == "inception_v3")
    state = tensors(synthetic_state(cut(layout("inception_v3"), case["classifiers"], 10)))
    a, b = "Mixed_6b.branch1x1.conv.weight", "Mixed_6b.branch_pool.conv.weight"
    assert state[a].shape == state[b].shape
    state[a], state[b] = state[b], state[a]
    diffs, tolerance = run(case, state)
    assert diffs[0] > 10 * tolerance


# Hand-read from torchvision/models/{googlenet,inception,resnet}.py: where tensors of equal shape could be
# confused, and the renamed branches. (AlexNet's layers all differ in shape: the parity test places them.)
SPOT_CHECKS = {
    "googlenet": {
        "stem.conv.weight": "conv1.conv.weight",
        "blocks.1.reduce.norm.running_var": "conv2.bn.running_var",
        "blocks.1.conv.conv.weight": "conv3.conv.weight",
        "blocks.3.branch3.1.conv.weight": "inception3a.branch2.1.conv.weight",  # the 3x3 branch
        "blocks.3.branch5.1.conv.weight": "inception3a.branch3.1.conv.weight",  # the "5x5" branch (3x3)
        "blocks.3.branch_pool.1.norm.running_mean": "inception3a.branch4.1.bn.running_mean",
        "blocks.13.branch1.conv.weight": "inception5b.branch1.conv.weight",
        "aux1.fc2.weight": "aux1.fc2.weight",
        "aux2.fc2.weight": "aux2.fc2.weight",
        "classifier.bias": "fc.bias",
    },
    "inception_v3": {
        "stem.norm.running_var": "Conv2d_1a_3x3.bn.running_var",
        "blocks.1.conv.weight": "Conv2d_2b_3x3.conv.weight",
        "blocks.6.branch_pool.conv.weight": "Mixed_5b.branch_pool.conv.weight",
        "blocks.10.branch1x1.conv.weight": "Mixed_6b.branch1x1.conv.weight",
        "blocks.10.branch_pool.conv.weight": "Mixed_6b.branch_pool.conv.weight",
        "blocks.16.branch3x3dbl_3b.norm.weight": "Mixed_7c.branch3x3dbl_3b.bn.weight",
        "aux.conv1.conv.weight": "AuxLogits.conv1.conv.weight",
        "aux.fc.weight": "AuxLogits.fc.weight",
    },
    "resnet50": {
        "stem.norm.running_mean": "bn1.running_mean",
        "blocks.1.shortcut.conv.weight": "layer1.0.downsample.0.weight",
        "blocks.2.conv1.conv.weight": "layer1.1.conv1.weight",
        "blocks.4.conv2.conv.weight": "layer2.0.conv2.weight",
        "blocks.16.conv3.norm.running_var": "layer4.2.bn3.running_var",
    },
    "resnet18": {
        "blocks.3.conv1.conv.weight": "layer2.0.conv1.weight",
        "blocks.3.shortcut.norm.weight": "layer2.0.downsample.1.weight",
        "blocks.8.conv2.norm.running_var": "layer4.1.bn2.running_var",
    },
}


@pytest.mark.parametrize("name", sorted(SPOT_CHECKS))
def test_tensors_land_where_torchvision_code_says(name):
    state = tensors(synthetic_state(layout(name)))
    own = W.create_with_weights(name, state, "torchvision").state_dict()
    for ours, theirs in SPOT_CHECKS[name].items():
        assert torch.equal(own[ours], state[theirs]), (ours, theirs)


@pytest.mark.parametrize("name", ["resnet18", "googlenet"])
def test_the_papers_variant_refuses_torchvisions_weights(name):
    """ResNet's variants have the same shapes (only the stride moves), so shapes cannot catch it: the variant does."""
    state = tensors(synthetic_state(layout(name)))
    model = create_model(name, variant="paper", **({"aux_logits": True} if name == "googlenet" else {}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for strict in (True, False):
        with pytest.raises(ValueError, match=rf"this {name} is built with variant='paper'; torchvision's weights "
                                             r"are for variant='torchvision'"):
            W.load(model, "torchvision", state, strict=strict)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_auxiliary_heads_follow_the_file():
    """torchvision's published GoogLeNet file holds the aux heads (sepconv builds them); a file saved without
    them loads into a model built with aux_logits=False, and not into one with them (strict)."""
    full = tensors(synthetic_state(layout("googlenet")))
    assert W.create_with_weights("googlenet", full, "torchvision").aux_logits
    bare = {k: v for k, v in full.items() if not k.startswith("aux")}
    model = W.create_with_weights("googlenet", bare, "torchvision", aux_logits=False)
    assert not model.aux_logits and model.provenance.weights["loaded"] == len(bare)
    with pytest.raises(ValueError, match=r"missing: aux1\."):
        W.create_with_weights("googlenet", bare, "torchvision")
    with pytest.raises(ValueError, match=r"unexpected: aux1\."):
        W.create_with_weights("googlenet", full, "torchvision", aux_logits=False)


def test_input_normalization_of_the_baselines():
    """GoogLeNet and Inception v3 were trained on [-1, 1] inputs (torchvision's transform_input); the others
    on ImageNet-normalized ones."""
    half = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    assert W.input_normalization("torchvision", "googlenet") == half
    assert W.input_normalization("torchvision", "inception_v3") == half
    assert W.input_normalization("torchvision", "resnet50")["mean"] == (0.485, 0.456, 0.406)
    assert W.resolve("torchvision", "resnet152") == ("resnet152", {"variant": "torchvision", "bn_eps": 1e-5,
                                                                   "padding": "same"})
