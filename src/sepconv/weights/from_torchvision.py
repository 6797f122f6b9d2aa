"""torchvision's MobileNetV2 and MobileNetV3 state dicts.

Names as in torchvision/models/mobilenetv2.py and mobilenetv3.py: ``features.0`` is the stem,
``features.<i+1>`` the i-th block (``.conv.<j>`` in V2, ``.block.<j>`` in V3, each unit a
``Conv2dNormActivation`` whose ``.0`` is the conv and ``.1`` the BatchNorm; V2's projection is a
bare conv and BatchNorm), ``features.<n+1>`` the last 1x1 conv, then ``classifier`` (V2:
``[Dropout, Linear]``; V3: ``[Linear, Hardswish, Dropout, Linear]``). torchvision's V3 uses
BatchNorm eps 1e-3 and scales every width, the head included (``rounding="torchvision"``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ._apply import Entry
from ._entries import has_classifier, has_expand, present, torch_affine, torch_conv_bn
from ._files import read_torch, state_dict_in

NAME = "torchvision"
PROFILES = {
    "mobilenet_v2": dict(bn_eps=1e-5, padding="same"),
    "mobilenet_v3_large": dict(bn_eps=1e-3, padding="same", rounding="torchvision"),
    "mobilenet_v3_small": dict(bn_eps=1e-3, padding="same", rounding="torchvision"),
}
ALIASES: dict[str, tuple[str, dict]] = {}  # torchvision's builder names are sepconv's
CLASSIFIER = {"mobilenet_v2": "classifier.1.weight", "mobilenet_v3_large": "classifier.3.weight",
              "mobilenet_v3_small": "classifier.3.weight"}
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def normalization(name: str) -> dict[str, tuple[float, ...]]:
    return IMAGENET


def read(path_or_mapping: object) -> dict[str, torch.Tensor]:
    if isinstance(path_or_mapping, Mapping):
        return state_dict_in(path_or_mapping, "mapping")
    return read_torch(path_or_mapping, NAME)  # type: ignore[arg-type]


def entries(model: nn.Module, family: str, names: list[str]) -> list[Entry]:
    rows = torch_conv_bn("stem", "features.0.0", "features.0.1")
    v3 = family != "mobilenet_v2"
    for i, block in enumerate(model.blocks):
        p, j = f"features.{i + 1}.{'block' if v3 else 'conv'}", 0
        if has_expand(block):
            rows += torch_conv_bn(f"blocks.{i}.expand", f"{p}.0.0", f"{p}.0.1")
            j = 1
        rows += torch_conv_bn(f"blocks.{i}.dw", f"{p}.{j}.0", f"{p}.{j}.1")
        if present(block, "se"):
            j += 1
            rows += torch_affine(f"blocks.{i}.se.fc1", f"{p}.{j}.fc1")
            rows += torch_affine(f"blocks.{i}.se.fc2", f"{p}.{j}.fc2")
        if v3:
            rows += torch_conv_bn(f"blocks.{i}.project", f"{p}.{j + 1}.0", f"{p}.{j + 1}.1")
        else:
            rows += torch_conv_bn(f"blocks.{i}.project", f"{p}.{j + 1}", f"{p}.{j + 2}")
    last = f"features.{len(model.blocks) + 1}"
    if present(model, "head_conv"):
        rows += torch_conv_bn("head_conv", f"{last}.0", f"{last}.1")
    if present(model, "head_fc"):
        rows += torch_affine("head_fc", "classifier.0")
    if has_classifier(model):
        rows += torch_affine("classifier", "classifier.3" if v3 else "classifier.1")
    return rows
