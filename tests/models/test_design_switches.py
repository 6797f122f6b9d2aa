"""Issue 17's switches: MobileNetV2's ``project_act`` and ``expand_ratio``, Deep Roots' ``groups`` on the
standard-conv baselines, and ``img_size`` (the resolution multiplier) on every classification model. Each
switch changes exactly the modules it names; its default leaves the model as it was (keys, shapes, counts)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv._util.checks import ArgumentError
from sepconv.cost import analyze
from sepconv.models import create_model, paper_figures
from sepconv.models.roots import conv_or_root


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def kinds(model: nn.Module) -> dict[str, str]:
    return {name: type(m).__name__ for name, m in model.named_modules()}


@pytest.mark.parametrize("name, kwargs", [
    ("mobilenet_v2", {"project_act": None, "expand_ratio": None}),
    ("mobilenet_v2", {"expand_ratio": 6}),  # Table 2's t everywhere but the first row
    ("mobilenet_v1", {"groups": 1}),
    ("mobilenet_v1", {"conv": "standard", "groups": 1}),
    ("mobilenet_v1", {"img_size": 160}),  # the input, not the network
])
def test_a_switch_at_its_default_builds_the_default_model(name, kwargs):
    base = {"conv": "standard"} if kwargs.get("conv") else {}
    torch.manual_seed(0)
    default = create_model(name, **base)
    torch.manual_seed(0)
    switched = create_model(name, **kwargs)
    assert shapes(switched) == shapes(default) and kinds(switched) == kinds(default)
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), switched.state_dict().values()))


def test_vgg16_groups_one_is_vgg16():
    with torch.device("meta"):
        assert shapes(create_model("vgg16", groups=1)) == shapes(create_model("vgg16"))


@pytest.mark.parametrize("act, cls", [("relu6", nn.ReLU6), ("relu", nn.ReLU)])
def test_project_act_changes_only_each_projections_activation(act, cls):
    default, switched = create_model("mobilenet_v2"), create_model("mobilenet_v2", project_act=act)
    assert shapes(switched) == shapes(default)
    changed = {n for n, k in kinds(switched).items() if kinds(default)[n] != k}
    assert changed == {f"blocks.{i}.project.act" for i in range(17)}
    assert all(isinstance(switched.get_submodule(n), cls) for n in changed)
    assert analyze(switched, (1, 3, 224, 224)).macs == 300_774_272  # an activation costs no MACs


def test_project_act_on_the_backbone_too():
    backbone = create_model("mobilenet_v2", features_only=True, project_act="relu6")
    assert isinstance(backbone.blocks[5].project.act, nn.ReLU6)


@pytest.mark.parametrize("t", [1, 2, 4])
def test_expand_ratio_replaces_every_t_but_the_first_rows(t):
    default, switched = create_model("mobilenet_v2"), create_model("mobilenet_v2", expand_ratio=t)
    assert shapes(switched.blocks[0]) == shapes(default.blocks[0])  # Table 2's t = 1 row stays
    assert shapes(switched.stem) == shapes(default.stem) and shapes(switched.head_conv) == shapes(default.head_conv)
    for block in list(switched.blocks)[1:]:
        assert block.dw.conv.in_channels == t * block.in_channels
        assert isinstance(block.expand, nn.Identity) == (t == 1)  # t = 1: no expanding 1x1
    assert switched(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_expand_ratio_counts_grow_with_t():
    macs = [analyze(create_model("mobilenet_v2", expand_ratio=t), (1, 3, 224, 224)).macs for t in (1, 2, 6)]
    assert macs[0] < macs[1] < macs[2] == 300_774_272


def test_root_modules_replace_exactly_the_standard_convs():
    default = create_model("mobilenet_v1", conv="standard", width_mult=0.25)
    roots = create_model("mobilenet_v1", conv="standard", width_mult=0.25, groups=4)
    assert shapes(roots.stem) == shapes(default.stem)  # the image's conv is not grouped (Deep Roots)
    assert shapes(roots.classifier) == shapes(default.classifier)
    for plain, root in zip(default.blocks, roots.blocks):
        assert [n for n, _ in root.named_children()] == ["root", "mix"]
        assert root.root.conv.groups == 4 and root.root.conv.weight.shape[1] == plain.conv.weight.shape[1] // 4
        assert root.root.conv.stride == plain.conv.stride and root.mix.conv.kernel_size == (1, 1)
        assert root.mix.conv.out_channels == plain.conv.out_channels
    assert roots(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_vgg16_root_modules():
    with torch.device("meta"):
        vgg = create_model("vgg16", groups=8)
    assert type(vgg.stem).__name__ == "ConvNormAct"  # the stem is not grouped
    first = vgg.blocks[0][0]
    assert first.root.conv.groups == 8 and first.mix.conv.kernel_size == (1, 1)
    assert isinstance(vgg.blocks[0][-1], nn.MaxPool2d)


def test_conv_or_root():
    assert type(conv_or_root(8, 16, 3)).__name__ == "ConvNormAct"
    root = conv_or_root(8, 16, 3, stride=2, groups=2)
    assert root(torch.zeros(1, 8, 8, 8)).shape == (1, 16, 4, 4)


@pytest.mark.parametrize("name, kwargs, match", [
    ("mobilenet_v1", {"groups": 4}, r"groups=4 makes conv='standard' layers .* root modules"),
    ("mobilenet_v1", {"conv": "standard", "groups": 3}, r"groups=3 must divide the channels of every grouped layer"),
    ("mobilenet_v1", {"conv": "standard", "groups": 0}, r"groups=0 must be a positive integer"),
    ("vgg16", {"groups": 3}, r"groups=3 must divide"),
    ("mobilenet_v2", {"project_act": "tanh"}, r"project_act='tanh' must be one of"),
    ("mobilenet_v2", {"expand_ratio": 0}, r"expand_ratio=0 must be a positive integer"),
    ("mobilenet_v2", {"expand_ratio": 2.5}, r"expand_ratio=2.5 must be a positive integer"),
    ("mobilenet_v1", {"img_size": 0}, r"img_size=0 must be a positive integer"),
    ("mobilenet_v2", {"img_size": -32}, r"img_size=-32 must be a positive integer"),
    ("xception", {"img_size": 1.5}, r"img_size=1.5 must be a positive integer"),
    ("mobilenet_v1", {"img_size": 100_000}, r"img_size=100000: one input image and its first feature map would need"),
])
def test_bad_switch_values_name_the_value_and_the_rule(name, kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        create_model(name, **kwargs)


@pytest.mark.parametrize("name, kwargs, match", [
    ("mobilenet_v3_large", {"project_act": "relu6"}, r"project_act='relu6' \(mobilenet_v3_large has no such switch\)"),
    ("mobilenet_v1", {"expand_ratio": 2}, r"expand_ratio=2 \(mobilenet_v1 has no such switch\)"),
    ("mobilenet_v2", {"groups": 2}, r"groups=2 \(mobilenet_v2 has no such switch\)"),
    ("srcnn", {"img_size": 32}, r"img_size=32 \(srcnn has no such switch\)"),  # super-resolution: no rho
])
def test_a_switch_on_a_family_without_it_is_refused(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model(name, **kwargs)


# MobileNets (Howard et al. 2017), Table 7: 1.0 MobileNet at 224/192/160/128 px, million mult-adds, 4.2M params.
TABLE_7 = [(224, 569, 568_740_352), (192, 418, 418_121_728), (160, 290, 290_675_200), (128, 186, 186_400_768)]


@pytest.mark.parametrize("size, paper, exact", TABLE_7)
def test_table_7_macs_exactly_and_within_the_papers_rounding(size, paper, exact):
    from sepconv.resolve import resolve_model

    resolved = resolve_model(f"mobilenet_v1:img_size={size}")
    assert resolved.input_shape == (1, 3, size, size)
    report = analyze(resolved.model, resolved.input_shape)
    assert report.macs == exact
    assert abs(report.macs / 1e6 - paper) < 1  # the paper prints whole millions
    assert round(report.params / 1e6, 1) == 4.2
    fig = paper_figures("mobilenet_v1", {"img_size": size})
    assert fig.macs == paper * 1e6 and fig.params == 4.2e6
    assert "Table 7" in fig.source  # the 224 row: Tables 4 and 6, "the first row of Table 7"
