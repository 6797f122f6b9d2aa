"""sepconv.separation.convert: one conv described, its eligibility for each form, the valid ranges,
and its replacement: exact at full rank, stride, padding and bias kept, the plan entry that rebuilds it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.formats.plan import build
from sepconv.separation.convert import convert, default_rank, describe, skip_reason, valid_range


@pytest.mark.parametrize("conv, text", [
    (nn.Conv2d(64, 128, 3, stride=2), "3x3 64->128 s2"),
    (nn.Conv2d(3, 8, (3, 5), stride=(1, 2), dilation=2), "3x5 3->8 s(1, 2) d2"),
    (nn.Conv2d(8, 8, 1, groups=4), "1x1 8->8 g4"),
])
def test_describe(conv, text):
    assert describe(conv) == text


@pytest.mark.parametrize("conv, to, groups, reason", [
    (nn.Conv2d(8, 16, 3, groups=8), "depthwise", None, "already depthwise (groups = in_channels = 8)"),
    (nn.Conv2d(8, 16, 3, groups=2), "depthwise", None, "already grouped (groups=2)"),
    (nn.Conv2d(8, 16, 1), "depthwise", None, "1x1 (pointwise): no spatial extent to separate"),
    (nn.Conv2d(8, 16, (1, 3)), "spatial", None, "1x3 is already one-dimensional"),
    (nn.Conv2d(8, 16, (3, 5)), "spatial", None, "the spatial form needs a square kernel"),
    (nn.Conv2d(8, 16, 3, stride=(1, 2)), "spatial", None, "the spatial form needs a square kernel"),
    (nn.Conv2d(8, 12, 3), "grouped", 8, "groups=8 does not divide in_channels=8 and out_channels=12"),
])
def test_skip_reasons(conv, to, groups, reason):
    assert reason in skip_reason(conv, to, groups)


@pytest.mark.parametrize("conv, to, groups", [
    (nn.Conv2d(8, 16, 3), "depthwise", None), (nn.Conv2d(8, 16, (3, 5)), "depthwise", None),
    (nn.Conv2d(8, 16, 3), "spatial", None), (nn.Conv2d(8, 16, 1), "grouped", 4), (nn.Conv2d(8, 12, 3), "grouped", None),
])
def test_eligible_convs_have_no_skip_reason(conv, to, groups):
    assert skip_reason(conv, to, groups) is None


def test_valid_ranges_and_the_default_rank():
    conv = nn.Conv2d(4, 16, 3)
    assert valid_range(conv, "depthwise") == (9, "min(out_channels=16, kh*kw=9)")
    assert valid_range(conv, "spatial") == (12, "min(in_channels*k=12, out_channels*k=48)")
    assert default_rank(conv) == 12  # out_channels=16, capped where the factorisation is exact
    assert default_rank(nn.Conv2d(16, 4, 3)) == 4
    with pytest.raises(ValueError, match="to='grouped' has no rank range"):
        valid_range(conv, "grouped")


@pytest.mark.parametrize("to, setting", [("depthwise", 9), ("spatial", 12)])
def test_full_rank_is_exact_and_keeps_stride_padding_and_bias(to, setting):
    conv = nn.Conv2d(4, 12, 3, stride=2, padding=1, bias=True).double()  # d <= min(12, 9), r <= min(12, 36)
    done, plan = convert(conv, to, setting)
    assert plan == {"to": to, "setting": setting}
    assert done.weight_error < 1e-7
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(done.module(x), conv(x))
    rebuilt = build(conv, **plan)  # the plan entry rebuilds the structure
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in done.module.parameters()]


def test_a_truncated_setting_reports_its_relative_weight_error():
    conv = nn.Conv2d(4, 6, 3)
    done, _ = convert(conv, "depthwise", 1)
    assert 0 < done.weight_error < 1
    frozen = nn.Conv2d(4, 6, 3).requires_grad_(False)
    assert not any(p.requires_grad for p in convert(frozen, "depthwise", 1)[0].module.parameters())


def test_grouped_keeps_the_bias_in_the_permuted_order_and_says_what_it_kept():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 1, bias=True).double()
    with torch.no_grad():  # a hidden block structure under a channel permutation: G=2 is exact
        conv.weight.zero_()
        conv.weight[[0, 2], 1] = 1.0
        conv.weight[[0, 2], 3] = 2.0
        conv.weight[[1, 3], 0] = 3.0
        conv.weight[[1, 3], 2] = -1.0
    done, plan = convert(conv, "grouped", 2)
    assert plan["to"] == "grouped" and plan["setting"] == 2 and set(plan) == {"to", "setting", "permute_in",
                                                                              "permute_out"}
    assert done.note.startswith("kept 100.0% of ||W||^2") and done.weight_error < 1e-7
    x = torch.randn(3, 4, 2, 2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(done.module(x), conv(x))
