"""Keras' ``keras.applications`` MobileNet, MobileNetV2, MobileNetV3Large/Small and Xception.

Layer names as in keras/src/applications/mobilenet.py (``conv1``, ``conv_dw_<i>``,
``conv_pw_<i>``, each with ``_bn``; ``conv_preds``), mobilenet_v2.py (``Conv1``/``bn_Conv1``,
``expanded_conv_*`` then ``block_<i>_{expand,depthwise,project}`` with ``_BN``, ``Conv_1``/
``Conv_1_bn``, ``predictions``), mobilenet_v3.py (``conv``/``conv_bn``, ``expanded_conv[_<i>]_``
+ ``expand``, ``depthwise``, ``squeeze_excite_conv[_1]``, ``project`` with ``_bn``; ``conv_1``,
``conv_2``, ``logits``) and xception.py (``block1_conv{1,2}``, ``block<b>_sepconv<k>`` with
``_bn``, ``predictions``; the four shortcut convs and their BatchNorms have no names, so they are
taken in model order). Keras computes with TensorFlow's SAME padding (``padding="tf_same"``) and
BatchNorm eps 1e-3; its MobileNet uses ReLU6.

Keras' MobileNetV3 rescales its input inside the model (``include_preprocessing=True``, a
``Rescaling(1/127.5, offset=-1)`` layer with no weights): sepconv's model takes the rescaled
input, ``x / 127.5 - 1`` for pixels in [0, 255], as all Keras applications here expect from their
``preprocess_input``. Keras' MobileNet pads its stride-2 depthwise convs by one pixel at the
bottom and right whatever the size, which is TensorFlow's SAME on even sizes only: its outputs
are equal for inputs whose side is a multiple of 32 (all of Keras' own: 128, 160, 192, 224).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from ..layers import ConvNormAct, SeparableConv2d, XceptionBlock
from ._apply import Entry
from ._entries import has_classifier, has_expand, keras_affine, keras_bn, keras_conv_bn, present
from ._files import keras_mapping, read_keras

NAME = "keras"
TF = dict(bn_eps=1e-3, padding="tf_same")
PROFILES = {
    "mobilenet_v1": dict(TF, act="relu6"),
    "mobilenet_v2": dict(TF),
    "mobilenet_v3_large": dict(TF, rounding="timm"),
    "mobilenet_v3_small": dict(TF, rounding="timm"),
    "xception": dict(TF),
}
ALIASES = {
    "MobileNet": ("mobilenet_v1", {}),
    "MobileNetV2": ("mobilenet_v2", {}),
    "MobileNetV3Large": ("mobilenet_v3_large", {}),
    "MobileNetV3Small": ("mobilenet_v3_small", {}),
    "Xception": ("xception", {}),
}
CLASSIFIER = {"mobilenet_v1": "conv_preds/kernel", "mobilenet_v2": "predictions/kernel",
              "mobilenet_v3_large": "logits/kernel", "mobilenet_v3_small": "logits/kernel",
              "xception": "predictions/kernel"}
NAMED = re.compile(r"block\d+_|predictions$")  # Xception's named layers; the rest are shortcuts


def normalization(name: str) -> dict[str, tuple[float, ...]]:
    """Every Keras application here: ``x / 127.5 - 1``, i.e. mean = std = 0.5 on [0, 1] pixels."""
    return {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def read(path_or_mapping: object) -> dict[str, torch.Tensor]:
    if isinstance(path_or_mapping, (str, Path)):
        return read_keras(path_or_mapping)
    return keras_mapping(path_or_mapping)


def entries(model: nn.Module, family: str, names: list[str]) -> list[Entry]:
    if family == "xception":
        return _xception(model, names)
    if family == "mobilenet_v1":
        rows = keras_conv_bn("stem", "conv1", "conv1_bn")
        for i in range(len(model.blocks)):
            dw, pw = f"conv_dw_{i + 1}", f"conv_pw_{i + 1}"
            rows += keras_conv_bn(f"blocks.{i}.dw", dw, f"{dw}_bn", depthwise=True)
            rows += keras_conv_bn(f"blocks.{i}.pw", pw, f"{pw}_bn")
        return rows + (keras_affine("classifier", "conv_preds", "keras_1x1_dense") if has_classifier(model) else [])
    v3 = family != "mobilenet_v2"
    rows = keras_conv_bn("stem", "conv", "conv_bn") if v3 else keras_conv_bn("stem", "Conv1", "bn_Conv1")
    bn = "_bn" if v3 else "_BN"
    for i, block in enumerate(model.blocks):
        p, q = "expanded_conv_" if i == 0 else f"expanded_conv_{i}_" if v3 else f"block_{i}_", f"blocks.{i}"
        if has_expand(block):
            rows += keras_conv_bn(f"{q}.expand", f"{p}expand", f"{p}expand{bn}")
        rows += keras_conv_bn(f"{q}.dw", f"{p}depthwise", f"{p}depthwise{bn}", depthwise=True)
        if present(block, "se"):
            rows += keras_affine(f"{q}.se.fc1", f"{p}squeeze_excite_conv", "keras_conv")
            rows += keras_affine(f"{q}.se.fc2", f"{p}squeeze_excite_conv_1", "keras_conv")
        rows += keras_conv_bn(f"{q}.project", f"{p}project", f"{p}project{bn}")
    if present(model, "head_conv"):
        rows += keras_conv_bn("head_conv", *(("conv_1", "conv_1_bn") if v3 else ("Conv_1", "Conv_1_bn")))
    if present(model, "head_fc"):
        rows += keras_affine("head_fc", "conv_2", "keras_1x1_dense")
    if has_classifier(model):
        rows += keras_affine("classifier", "logits", "keras_1x1_dense") if v3 else keras_affine(
            "classifier", "predictions", "keras_dense")
    return rows


def _unnamed(names: list[str], variable: str) -> list[str]:
    """Layers (in model order) with ``variable`` whose names are not Xception's ``block<b>_...``."""
    layers = [n.rsplit("/", 1)[0] for n in names if n.endswith(f"/{variable}")]
    return [layer for layer in layers if not NAMED.match(layer)]


def _xception(model: nn.Module, names: list[str]) -> list[Entry]:
    rows = [*keras_conv_bn("stem.0", "block1_conv1", "block1_conv1_bn"),
            *keras_conv_bn("stem.1", "block1_conv2", "block1_conv2_bn")]
    convs, bns = _unnamed(names, "kernel"), _unnamed(names, "gamma")
    shortcut = 0
    for b, block in enumerate(model.blocks):
        branch = block.branch if isinstance(block, XceptionBlock) else block
        base = f"blocks.{b}.branch" if isinstance(block, XceptionBlock) else f"blocks.{b}"
        if isinstance(block, XceptionBlock) and isinstance(block.shortcut, ConvNormAct):
            conv = convs[shortcut] if shortcut < len(convs) else f"<shortcut conv {shortcut + 1}>"
            norm = bns[shortcut] if shortcut < len(bns) else f"<shortcut batchnorm {shortcut + 1}>"
            rows += keras_conv_bn(f"blocks.{b}.shortcut", conv, norm)
            shortcut += 1
        k = 0  # Keras numbers the separable convs of block b from 1; each BatchNorm follows one
        for j, m in enumerate(branch):
            if isinstance(m, SeparableConv2d):
                k += 1
                layer = f"block{b + 2}_sepconv{k}"
                rows += [Entry(f"{base}.{j}.dw.weight", f"{layer}/depthwise_kernel", "keras_depthwise"),
                         Entry(f"{base}.{j}.pw.weight", f"{layer}/pointwise_kernel", "keras_conv")]
            elif isinstance(m, nn.BatchNorm2d):
                rows += keras_bn(f"{base}.{j}", f"block{b + 2}_sepconv{k}_bn")
    if has_classifier(model):
        rows += keras_affine("classifier", "predictions", "keras_dense")
    return rows
