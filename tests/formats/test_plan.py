"""sepconv.formats.plan: the separation stages a sidecar records, replayed into a fresh model as empty
replacements of the recorded form (padding, dtype and mode kept), and bad stages refused by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.formats.plan import apply_plan, build, padding_of
from sepconv.layers import ChannelPermutation, Conv2d, SeparableConv2d, SpatiallySeparableConv2d
from sepconv.layers.permuted import PermutedGroupedConv2d
from sepconv.separation import separate


@pytest.mark.parametrize("conv, padding", [
    (Conv2d(3, 4, 3, stride=2, padding="tf_same"), "tf_same"),
    (nn.Conv2d(3, 4, 3, padding="same"), "same"),
    (nn.Conv2d(3, 4, 3, padding="valid"), "valid"),
    (nn.Conv2d(3, 4, 5, padding=(1, 2)), (1, 2)),
])
def test_padding_of_rebuilds_the_convs_padding(conv, padding):
    assert padding_of(conv) == padding


@pytest.mark.parametrize("to, setting, cls", [("depthwise", 2, SeparableConv2d),
                                               ("spatial", 3, SpatiallySeparableConv2d),
                                               ("grouped", 2, PermutedGroupedConv2d)])
def test_build_gives_the_recorded_form_with_the_convs_shape_padding_dtype_and_mode(to, setting, cls):
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="reflect", bias=False).double().eval()
    module = build(conv, to, setting)
    assert isinstance(module, cls) and not module.training
    assert all(p.dtype == torch.float64 for p in module.parameters())
    assert not any(name.endswith("bias") for name, _ in module.named_parameters())
    assert {m.padding_mode for m in module.modules() if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1} == {
        "reflect"}
    x = torch.randn(1, 4, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        assert module(x).shape == conv(x).shape == (1, 6, 5, 5)


def test_build_grouped_without_permutations():
    module = build(nn.Conv2d(4, 4, 1), "grouped", 2, permute_in=False, permute_out=False)
    assert isinstance(module.perm_in, nn.Identity) and isinstance(module.perm_out, nn.Identity)
    permuted = build(nn.Conv2d(4, 4, 1), "grouped", 2)
    assert isinstance(permuted.perm_in, ChannelPermutation) and isinstance(permuted.perm_out, ChannelPermutation)


def test_replaying_a_separations_plan_gives_a_model_its_tensors_load_into():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.Conv2d(8, 8, 1)).eval()
    fresh = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.Conv2d(8, 8, 1)).eval()
    separated, _ = separate(model, "depthwise", depth_multiplier=2, layers=["2"], input_shape=(1, 3, 8, 8),
                            measure_time=False)
    separated, _ = separate(separated, "grouped", groups=2, layers=["3"], input_shape=(1, 3, 8, 8),
                            measure_time=False)
    stages = [{"to": "depthwise", "layers": {"2": {"to": "depthwise", "setting": 2}}},
              {"to": "grouped", "layers": {"3": {"to": "grouped", "setting": 2, "permute_in": True,
                                                 "permute_out": True}}}]
    replayed = apply_plan(fresh, stages)
    assert replayed is fresh and isinstance(fresh[2], SeparableConv2d) and isinstance(fresh[3], PermutedGroupedConv2d)
    fresh.load_state_dict(separated.state_dict())  # strict: every tensor has its place and shape
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), separated(x))


@pytest.mark.parametrize("stages, message", [
    ([{"to": "depthwise", "layers": {"1": {"to": "depthwise", "setting": 2}}}],
     r"separation\[0\]: layer '1' is not a Conv2d of Sequential"),
    ([{"to": "depthwise", "layers": {"nonesuch": {"to": "depthwise", "setting": 2}}}],
     r"separation\[0\]: layer 'nonesuch' is not a Conv2d"),
    ([{"to": "depthwise", "layers": {}}, {"to": "depthwise", "layers": {"0": {"to": "depthwise", "setting": 10**6}}}],
     r"separation\[1\]: layer '0' has setting=1000000, above any valid one for this conv \(at most 24\)"),
    ([{"to": "grouped", "layers": {"0": {"to": "grouped", "setting": 3, "permute_in": False,
                                          "permute_out": False}}}],
     r"separation\[0\]: layer '0': groups=3 must divide"),
])
def test_replay_refuses_bad_stages_by_stage_and_layer(stages, message):
    model = nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU())
    with pytest.raises(ValueError, match=message):
        apply_plan(model, stages)
