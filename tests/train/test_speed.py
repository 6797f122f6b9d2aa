"""sepconv.train.speed: the speed settings decided from capabilities and run length, refused where
the machine cannot run them, recorded as JSON, and measured without touching the run's state."""

from __future__ import annotations

import doctest
import json

import pytest
import torch
from torch import nn

from sepconv.models import create_model
from sepconv.train import speed
from sepconv.train.speed import Capabilities, SpeedChoice, decide_speed

pytestmark = pytest.mark.usefixtures("one_thread")


def caps(device="cpu", bf16=True, compile=True):
    check = ("torch.cuda.is_bf16_supported()" if device == "cuda" else
             "torch.ops.mkldnn._is_mkldnn_bf16_supported()") + f" is {bf16}"
    return Capabilities(device=device, bf16=bf16, fp16=device == "cuda", compile=compile, bf16_check=check,
                        compile_check="" if compile else "test: no torch.compile here")


@pytest.mark.parametrize("device, bf16, expected", [
    ("cpu", True, "bf16"), ("cpu", False, "fp32"), ("cuda", True, "bf16"), ("cuda", False, "fp16")])
def test_auto_precision_follows_the_capability(device, bf16, expected):
    choice = decide_speed(caps(device, bf16), compile=False)
    assert choice.precision == expected and choice.dtype == speed.DTYPES[expected]
    assert f"is {bf16}" in choice.precision_reason


@pytest.mark.parametrize("fp32, bf16, expected", [(1.0, 0.5, "bf16"), (1.0, 0.95, "fp32"), (0.1, 0.15, "fp32")])
def test_on_a_cpu_with_native_bf16_auto_takes_it_only_where_a_timed_step_is_faster(fp32, bf16, expected):
    timed = []

    def step_seconds(precision, channels_last):
        timed.append((precision, channels_last))
        return {"fp32": fp32, "bf16": bf16}[precision]

    choice = decide_speed(caps("cpu", True), step_seconds=step_seconds, remaining_steps=100, compile_seconds=60)
    assert choice.precision == expected
    assert f"({1000 * bf16:.0f} ms against {1000 * fp32:.0f} ms in fp32)" in choice.precision_reason
    assert sorted(timed) == [("bf16", True), ("fp32", True)]  # each once: the break-even reuses the chosen one
    assert f"of a {1000 * min(fp32, bf16) if expected == 'bf16' else 1000 * fp32:.0f} ms step" in choice.compile_reason
    # nothing is timed where the capability decides alone: no native bf16, a GPU, or a precision asked for
    for c, asked in ((caps("cpu", False), "auto"), (caps("cuda", True), "auto"), (caps("cpu", True), "fp32")):
        timed.clear()
        decide_speed(c, precision=asked, compile=False, step_seconds=step_seconds)
        assert timed == []


@pytest.mark.parametrize("device, bf16, expected", [("cpu", True, "bf16"), ("cpu", False, "fp32"),
                                                   ("cuda", True, "fp16"), ("cuda", False, "fp16")])
def test_amp_means_the_devices_reduced_precision(device, bf16, expected):
    choice = decide_speed(caps(device, bf16), amp=True, compile=False)
    assert choice.precision == expected and "amp=True (deprecated)" in choice.precision_reason


def test_a_precision_the_machine_cannot_run_is_refused_naming_what_it_can():
    with pytest.raises(ValueError) as err:
        decide_speed(caps("cpu", bf16=False), precision="bf16")
    assert err.value.argument == "precision"
    assert str(err.value) == ("precision='bf16' cannot run on this cpu (torch.ops.mkldnn._is_mkldnn_bf16_supported() "
                              "is False); available: fp32")
    with pytest.raises(ValueError, match=r"precision='fp16' cannot run on this cpu \(fp16 autocast is offered on "
                                         r"CUDA GPUs only\); available: fp32, bf16"):
        decide_speed(caps("cpu", bf16=True), precision="fp16")
    assert decide_speed(caps("cuda", bf16=False), precision="fp16", compile=False).precision == "fp16"
    assert decide_speed(caps("cpu", bf16=False), precision="fp32", compile=False).precision_reason == "asked for"


def test_channels_last_is_on_for_convolutional_models_unless_asked():
    assert decide_speed(caps(), has_conv=True, compile=False).channels_last
    assert not decide_speed(caps(), has_conv=False, compile=False).channels_last
    assert not decide_speed(caps(), channels_last=False, has_conv=True, compile=False).channels_last
    assert decide_speed(caps(), channels_last=True, has_conv=False, compile=False).channels_last


def test_compile_only_past_the_break_even_of_run_length():
    # the CPU's COMPILE_SAVING (15%) of a 0.5 s step: break-even at 60 s / (0.15 * 0.5 s) = 800 steps
    short = decide_speed(caps(), remaining_steps=799, step_seconds=0.5, compile_seconds=60)
    long = decide_speed(caps(), remaining_steps=801, step_seconds=0.5, compile_seconds=60)
    assert (short.compile, long.compile) == (False, True)
    assert "799 steps x 15% of a 500 ms step = 60 s saved <= ~60 s to compile (break-even at 800 steps)" \
        in short.compile_reason
    assert "> ~60 s" in long.compile_reason
    # a slower step reaches the break-even sooner; a dearer compile later
    assert decide_speed(caps(), remaining_steps=799, step_seconds=0.6, compile_seconds=60).compile
    assert not decide_speed(caps(), remaining_steps=801, step_seconds=0.5, compile_seconds=70).compile


def test_the_step_is_measured_only_when_the_break_even_needs_it():
    calls = []

    def step_seconds(precision, channels_last):
        calls.append((precision, channels_last))
        return 1.0

    plain = caps(bf16=False)  # no precision to time: only the break-even could ask
    decide_speed(plain, compile=False, step_seconds=step_seconds, remaining_steps=10**6)
    decide_speed(caps(bf16=False, compile=False), step_seconds=step_seconds, remaining_steps=10**6)
    decide_speed(plain, step_seconds=step_seconds, remaining_steps=0)
    assert calls == []
    assert decide_speed(plain, step_seconds=step_seconds, remaining_steps=10**6, compile_seconds=10).compile
    assert calls == [("fp32", True)]  # measured in the precision and layout the run will use


def test_compile_unavailable_or_asked():
    off = decide_speed(caps(compile=False), remaining_steps=10**9, step_seconds=1.0)
    assert not off.compile and off.compile_reason == "unavailable: test: no torch.compile here"
    with pytest.raises(ValueError) as err:
        decide_speed(caps(compile=False), compile=True)
    assert err.value.argument == "compile"
    assert str(err.value) == ("compile=True but torch.compile is unavailable here (test: no torch.compile here); "
                              "train without it")
    assert decide_speed(caps(), compile=True).compile
    assert decide_speed(caps(), compile=False, remaining_steps=10**9, step_seconds=1.0).compile_reason == "asked off"


def test_the_choice_round_trips_through_json_and_bad_records_are_refused():
    choice = decide_speed(caps(), remaining_steps=5, step_seconds=0.1, compile_seconds=30)
    assert SpeedChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice
    lines = choice.lines()
    assert [line.split(" (")[0] for line in lines] == ["precision bf16", "channels_last on", "torch.compile off"]
    assert all("kept from the run's start" in line for line in choice.lines(resumed=True))
    good = choice.to_dict()
    for doc, message in [([], "must be an object"), ({**good, "precision": "fp8"}, "precision='fp8' must be one of"),
                         ({**good, "compile": "yes"}, "compile='yes' must be true or false"),
                         ({**good, "extra": 1}, "unknown keys extra"),
                         ({**good, "compile_reason": 3}, "compile_reason=3 must be a string")]:
        with pytest.raises(ValueError, match=message):
            SpeedChoice.from_dict(doc, "state.json: speed")


def test_legacy_runs_keep_their_amp_and_layout():
    old = speed.legacy_choice({"amp": True, "channels_last": True}, "cpu")
    assert (old.precision, old.channels_last, old.compile) == ("bf16", True, False)
    assert speed.legacy_choice({"amp": True}, "cuda").precision == "fp16"
    assert speed.legacy_choice({"amp": False, "channels_last": False}, "cpu").precision == "fp32"


def test_compile_time_estimate_grows_with_the_model():
    small = speed.estimate_compile_seconds(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), "cpu")
    base, per_leaf = speed.COMPILE_SECONDS["cpu"]
    assert small == base + 2 * per_leaf
    big = speed.estimate_compile_seconds(create_model("mobilenet_v2", num_classes=10), "cpu")
    assert big > small + 50 * per_leaf


def test_measuring_a_step_changes_neither_the_model_nor_the_random_streams():
    model = create_model("mobilenet_v2", width_mult=0.35, num_classes=10, drop_rate=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    seconds = speed.measure_step_seconds(model, (4, 3, 32, 32), "bf16", True, torch.device("cpu"), repeats=1)
    assert seconds > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics too
    assert all(p.grad is None for p in model.parameters())
    assert model.stem.conv.weight.is_contiguous()  # the copy was made channels_last, not the model


def test_autocast_for_fp32_is_no_autocast_and_bf16_runs_convolutions_in_bf16():
    conv, bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
    x = torch.randn(2, 3, 8, 8)
    with speed.autocast_for("cpu", "fp32"):
        assert conv(x).dtype == torch.float32
    with speed.autocast_for("cpu", "bf16"):
        y = conv(x)
        assert y.dtype == torch.bfloat16
        bn(y)
    assert bn.running_mean.dtype == torch.float32 and conv.weight.dtype == torch.float32  # stays fp32


def test_probe_reports_this_machine():
    found = speed.probe_capabilities("cpu")
    assert found.device == "cpu" and not found.fp16 and found.compile is None  # checked only where it matters
    assert found.bf16 == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert found.precisions[0] == "fp32" and ("bf16" in found.precisions) == found.bf16
    checked = speed.probe_capabilities("cpu", check_compile=True)
    assert checked.compile == (checked.compile_check == "") == speed.compile_support("cpu")[0]


def test_compile_support_is_checked_only_when_it_matters(monkeypatch):
    asked = []

    def support(device):
        asked.append(device)
        return False, "test: no C++ compiler"

    monkeypatch.setattr(speed, "compile_support", support)
    unchecked = Capabilities(device="cpu", bf16=True, fp16=False)
    assert not decide_speed(unchecked, remaining_steps=10, step_seconds=0.1, compile_seconds=60).compile
    assert not decide_speed(unchecked, compile=False).compile and asked == []
    late = decide_speed(unchecked, remaining_steps=10**6, step_seconds=0.1, compile_seconds=60)
    assert not late.compile and late.compile_reason.startswith("unavailable: test: no C++ compiler; it would pay off")
    with pytest.raises(ValueError, match="compile=True but torch.compile is unavailable here .test: no C.. compiler."):
        decide_speed(unchecked, compile=True)
    assert asked == ["cpu", "cpu"]


def test_docstring_example():
    result = doctest.testmod(speed)
    assert result.attempted > 0 and result.failed == 0


def test_bf16_hazard_finds_a_strided_convolution_over_a_one_pixel_input():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.Dropout(0.5), nn.Conv2d(4, 4, 3, stride=2, padding=1))
    net.train()
    rng = torch.get_rng_state()
    assert speed.bf16_hazard(net, (8, 1, 2, 2)) == ("oneDNN's bf16 weight gradient of 2 (stride 2x2 on a 1x1 input) "
                                                   "comes back non-finite here")
    assert speed.bf16_hazard(net, (8, 1, 4, 4)) == ""  # 4 -> 2 -> 1: the second conv sees 2x2
    assert net.training and torch.equal(torch.get_rng_state(), rng)
    assert not any(m._forward_pre_hooks for m in net.modules())
    v1 = create_model("mobilenet_v1", width_mult=0.25, in_chans=1, num_classes=10)
    assert "blocks.11" in speed.bf16_hazard(v1, (64, 1, 16, 16)) and speed.bf16_hazard(v1, (64, 1, 32, 32)) == ""


def test_with_a_bf16_hazard_auto_keeps_fp32_and_bf16_is_refused():
    hazard = "oneDNN's bf16 weight gradient of blocks.11.conv (stride 2x2 on a 1x1 input) comes back non-finite here"
    choice = decide_speed(caps("cpu", True), compile=False, bf16_hazard=hazard, step_seconds=lambda p, c: 1 / 0)
    assert choice.precision == "fp32" and choice.precision_reason.endswith(f"is True, but {hazard}")
    assert decide_speed(caps("cpu", True), amp=True, compile=False, bf16_hazard=hazard).precision == "fp32"
    with pytest.raises(ValueError, match=r"^precision='bf16' cannot train this model at this input size on this CPU: "
                                         r"oneDNN's bf16 weight gradient of blocks.11.conv .*; available: fp32") as err:
        decide_speed(caps("cpu", True), precision="bf16", bf16_hazard=hazard)
    assert err.value.argument == "precision"
    assert decide_speed(caps("cuda", True), compile=False, bf16_hazard=hazard).precision == "bf16"  # oneDNN's only
    assert decide_speed(caps("cpu", True), precision="fp32", compile=False, bf16_hazard=hazard).precision == "fp32"
