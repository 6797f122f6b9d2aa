"""torchvision's state dicts: MobileNetV2/V3, and the baselines GoogLeNet, Inception v3, ResNet-18/50/152 and AlexNet.

MobileNets (torchvision/models/mobilenetv2.py and mobilenetv3.py): ``features.0`` is the stem,
``features.<i+1>`` the i-th block (``.conv.<j>`` in V2, ``.block.<j>`` in V3, each unit a
``Conv2dNormActivation`` whose ``.0`` is the conv and ``.1`` the BatchNorm; V2's projection is a
bare conv and BatchNorm), ``features.<n+1>`` the last 1x1 conv, then ``classifier`` (V2:
``[Dropout, Linear]``; V3: ``[Linear, Hardswish, Dropout, Linear]``). torchvision's V3 uses
BatchNorm eps 1e-3 and scales every width, the head included (``rounding="torchvision"``).

The baselines map only onto their ``variant="torchvision"`` (a model built as the paper's is refused:
the layers differ, or, for ResNet, where the stride sits). Each of torchvision's ``BasicConv2d`` (GoogLeNet,
Inception v3) is a ``.conv`` and a ``.bn``, sepconv's :class:`~sepconv.layers.ConvNormAct` a ``.conv`` and
a ``.norm``.

- googlenet.py: ``conv1`` (the stem), ``conv2``/``conv3`` (the reduce and 3x3 convs), ``inception<3a..5b>``
  with ``branch1``, ``branch2.{0,1}`` (our ``branch3``), ``branch3.{0,1}`` (our ``branch5``), ``branch4.1``
  (our ``branch_pool.1``), ``aux1``/``aux2`` (``conv``, ``fc1``, ``fc2``), ``fc``.
- inception.py: ``Conv2d_1a_3x3`` ... ``Mixed_7c`` as in TensorFlow, each module's convs by the names
  sepconv's :mod:`~sepconv.layers.inception` modules also use, ``AuxLogits`` (``conv0``, ``conv1``, ``fc``), ``fc``.
- resnet.py: ``conv1``/``bn1``, ``layer<1..4>.<j>`` with ``conv<k>``/``bn<k>`` and ``downsample.{0,1}``, ``fc``.
- alexnet.py: ``features.<i>`` (convs at 0, 3, 6, 8, 10), ``classifier.{1,4,6}``.

torchvision's published GoogLeNet and Inception v3 files hold the auxiliary heads (its builders drop
them after loading when ``aux_logits=False``), so sepconv builds those with ``aux_logits=True``; pass
``aux_logits=False`` for a file without them. Those two models were trained on inputs in [-1, 1]
(torchvision turns its ImageNet-normalized input back with ``transform_input=True``, which sepconv's
models do not have): :func:`normalization` gives mean 0.5 and std 0.5 for them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..layers import ConvNormAct, InceptionModule
from ..models.googlenet import TORCHVISION as GOOGLENET_TABLE
from ..models.googlenet import Conv as GoogLeNetConv
from ..models.googlenet import Inception
from ..models.inception_v3 import INCEPTION_V3, Mixed
from ..models.inception_v3 import Conv as InceptionConv
from ..models.resnet import RESNET18, RESNET50, RESNET152
from ._apply import Entry
from ._entries import has_classifier, has_expand, present, torch_affine, torch_conv_bn
from ._files import read_torch, state_dict_in

NAME = "torchvision"
RESNETS = {"resnet18": RESNET18, "resnet50": RESNET50, "resnet152": RESNET152}  # the registered ones
BASELINES = ("googlenet", "inception_v3", *RESNETS, "alexnet")
PROFILES = {
    "mobilenet_v2": dict(bn_eps=1e-5, padding="same"),
    "mobilenet_v3_large": dict(bn_eps=1e-3, padding="same", rounding="torchvision"),
    "mobilenet_v3_small": dict(bn_eps=1e-3, padding="same", rounding="torchvision"),
    "googlenet": dict(variant="torchvision", bn_eps=1e-3, padding="same", aux_logits=True),
    "inception_v3": dict(variant="torchvision", bn_eps=1e-3, padding="same", aux_logits=True),
    **{name: dict(variant="torchvision", bn_eps=1e-5, padding="same") for name in RESNETS},
    "alexnet": dict(variant="torchvision", padding="same"),
}
ALIASES: dict[str, tuple[str, dict]] = {}  # torchvision's builder names are sepconv's
CLASSIFIER = {"mobilenet_v2": "classifier.1.weight", "mobilenet_v3_large": "classifier.3.weight",
              "mobilenet_v3_small": "classifier.3.weight", "googlenet": "fc.weight", "inception_v3": "fc.weight",
              **{name: "fc.weight" for name in RESNETS}, "alexnet": "classifier.6.weight"}
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
HALF = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}  # x / 127.5 - 1


def normalization(name: str) -> dict[str, tuple[float, ...]]:
    """ImageNet's mean/std, except GoogLeNet and Inception v3 (``transform_input``: module docstring)."""
    return HALF if name in ("googlenet", "inception_v3") else IMAGENET


def read(path_or_mapping: object) -> dict[str, torch.Tensor]:
    if isinstance(path_or_mapping, Mapping):
        return state_dict_in(path_or_mapping, "mapping")
    return read_torch(path_or_mapping, NAME)  # type: ignore[arg-type]


def entries(model: nn.Module, family: str, names: list[str]) -> list[Entry]:
    if family in BASELINES:
        variant = getattr(model, "variant", None)
        if variant != "torchvision":
            raise ValueError(f"this {family} is built with variant={variant!r}; torchvision's weights are for "
                             f"variant='torchvision' (create_model({family!r}, variant='torchvision'), or "
                             f"weights_source='torchvision', which builds it so)")
        if family == "googlenet":
            return _googlenet(model)
        if family == "inception_v3":
            return _inception_v3(model)
        if family == "alexnet":
            return _alexnet(model)
        return _resnet(model, family)
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


def basic_conv(dst: str, src: str) -> list[Entry]:
    """A :class:`ConvNormAct` ``dst`` <- torchvision's ``BasicConv2d`` ``src`` (``.conv``, ``.bn``)."""
    return torch_conv_bn(dst, f"{src}.conv", f"{src}.bn")


def _aligned(model: nn.Module, rows: list, family: str) -> None:
    if len(model.blocks) != len(rows) - 1:
        raise ValueError(f"{family}: {len(model.blocks)} blocks, but torchvision's layout has {len(rows) - 1}")


# sepconv's InceptionModule branches <- torchvision's Inception branches (whose "branch2" is the 3x3 branch).
GOOGLENET_BRANCHES = {"branch1": "branch1", "branch3.0": "branch2.0", "branch3.1": "branch2.1",
                      "branch5.0": "branch3.0", "branch5.1": "branch3.1", "branch_pool.1": "branch4.1"}


def _googlenet(model: nn.Module) -> list[Entry]:
    _aligned(model, GOOGLENET_TABLE, "googlenet")
    rows = basic_conv("stem", "conv1")
    for i, (block, row) in enumerate(zip(model.blocks, GOOGLENET_TABLE[1:])):
        if isinstance(row, GoogLeNetConv):  # the "#3x3 reduce" 1x1 conv and the 3x3 conv
            rows += basic_conv(f"blocks.{i}.reduce", "conv2") + basic_conv(f"blocks.{i}.conv", "conv3")
        elif isinstance(row, Inception) and isinstance(block, InceptionModule):
            for ours, theirs in GOOGLENET_BRANCHES.items():
                rows += basic_conv(f"blocks.{i}.{ours}", f"inception{row.name}.{theirs}")
    for aux in ("aux1", "aux2"):
        if present(model, aux):
            rows += basic_conv(f"{aux}.conv", f"{aux}.conv")
            rows += torch_affine(f"{aux}.fc1", f"{aux}.fc1") + torch_affine(f"{aux}.fc2", f"{aux}.fc2")
    if has_classifier(model):
        rows += torch_affine("classifier", "fc")
    return rows


def _inception_v3(model: nn.Module) -> list[Entry]:
    _aligned(model, INCEPTION_V3, "inception_v3")
    rows = basic_conv("stem", INCEPTION_V3[0].name)
    for i, (block, row) in enumerate(zip(model.blocks, INCEPTION_V3[1:])):
        if isinstance(row, InceptionConv):
            rows += basic_conv(f"blocks.{i}", row.name)
        elif isinstance(row, Mixed):
            for attr, unit in block.named_children():
                if isinstance(unit, ConvNormAct):
                    rows += basic_conv(f"blocks.{i}.{attr}", f"{row.name}.{attr}")
    if present(model, "aux"):
        rows += basic_conv("aux.conv0", "AuxLogits.conv0") + basic_conv("aux.conv1", "AuxLogits.conv1")
        rows += torch_affine("aux.fc", "AuxLogits.fc")
    if has_classifier(model):
        rows += torch_affine("classifier", "fc")
    return rows


def _resnet(model: nn.Module, family: str) -> list[Entry]:
    where = [(s, j) for s, stage in enumerate(RESNETS[family], start=1) for j in range(stage.n)]
    if len(where) != len(model.blocks) - 1:  # blocks.0 is the max-pool
        raise ValueError(f"{family}: {len(model.blocks) - 1} residual blocks, but torchvision's has {len(where)}")
    rows = torch_conv_bn("stem", "conv1", "bn1")
    for b, (block, (s, j)) in enumerate(zip(model.blocks[1:], where), start=1):
        p, q = f"layer{s}.{j}", f"blocks.{b}"
        for k in (1, 2, 3):
            if hasattr(block, f"conv{k}"):
                rows += torch_conv_bn(f"{q}.conv{k}", f"{p}.conv{k}", f"{p}.bn{k}")
        if present(block, "shortcut"):
            rows += torch_conv_bn(f"{q}.shortcut", f"{p}.downsample.0", f"{p}.downsample.1")
    if has_classifier(model):
        rows += torch_affine("classifier", "fc")
    return rows


def _alexnet(model: nn.Module) -> list[Entry]:
    rows: list[Entry] = []
    index = 0  # torchvision's features: conv, ReLU[, MaxPool] per layer
    for name, unit in [("stem", model.stem)] + [(f"blocks.{i}", m) for i, m in enumerate(model.blocks)]:
        if isinstance(unit, nn.MaxPool2d):
            index += 1
        else:
            rows += torch_affine(f"{name}.conv.conv", f"features.{index}")
            index += 2
    if present(model, "fc6"):
        rows += torch_affine("fc6", "classifier.1") + torch_affine("fc7", "classifier.4")
    if has_classifier(model):
        rows += torch_affine("classifier", "classifier.6")
    return rows

