"""``sepconv.separation.separate`` on whole modules: exactness, skips, ranges, selection, reports, files."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sepconv import create_model
from sepconv.cost import analyze
from sepconv.formats.checkpoint import load_model, save_model
from sepconv.layers import Conv2d, SeparableConv2d, SpatiallySeparableConv2d
from sepconv.separation import PermutedGroupedConv2d, separate

# (kwargs of the conv, input size): stride 2, dilation, bias, "valid", TF SAME, reflect, even kernel
CONVS = [
    (dict(kernel_size=3, padding=1), 9),
    (dict(kernel_size=3, stride=2, padding=1, bias=False), 10),
    (dict(kernel_size=3, dilation=2, padding=2), 11),
    (dict(kernel_size=5, stride=2, padding=0), 13),
    (dict(kernel_size=3, padding=1, padding_mode="reflect"), 8),
    (dict(kernel_size=4, padding="same"), 9),
    (dict(kernel_size=3, stride=(2, 1), padding=(0, 1)), 9),
]


def net_with(conv: nn.Module) -> nn.Sequential:
    return nn.Sequential(conv, nn.ReLU()).double()


def full_rank(conv: nn.Conv2d, to: str) -> int:
    n, m, kh, kw = conv.weight.shape
    return min(n, kh * kw) if to == "depthwise" else min(m * kh, n * kw)


@pytest.mark.parametrize("to", ["depthwise", "spatial"])
@pytest.mark.parametrize("conv_kwargs,size", CONVS)
def test_full_rank_is_exact(to, conv_kwargs, size):
    conv = nn.Conv2d(6, 5, **conv_kwargs)
    model = net_with(conv)
    x = torch.randn(2, 6, size, size + 1, dtype=torch.float64)
    setting = {"depth_multiplier" if to == "depthwise" else "rank": full_rank(conv, to)}
    new, report = separate(model, to, calibration=x, **setting)
    if to == "spatial" and conv.stride[0] != conv.stride[1]:
        assert "needs a square kernel with equal stride and dilation" in report.layers[0].reason
        assert new[0] is not conv and type(new[0]) is nn.Conv2d
        return
    assert isinstance(new[0], SeparableConv2d if to == "depthwise" else SpatiallySeparableConv2d)
    torch.testing.assert_close(new(x), model(x), rtol=1e-9, atol=1e-9)
    row = report.layers[0]
    assert row.status == "separated" and row.weight_error < 1e-9 and row.output_error < 1e-9


def test_tf_same_padding_is_kept():
    model = nn.Sequential(Conv2d(4, 6, 3, stride=2, padding="tf_same")).double()
    x = torch.randn(1, 4, 10, 10, dtype=torch.float64)
    for to, kw in (("depthwise", dict(depth_multiplier=6)), ("spatial", dict(rank=12))):
        new, _ = separate(model, to, **kw)
        torch.testing.assert_close(new(x), model(x), rtol=1e-9, atol=1e-9)


def test_truncated_output_matches_the_truncated_kernel():
    """Below full rank the module computes exactly the conv with the best rank-d kernel, and its
    weight error is the SVD tail's share of ||W||."""
    conv = nn.Conv2d(8, 12, 3, padding=1, bias=False).double()
    w = conv.weight.detach()
    singular = torch.linalg.svdvals(w.permute(1, 0, 2, 3).reshape(8, 12, 9))
    new, report = separate(nn.Sequential(conv), depth_multiplier=2)
    x = torch.randn(1, 8, 7, 7, dtype=torch.float64)
    dw, pw = new[0].dw.weight.reshape(8, 2, 3, 3), new[0].pw.weight.reshape(12, 8, 2)
    w_hat = torch.einsum("nmj,mjab->nmab", pw, dw)
    torch.testing.assert_close(new(x), nn.functional.conv2d(x, w_hat, padding=1))
    expected = float((singular[:, 2:] ** 2).sum().sqrt() / w.norm())
    assert report.layers[0].weight_error == pytest.approx(expected, rel=1e-9)


def test_grouped_computes_the_permuted_block_diagonal_and_keeps_bias():
    conv = nn.Conv2d(8, 12, 3, padding=1).double()
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    new, report = separate(nn.Sequential(conv), "grouped", groups=4, calibration=x)
    module = new[0]
    assert isinstance(module, PermutedGroupedConv2d) and module.grouped.conv.groups == 4
    in_perm = module.perm_in.index if hasattr(module.perm_in, "index") else torch.arange(8)
    out_inverse = module.perm_out.index if hasattr(module.perm_out, "index") else torch.arange(12)
    out_perm = torch.argsort(out_inverse)
    in_group = torch.empty(8, dtype=torch.long)
    out_group = torch.empty(12, dtype=torch.long)
    in_group[in_perm], out_group[out_perm] = torch.arange(8) // 2, torch.arange(12) // 3
    mask = (out_group[:, None] == in_group[None, :]).double()[:, :, None, None]
    reference = nn.functional.conv2d(x, conv.weight * mask, conv.bias, padding=1)
    torch.testing.assert_close(new(x), reference)
    w = conv.weight.detach()
    kept = float(((w * mask) ** 2).sum() / (w**2).sum())
    assert report.layers[0].weight_error == pytest.approx((1 - kept) ** 0.5, rel=1e-9)
    assert "identity order" in report.layers[0].reason


def test_grouped_separates_pointwise_convs():
    model = nn.Sequential(nn.Conv2d(8, 8, 1))
    new, report = separate(model, "grouped", groups=2)
    assert report.layers[0].status == "separated" and report.layers[0].params_after == 8 * 4 + 8


def test_skips_with_reasons():
    model = nn.Sequential(
        nn.Conv2d(4, 8, 1),  # pointwise
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise
        nn.Conv2d(8, 8, 3, padding=1, groups=2),  # grouped
        nn.Conv2d(8, 8, (1, 5), padding=(0, 2)),  # one-dimensional
        nn.Conv2d(8, 6, 3, padding=1),  # a standard conv
    )
    _, report = separate(model, "depthwise")
    reasons = {r.name: r.reason for r in report.skipped}
    assert reasons["0"].startswith("1x1 (pointwise)")
    assert reasons["1"].startswith("already depthwise (groups = in_channels = 8)")
    assert reasons["2"].startswith("already grouped (groups=2)")
    assert [r.name for r in report.separated] == ["3", "4"]
    _, spatial = separate(model, "spatial", rank=2)
    assert {r.name: r.reason for r in spatial.skipped}["3"] == "1x5 is already one-dimensional"
    _, grouped = separate(model, "grouped", groups=4)
    assert {r.name: r.reason for r in grouped.skipped}["4"] == (
        "groups=4 does not divide in_channels=8 and out_channels=6")
    assert "0" in {r.name for r in grouped.separated}  # 1x1 is fine for grouped


def test_out_of_range_names_the_layer_and_the_range():
    model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.Conv2d(32, 4, 3))
    with pytest.raises(ValueError, match=r"depth_multiplier=5 is out of range for 1 layer\(s\): layer '1' "
                                         r"\(3x3 32->4\): valid range 1..4 = min\(out_channels=4, kh\*kw=9\)"):
        separate(model, depth_multiplier=5)
    with pytest.raises(ValueError, match=r"rank=10 is out of range for 1 layer\(s\): layer '0' \(3x3 3->32\): "
                                         r"valid range 1..9 = min\(in_channels\*k=9, out_channels\*k=96\)"):
        separate(model, "spatial", rank=10)
    _, report = separate(model, depth_multiplier=5, layers=["0"])  # excluding the layer is the way out
    assert [r.name for r in report.separated] == ["0"]


@pytest.mark.parametrize("kwargs,message", [
    (dict(to="pointwise"), "to='pointwise' must be one of"),
    (dict(depth_multiplier=0), "depth_multiplier=0 must be a positive integer"),
    (dict(to="grouped"), "groups is required"),
    (dict(to="grouped", groups=1), "groups=1 must be >= 2"),
    (dict(layers=["nope"]), r"layers: no Conv2d named 'nope'; the model's convs: 0"),
    (dict(layers="0"), "must be a list of module names or a predicate"),
    (dict(min_macs=10), "min_macs=10 needs calibration= or input_shape="),
    (dict(input_shape=(3, 8, 8)), "must be four positive ints"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        separate(nn.Sequential(nn.Conv2d(3, 8, 3)), **kwargs)


class Tower(nn.Module):
    """Convs as attributes, in a ModuleList, and one conv shared by two parents."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)])
        self.shared = self.body[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        for conv in self.body:
            x = torch.relu(conv(x))
        return self.shared(x)


def test_attributes_lists_shared_and_copies():
    model = Tower().double()
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    new, report = separate(model, depth_multiplier=8, calibration=x)
    assert type(model.first) is nn.Conv2d  # the caller's model is untouched
    assert isinstance(new.first, SeparableConv2d) and new.shared is new.body[1]
    torch.testing.assert_close(new(x), model(x))
    assert report.output_error < 1e-9
    same, _ = separate(model, depth_multiplier=2, inplace=True)
    assert same is model and isinstance(model.body[0], SeparableConv2d)


def test_layer_selection_and_min_macs():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1))
    _, by_name = separate(model, layers=["1"])
    assert [r.name for r in by_name.separated] == ["1"]
    assert {r.name: r.reason for r in by_name.skipped}["0"] == "not selected by layers="
    _, by_pattern = separate(nn.Sequential(model, nn.Sequential(nn.Conv2d(16, 16, 3))), layers=["1.*", "0.[1]"])
    assert [r.name for r in by_pattern.separated] == ["0.1", "1.0"]
    with pytest.raises(ValueError, match=r"layers: no Conv2d named 'blocks\.\*'"):
        separate(model, layers=["blocks.*"])
    _, by_predicate = separate(model, layers=lambda name, conv: conv.in_channels > 3)
    assert [r.name for r in by_predicate.separated] == ["1"]
    # conv 0: 8 * 8*8 * 27 = 13,824 MACs per image; conv 1: 16 * 4*4 * 72 = 18,432
    _, small = separate(model, min_macs=15_000, input_shape=(2, 3, 8, 8))
    assert small.layers[0].macs_before == 13_824 and small.layers[1].macs_before == 18_432
    assert small.layers[0].reason == "13,824 MACs < min_macs=15,000"
    assert [r.name for r in small.separated] == ["1"]


def test_report_counts_agree_with_the_cost_model():
    model = create_model("mobilenet_v1", conv="standard", width_mult=0.25, num_classes=10)
    new, report = separate(model, depth_multiplier=2, input_shape=(2, 3, 32, 32), measure_time=True)
    before, after = analyze(model, (1, 3, 32, 32)), analyze(new, (1, 3, 32, 32))
    assert (report.params_before, report.params_after) == (before.params, after.params)
    assert (report.macs_before, report.macs_after) == (before.macs, after.macs)
    kinds = {row.kind for row in after.layers if row.name.startswith("blocks.0.")}
    assert kinds >= {"depthwise", "pointwise"}
    assert sum(r.macs_before - r.macs_after for r in report.separated) == before.macs - after.macs
    assert all(r.time_before_ms > 0 and r.time_after_ms > 0 for r in report.separated)
    data = json.loads(report.to_json())
    assert data["to"] == "depthwise" and len(data["layers"]) == 14 and data["threads"] == torch.get_num_threads()
    text = str(report)
    assert "blocks.12.conv" in text and "whole model" in text


def test_save_and_load_a_separated_model(tmp_path):
    model = create_model("mobilenet_v1", conv="standard", width_mult=0.25, num_classes=10)
    first, _ = separate(model, "grouped", groups=2, layers=["blocks.3.conv"])
    both, _ = separate(first, depth_multiplier=3, layers=lambda name, conv: name.startswith("blocks.1"))
    save_model(both, tmp_path / "sep.safetensors")
    sidecar = json.loads((tmp_path / "sep.json").read_text())
    assert [stage["to"] for stage in sidecar["separation"]] == ["grouped", "depthwise"]
    loaded = load_model(tmp_path / "sep.safetensors")
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.eval()(x), both.eval()(x))
    assert isinstance(loaded.blocks[3].conv, PermutedGroupedConv2d)
    assert isinstance(loaded.blocks[10].conv, SeparableConv2d)
    save_model(loaded, tmp_path / "again.safetensors")  # a loaded separated model saves and loads again
    again = create_model(weights=tmp_path / "again.safetensors")
    torch.testing.assert_close(again.eval()(x), both(x))


def test_separate_refuses_to_recalibrate_on_random_inputs():
    with pytest.raises(ValueError, match="recalibrate_bn=True needs real images in calibration="):
        separate(nn.Sequential(nn.Conv2d(3, 8, 3)), input_shape=(1, 3, 8, 8), recalibrate_bn=True)
