"""The papers' blocks, each against a step-by-step functional reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support.layers import (
    bn_ref,
    conv_ref,
    depthwise_ref,
    max_pool_ref,
    pad_amounts,
    pointwise_ref,
    randomize_norms,
    se_ref,
)
from torch import nn
from torch.testing import assert_close

from sepconv.layers import (
    ConvNormAct,
    DepthwiseSeparableBlock,
    InceptionModule,
    InvertedResidual,
    SeparableConv2d,
    SqueezeExcite,
    XceptionBlock,
)


def cna_ref(x, cna: ConvNormAct, act, mode="same", stride=1, depthwise=False) -> torch.Tensor:
    w = cna.conv.weight
    y = depthwise_ref(x, w, None, 1, mode, stride) if depthwise else conv_ref(x, w, None, mode, stride)
    y = bn_ref(y, cna.norm)
    return y if act is None else act(y)


# --- DepthwiseSeparableBlock ----------------------------------------------------------------------


@pytest.mark.parametrize("s", [1, 2])
def test_depthwise_separable_block(s):
    x = torch.randn(2, 4, 8, 8)
    m = randomize_norms(DepthwiseSeparableBlock(4, 6, stride=s))
    assert m.dw.conv.groups == 4 and m.dw.conv.bias is None and m.pw.conv.kernel_size == (1, 1)
    y = cna_ref(x, m.dw, F.relu, "same", s, depthwise=True)
    assert_close(m(x), cna_ref(y, m.pw, F.relu))
    assert m(x).shape == (2, 6, 8 // s, 8 // s)


# --- InvertedResidual -----------------------------------------------------------------------------


def ir_ref(x, m: InvertedResidual, act, stride: int, shortcut: bool) -> torch.Tensor:
    y = x if isinstance(m.expand, nn.Identity) else cna_ref(x, m.expand, act)
    y = cna_ref(y, m.dw, act, "same", stride, depthwise=True)
    if isinstance(m.se, SqueezeExcite):
        y = se_ref(y, m.se)
    y = cna_ref(y, m.project, None)  # linear bottleneck
    return x + y if shortcut else y


@pytest.mark.parametrize(
    "c_in, c_out, stride, shortcut",
    [(8, 8, 1, True), (8, 8, 2, False), (8, 12, 1, False), (8, 12, 2, False)],
)
def test_inverted_residual_shortcut_rule(c_in, c_out, stride, shortcut):
    x = torch.randn(2, c_in, 8, 8)
    m = randomize_norms(InvertedResidual(c_in, c_out, mid_channels=24, stride=stride))
    assert m.use_shortcut is shortcut
    assert_close(m(x), ir_ref(x, m, F.relu6, stride, shortcut))


def test_inverted_residual_without_expansion_has_no_expand_conv():
    m = InvertedResidual(16, 16, mid_channels=16)
    assert isinstance(m.expand, nn.Identity)
    assert not [k for k in m.state_dict() if k.startswith("expand.")]
    assert sum(p.numel() for p in m.expand.parameters()) == 0
    randomize_norms(m)
    x = torch.randn(1, 16, 6, 6)
    assert_close(m(x), ir_ref(x, m, F.relu6, 1, True))
    assert isinstance(InvertedResidual(16, 16, mid_channels=32).expand, ConvNormAct)


@pytest.mark.parametrize("act_layer, act", [(nn.ReLU6, F.relu6), (nn.ReLU, F.relu), (nn.Hardswish, F.hardswish)])
def test_inverted_residual_activations(act_layer, act):
    m = randomize_norms(InvertedResidual(8, 8, mid_channels=16, act_layer=act_layer))
    assert isinstance(m.expand.act, act_layer) and isinstance(m.dw.act, act_layer)
    assert isinstance(m.project.act, nn.Identity)
    x = torch.randn(1, 8, 7, 7)
    assert_close(m(x), ir_ref(x, m, act, 1, True))


@pytest.mark.parametrize("stride", [1, 2])
def test_inverted_residual_with_squeeze_excite(stride):
    m = randomize_norms(
        InvertedResidual(8, 8, mid_channels=72, kernel_size=3, stride=stride, act_layer=nn.Hardswish,
                         se_layer=SqueezeExcite)
    )
    assert isinstance(m.se, SqueezeExcite) and m.se.fc1.out_channels == 24
    x = torch.randn(2, 8, 8, 8)
    assert_close(m(x), ir_ref(x, m, F.hardswish, stride, stride == 1))


# --- XceptionBlock --------------------------------------------------------------------------------


def xception_ref(x, m: XceptionBlock, stride: int, start_with_relu: bool, mode: str) -> torch.Tensor:
    seps = [s for s in m.branch if isinstance(s, SeparableConv2d)]
    norms = [n for n in m.branch if isinstance(n, nn.BatchNorm2d)]
    h = x
    for i, (sep, bn) in enumerate(zip(seps, norms)):
        if i > 0 or start_with_relu:
            h = F.relu(h)
        h = pointwise_ref(depthwise_ref(h, sep.dw.weight, None, 1, mode), sep.pw.weight)
        h = bn_ref(h, bn)
    if stride != 1:
        h = max_pool_ref(h, 3, stride, pad_amounts(mode, tuple(h.shape[-2:]), 3, stride))
    if isinstance(m.shortcut, nn.Identity):
        return h + x
    return h + bn_ref(F.conv2d(x, m.shortcut.conv.weight, None, stride), m.shortcut.norm)


@pytest.mark.parametrize(
    "c_in, c_out, stride, conv_shortcut", [(4, 4, 1, False), (4, 6, 1, True), (4, 4, 2, True), (4, 6, 2, True)]
)
@pytest.mark.parametrize("mode", ["same", "tf_same"])
def test_xception_block_shortcut_and_reference(c_in, c_out, stride, conv_shortcut, mode):
    m = randomize_norms(XceptionBlock(c_in, c_out, reps=2, stride=stride, padding=mode))
    assert isinstance(m.shortcut, ConvNormAct) is conv_shortcut
    if conv_shortcut:
        assert m.shortcut.conv.kernel_size == (1, 1) and m.shortcut.conv.stride == (stride, stride)
        assert isinstance(m.shortcut.act, nn.Identity)
    x = torch.randn(2, c_in, 8, 8)
    assert_close(m(x), xception_ref(x, m, stride, True, mode))


@pytest.mark.parametrize("start_with_relu", [True, False])
def test_xception_block_start_with_relu(start_with_relu):
    m = randomize_norms(XceptionBlock(4, 6, reps=2, start_with_relu=start_with_relu))
    assert isinstance(m.branch[0], nn.ReLU) is start_with_relu
    assert sum(isinstance(b, nn.ReLU) for b in m.branch) == 1 + start_with_relu
    x = torch.randn(1, 4, 6, 6)
    assert_close(m(x), xception_ref(x, m, 1, start_with_relu, "same"))


@pytest.mark.parametrize(
    "grow_first, widths", [(True, [(4, 8), (8, 8), (8, 8)]), (False, [(4, 4), (4, 4), (4, 8)])]
)
def test_xception_block_grow_first(grow_first, widths):
    m = XceptionBlock(4, 8, reps=3, grow_first=grow_first)
    assert [(s.in_channels, s.out_channels) for s in m.branch if isinstance(s, SeparableConv2d)] == widths


def test_xception_block_pool_pads_like_keras():
    m = XceptionBlock(4, 8, reps=1, stride=2, padding="tf_same", start_with_relu=False)
    assert m(torch.randn(1, 4, 74, 74)).shape == (1, 8, 37, 37)
    assert m(torch.randn(1, 4, 147, 147)).shape == (1, 8, 74, 74)


# --- InceptionModule ------------------------------------------------------------------------------


def test_inception_3a_shape():
    m = InceptionModule(192, 64, 96, 128, 16, 32, 32)
    assert m.out_channels == 256
    assert m(torch.randn(1, 192, 28, 28)).shape == (1, 256, 28, 28)


def test_inception_matches_its_four_branches():
    x = torch.randn(2, 6, 7, 7)
    m = InceptionModule(6, 2, 3, 4, 2, 3, 2)
    for cna in m.modules():
        if isinstance(cna, ConvNormAct):
            assert cna.conv.bias is not None and isinstance(cna.norm, nn.Identity)  # original: no BN

    def c(t, cna):
        return F.relu(conv_ref(t, cna.conv.weight, cna.conv.bias, "same"))

    b1 = c(x, m.branch1)
    b3 = c(c(x, m.branch3[0]), m.branch3[1])
    b5 = c(c(x, m.branch5[0]), m.branch5[1])
    bp = c(max_pool_ref(x, 3, 1, (1, 1, 1, 1)), m.branch_pool[1])
    y = m(x)
    assert y.shape == (2, 2 + 4 + 3 + 2, 7, 7)
    assert_close(y, torch.cat([b1, b3, b5, bp], 1))
