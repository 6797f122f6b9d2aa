"""timm's MobileNetV1/V2/V3 (``EfficientNet``/``MobileNetV3`` classes) and ``legacy_xception``.

Names as in timm/models/_efficientnet_blocks.py and mobilenetv3.py / efficientnet.py:
``conv_stem``/``bn1``; ``blocks.<stage>.<i>``, each a ``DepthwiseSeparableConv`` (``conv_dw``,
``bn1``, ``se.conv_reduce``/``se.conv_expand``, ``conv_pw``, ``bn2``) or an ``InvertedResidual``
(``conv_pw``, ``bn1``, ``conv_dw``, ``bn2``, ``se``, ``conv_pwl``, ``bn3``); V2's ``conv_head``/
``bn2``; V3's last 1x1 conv as ``blocks.<last>.0.conv``/``bn1`` and its pooled ``conv_head`` (a
1x1 conv with bias, our ``head_fc``); ``classifier``. timm/models/xception.py (legacy):
``conv1``/``bn1``, ``conv2``/``bn2``, ``block<1..12>`` with ``skip``/``skipbn`` and ``rep.<j>``
in the order of our branch, then ``conv3``/``bn3``, ``conv4``/``bn4``, ``fc``. timm uses
BatchNorm eps 1e-5 and symmetric padding throughout; its MobileNetV1 uses ReLU6.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..layers import SeparableConv2d, XceptionBlock
from ._apply import Entry
from ._entries import has_classifier, has_expand, present, torch_affine, torch_bn, torch_conv_bn
from ._files import read_torch, state_dict_in

NAME = "timm"
PROFILES = {
    "mobilenet_v1": dict(bn_eps=1e-5, padding="same", act="relu6"),
    "mobilenet_v2": dict(bn_eps=1e-5, padding="same"),
    "mobilenet_v3_large": dict(bn_eps=1e-5, padding="same", rounding="timm"),
    "mobilenet_v3_small": dict(bn_eps=1e-5, padding="same", rounding="timm"),
    "xception": dict(bn_eps=1e-5, padding="same"),
}
ALIASES = {
    "mobilenetv1_100": ("mobilenet_v1", {"width_mult": 1.0}),
    "mobilenetv1_125": ("mobilenet_v1", {"width_mult": 1.25}),
    **{f"mobilenetv2_{w}": ("mobilenet_v2", {"width_mult": int(w) / 100}) for w in ("035", "050", "075", "100", "140")},
    "mobilenetv3_large_100": ("mobilenet_v3_large", {"width_mult": 1.0}),
    "mobilenetv3_small_100": ("mobilenet_v3_small", {"width_mult": 1.0}),
    "legacy_xception": ("xception", {}),
}
CLASSIFIER = {**{family: "classifier.weight" for family in PROFILES}, "xception": "fc.weight"}
# Blocks per stage: the rows of timm's arch_def in _gen_mobilenet_v1, _gen_mobilenet_v2 and
# _gen_mobilenet_v3 (V3's final 1x1 conv is one more stage, our head_conv).
STAGES = {
    "mobilenet_v1": (1, 2, 2, 6, 2),
    "mobilenet_v2": (1, 2, 3, 4, 3, 3, 1),
    "mobilenet_v3_large": (1, 2, 3, 4, 2, 3),
    "mobilenet_v3_small": (1, 2, 3, 2, 3),
}
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
HALF = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def normalization(name: str) -> dict[str, tuple[float, ...]]:
    """timm's pretrained_cfg mean/std: 0.5 for mobilenetv1_* and legacy_xception, ImageNet's else."""
    return HALF if name in ("mobilenet_v1", "xception") else IMAGENET


def read(path_or_mapping: object) -> dict[str, torch.Tensor]:
    if isinstance(path_or_mapping, Mapping):
        return state_dict_in(path_or_mapping, "mapping")
    return read_torch(path_or_mapping, NAME)  # type: ignore[arg-type]


def entries(model: nn.Module, family: str, names: list[str]) -> list[Entry]:
    if family == "xception":
        return _xception(model)
    rows = torch_conv_bn("stem", "conv_stem", "bn1")
    where = [(s, i) for s, n in enumerate(STAGES[family]) for i in range(n)]
    if len(where) != len(model.blocks):
        raise ValueError(f"{family}: {len(model.blocks)} blocks, but timm's layout has {len(where)}")
    for b, (block, (s, i)) in enumerate(zip(model.blocks, where)):
        p, q = f"blocks.{s}.{i}", f"blocks.{b}"
        if family == "mobilenet_v1":  # DepthwiseSeparableBlock: dw and pw units
            rows += torch_conv_bn(f"{q}.dw", f"{p}.conv_dw", f"{p}.bn1")
            rows += torch_conv_bn(f"{q}.pw", f"{p}.conv_pw", f"{p}.bn2")
            continue
        # timm builds a block without expansion as a DepthwiseSeparableConv: bn1 after the dw conv,
        # conv_pw/bn2 the projection; an InvertedResidual has conv_pw/bn1, conv_dw/bn2, conv_pwl/bn3.
        expand = has_expand(block)
        if expand:
            rows += torch_conv_bn(f"{q}.expand", f"{p}.conv_pw", f"{p}.bn1")
        rows += torch_conv_bn(f"{q}.dw", f"{p}.conv_dw", f"{p}.bn2" if expand else f"{p}.bn1")
        if present(block, "se"):
            rows += torch_affine(f"{q}.se.fc1", f"{p}.se.conv_reduce")
            rows += torch_affine(f"{q}.se.fc2", f"{p}.se.conv_expand")
        project = (f"{p}.conv_pwl", f"{p}.bn3") if expand else (f"{p}.conv_pw", f"{p}.bn2")
        rows += torch_conv_bn(f"{q}.project", *project)
    if present(model, "head_conv"):
        if present(model, "head_fc"):  # V3: the last 1x1 conv is a block of its own stage
            last = f"blocks.{len(STAGES[family])}.0"
            rows += torch_conv_bn("head_conv", f"{last}.conv", f"{last}.bn1")
            rows += torch_affine("head_fc", "conv_head", "conv_1x1_linear")
        else:
            rows += torch_conv_bn("head_conv", "conv_head", "bn2")
    if has_classifier(model):
        rows += torch_affine("classifier", "classifier")
    return rows


def _xception(model: nn.Module) -> list[Entry]:
    rows = torch_conv_bn("stem.0", "conv1", "bn1") + torch_conv_bn("stem.1", "conv2", "bn2")
    for b, block in enumerate(model.blocks):
        if isinstance(block, XceptionBlock):
            p = f"block{b + 1}"
            if present(block, "shortcut"):
                rows += torch_conv_bn(f"blocks.{b}.shortcut", f"{p}.skip", f"{p}.skipbn")
            units = [(f"blocks.{b}.branch.{j}", f"{p}.rep.{j}", m) for j, m in enumerate(block.branch)]
        else:  # the exit flow's two separable convs: conv3, bn3, conv4, bn4
            seps = [j for j, m in enumerate(block) if isinstance(m, SeparableConv2d)]
            names = {j: f"conv{3 + k}" for k, j in enumerate(seps)} | {j + 1: f"bn{3 + k}" for k, j in enumerate(seps)}
            units = [(f"blocks.{b}.{j}", names.get(j, ""), m) for j, m in enumerate(block)]
        for dst, src, m in units:
            if isinstance(m, SeparableConv2d):
                rows += [Entry(f"{dst}.dw.weight", f"{src}.conv1.weight"),
                         Entry(f"{dst}.pw.weight", f"{src}.pointwise.weight")]
            elif isinstance(m, nn.BatchNorm2d):
                rows += torch_bn(dst, src)
    if has_classifier(model):
        rows += torch_affine("classifier", "fc")
    return rows
