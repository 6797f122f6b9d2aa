"""sepconv.train.optim: parameter groups, optimizers, the warmup-cosine schedule and the EMA copy."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from sepconv.train import optim
from sepconv.train.optim import WarmupCosine, build_optimizer, ema_model, param_groups

pytestmark = pytest.mark.usefixtures("one_thread")


def test_param_groups_exclude_norm_and_bias_and_split_depthwise():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=True), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, groups=8),
                          nn.Flatten(), nn.Linear(8, 2))
    groups = {g["name"]: g for g in param_groups(model, weight_decay=0.1, dw_weight_decay=0.01)}
    assert [p.shape for p in groups["decay"]["params"]] == [(8, 3, 3, 3), (2, 8)]
    assert [p.shape for p in groups["depthwise"]["params"]] == [(8, 1, 3, 3)]
    assert len(groups["no_decay"]["params"]) == 5 and groups["no_decay"]["weight_decay"] == 0.0
    assert groups["depthwise"]["weight_decay"] == 0.01


def test_warmup_cosine_schedule():
    s = WarmupCosine(total_steps=10, warmup_steps=2)
    assert [round(s(i), 3) for i in range(11)] == [0.5, 1.0, 1.0, 0.962, 0.854, 0.691, 0.5, 0.309, 0.146, 0.038, 0.0]
    assert WarmupCosine(total_steps=4, warmup_steps=100).warmup_steps == 2  # capped at half the run


def test_frozen_parameters_and_empty_groups_are_left_out():
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.Conv2d(4, 4, 1))
    model[0].weight.requires_grad_(False)
    groups = param_groups(model, weight_decay=0.1, dw_weight_decay=0.0)
    assert [g["name"] for g in groups] == ["decay", "no_decay"]  # no depthwise conv: no empty group
    assert [p.shape for g in groups for p in g["params"]] == [(4, 4, 1, 1), (4,)]


def test_build_optimizer_sgd_nesterov_or_adamw_over_the_groups():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    sgd = build_optimizer(model, "sgd", lr=0.1, weight_decay=1e-4)
    assert isinstance(sgd, torch.optim.SGD) and [g["name"] for g in sgd.param_groups] == ["decay", "no_decay"]
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9 and sgd.defaults["foreach"]
    assert [g["weight_decay"] for g in sgd.param_groups] == [1e-4, 0.0]
    assert not build_optimizer(model, "sgd", lr=0.1, weight_decay=0.0, momentum=0.0).defaults["nesterov"]
    adamw = build_optimizer(model, "adamw", lr=1e-3, weight_decay=0.05)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="optimizer='lamb' must be one of sgd, adamw"):
        build_optimizer(model, "lamb", lr=0.1, weight_decay=0.0)


def test_warmup_cosine_without_warmup_and_past_the_end():
    s = WarmupCosine(total_steps=4, warmup_steps=0)
    assert [s(i) for i in (0, 2, 4, 9)] == [1.0, pytest.approx(0.5), 0.0, 0.0]
    assert WarmupCosine(total_steps=0, warmup_steps=0)(0) == 1.0  # at least one step
    assert WarmupCosine(total_steps=10, warmup_steps=-3).warmup_steps == 0


def test_ema_starts_as_a_copy_and_then_averages_with_a_warming_decay():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ema_model(model, decay=0.99)
    ema.update_parameters(model)  # the first update copies
    w0 = model[0].weight.detach().clone()
    assert torch.equal(ema.module[0].weight, w0)
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(2.0)
        model[1].num_batches_tracked.fill_(7)
    ema.update_parameters(model)
    d = min(0.99, 2 / 11)  # (1 + n) / (10 + n) after one average
    torch.testing.assert_close(ema.module[0].weight, d * w0 + (1 - d) * model[0].weight)
    torch.testing.assert_close(ema.module[1].running_mean, torch.full((2,), 2.0 * (1 - d)))  # buffers too
    assert int(ema.module[1].num_batches_tracked) == 7  # integer buffers follow the model


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_ema_decay_must_be_between_0_and_1(decay):
    with pytest.raises(ValueError, match=f"ema decay={decay!r} must be in \\(0, 1\\)"):
        ema_model(nn.Linear(2, 2), decay)


def test_docstring_example():
    result = doctest.testmod(optim, extraglobs={"nn": nn})
    assert result.attempted > 0 and result.failed == 0
