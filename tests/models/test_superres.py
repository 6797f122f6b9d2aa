"""Every super-resolution model in the registry (task="super_resolution"): forward shapes at every scale,
backward, torch.fx and torch.export, determinism, the input contract, bad arguments, and the counts the papers
give (DESIGN.md, test levels 2 and 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sepconv.cost import analyze
from sepconv.layers._input import checked_input
from sepconv.models import create_model, list_models, model_entry
from sepconv.models.registry import SR_INPUTS, register_model
from sepconv.models.superres import SCALES, SSNet, bicubic_upscale
from sepconv.resolve import resolve_model

MODELS = [n for n in list_models(task="super_resolution") if model_entry(n).fn.__module__.startswith("sepconv.models.")]
# small instances: the widths cut down, the structure (and every code path) kept
SMALL = {"ssnet_m": {"width": 8}, "ssnet": {"width": 8, "recursions": 2}, "srcnn": {"n1": 8, "n2": 4},
         "fsrcnn": {"d": 8, "s": 4, "m": 2}, "espcn": {"n1": 8, "n2": 4}}


def make(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, **{**SMALL[name], **kwargs})


def lr_input(name: str, scale: int, channels: int = 1, h: int = 10, w: int = 13, batch: int = 2) -> torch.Tensor:
    """A batch for ``name``: the low-resolution image, or (SRCNN) that image upscaled already."""
    x = torch.rand(batch, channels, h, w, generator=torch.Generator().manual_seed(1))
    return bicubic_upscale(x, scale) if model_entry(name).sr_input == "upsampled" else x


def test_the_family_is_registered_as_super_resolution():
    assert set(MODELS) == {"ssnet_m", "ssnet", "srcnn", "fsrcnn", "espcn"}
    assert not set(MODELS) & set(list_models(task="classification"))
    assert set(list_models()) >= set(MODELS) | set(list_models(task="classification"))
    for name in MODELS:
        entry = model_entry(name)
        assert entry.task == "super_resolution" and entry.sr_input in SR_INPUTS and entry.paper
    assert model_entry("srcnn").sr_input == "upsampled"
    assert {n for n in MODELS if model_entry(n).sr_input == "low_resolution"} == set(MODELS) - {"srcnn"}
    assert model_entry("mobilenet_v2").sr_input is None


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", MODELS)
def test_forward_upscales_by_scale(name, scale):
    model = make(name, scale=scale).eval()
    with torch.no_grad():
        y = model(lr_input(name, scale))
    assert y.shape == (2, 1, 10 * scale, 13 * scale)
    assert torch.isfinite(y).all() and model.scale == scale


@pytest.mark.parametrize("name", MODELS)
def test_rgb_models_take_and_give_three_channels(name):
    model = make(name, in_chans=3).eval()
    with torch.no_grad():
        assert model(lr_input(name, 2, channels=3)).shape == (2, 3, 20, 26)


@pytest.mark.parametrize("name", MODELS)
def test_backward_every_parameter_gets_a_gradient(name):
    model = make(name, scale=3)
    y = model(lr_input(name, 3))
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_symbolic_trace_computes_what_eager_computes(name):
    model = make(name).eval()
    traced = torch.fx.symbolic_trace(model)
    x = lr_input(name, 2)
    with torch.no_grad():
        assert torch.equal(traced(x), model(x))
        odd = lr_input(name, 2, h=7, w=9)
        assert torch.equal(traced(odd), model(odd))  # nothing in the graph is fixed to one size


@pytest.mark.parametrize("name", MODELS)
def test_export_computes_what_eager_computes(name):
    model = make(name, scale=3).eval()
    x = lr_input(name, 3)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(exported.module()(x), expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("name", MODELS)
def test_traced_model_raises_what_eager_raises(name):
    model = make(name).eval()
    traced = torch.fx.symbolic_trace(model)
    first = next(n for n in traced.graph.nodes if n.op != "placeholder")
    assert first.target is checked_input and first.args[1:3] == (type(model).__name__, 1)
    wrong = torch.rand(1, 3, 12, 12)
    with pytest.raises(ValueError) as eager:
        model(wrong)
    with pytest.raises(ValueError) as graph:
        traced(wrong)
    assert str(graph.value) == str(eager.value) == (f"{type(model).__name__}: expected 1 input channels, got 3 "
                                                    "(input shape (1, 3, 12, 12))")


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_model_and_output(name):
    a, b = make(name).eval(), make(name).eval()
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    x = lr_input(name, 2)
    with torch.no_grad():
        assert torch.equal(a(x), b(x)) and torch.equal(a(x), a(x))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("scale", [1, 5, 2.0, True, "2"])
def test_unknown_scale_is_refused_naming_it(name, scale):
    with pytest.raises(ValueError, match=r"scale=.* must be one of 2, 3, 4") as err:
        create_model(name, scale=scale)
    assert err.value.argument == "scale"


@pytest.mark.parametrize("name", MODELS)
def test_classification_arguments_are_no_arguments_of_a_super_resolution_model(name):
    for kwargs in ({"num_classes": 10}, {"features_only": True}):
        with pytest.raises(ValueError, match="unknown argument"):
            create_model(name, **kwargs)


@pytest.mark.parametrize("name", MODELS)
def test_macs_equal_flop_counter_and_params_are_counted_once(name):
    model = make(name).eval()
    x = lr_input(name, 2, batch=1)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    report = analyze(model, x)
    assert report.macs == counter.get_total_flops() // 2
    assert report.params == sum(p.numel() for p in model.parameters())


def test_resolver_gives_each_model_its_own_input_shape():
    assert resolve_model("ssnet_m").input_shape == (1, 1, 256, 256)  # the low-resolution image
    assert resolve_model("espcn:in_chans=3,scale=3").input_shape == (1, 3, 256, 256)
    assert resolve_model("srcnn").input_shape == (1, 1, 512, 512)  # SRCNN takes it upscaled already
    assert resolve_model("srcnn:scale=3").input_shape == (1, 1, 768, 768)
    for name in MODELS:
        r = resolve_model(name)
        with torch.no_grad():
            assert r.model.eval()(torch.zeros(r.shape(input_size=24))).shape[-1] == \
                24 * (1 if model_entry(name).sr_input == "upsampled" else 2)


def test_register_model_checks_the_input_contract():
    fn = lambda **kw: nn.Identity()  # noqa: E731
    with pytest.raises(ValueError, match="sr_input=None must be one of low_resolution, upsampled"):
        register_model("tiny_sr_without_contract", paper="-", task="super_resolution")(fn)
    with pytest.raises(ValueError, match="applies to super-resolution models only"):
        register_model("tiny_classifier_with_contract", paper="-", sr_input="upsampled")(fn)
    with pytest.raises(ValueError, match="task='segmentation' must be one of"):
        register_model("tiny_segmenter", paper="-", task="segmentation")(fn)
    with pytest.raises(ValueError, match="task='detection' must be one of"):
        list_models(task="detection")
    assert "tiny_sr_without_contract" not in list_models()


# ---- the papers' counts and each architecture's defining property ------------------------------

def weights(model: nn.Module) -> int:
    """Convolution weights only, as SRCNN and FSRCNN count (no biases, no PReLU slopes)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd))


def test_srcnn_915_has_the_papers_8032_weights():
    model = create_model("srcnn")
    assert weights(model) == 8032 == model_entry("srcnn").figures[0].params  # Dong et al. 2016, Section 4.3
    assert sum(p.numel() for p in model.parameters()) == 8032 + 64 + 32 + 1
    assert [m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)] == [(9, 9), (1, 1), (5, 5)]


def test_fsrcnn_56_12_4_has_the_papers_12464_weights():
    model = create_model("fsrcnn")
    assert weights(model) == 12464 == model_entry("fsrcnn").figures[0].params  # 25d + sd + 9ms^2 + ds + 81d
    deconv = model.deconv
    assert isinstance(deconv, nn.ConvTranspose2d) and deconv.kernel_size == (9, 9) and deconv.stride == (2, 2)
    assert sum(isinstance(m, nn.PReLU) for m in model.modules()) == 4 + 3  # extract, shrink, 4 maps, expand


@pytest.mark.parametrize("scale", SCALES)
def test_espcn_is_three_layers_and_a_periodic_shuffle(scale):
    model = create_model("espcn", scale=scale)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size[0], c.out_channels) for c in convs] == [(5, 64), (3, 32), (3, scale * scale)]
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 2
    assert model.shuffle.upscale_factor == scale


def test_ssnet_recursion_shares_weights_depth_without_parameters():
    shallow, deep = create_model("ssnet_m", recursions=1), create_model("ssnet_m", recursions=6)
    params = [sum(p.numel() for p in m.parameters()) for m in (shallow, deep)]
    assert params[0] == params[1]
    shape = (1, 1, 32, 32)
    block = analyze(deep, shape).macs - analyze(shallow, shape).macs
    assert block == 5 * sum(r.macs for r in analyze(shallow, shape).layers if r.name.startswith("block."))
    rows = [r.name for r in analyze(deep, shape).layers if r.name.startswith("block.0.dw")]
    assert rows == ["block.0.dw"] + [f"block.0.dw#{i}" for i in range(2, 7)]  # one module, six calls


def test_ssnet_is_separable_after_its_first_conv():
    kinds = [r.kind for r in analyze(create_model("ssnet"), (1, 1, 16, 16)).layers if r.kind not in ("activation",
                                                                                                      "other")]
    assert kinds[0] == "standard" and kinds[-1] == "standard"  # reads the image / the learned down-sampling
    assert set(kinds[1:-1]) == {"depthwise", "pointwise"}


def test_ssnet_super_samples_then_learns_the_down_sampling():
    model = create_model("ssnet_m", scale=3).eval()
    seen = {}
    model.shuffle.register_forward_hook(lambda m, i, o: seen.update(over=o.shape))
    with torch.no_grad():
        y = model(torch.rand(1, 1, 8, 10))
    assert seen["over"] == (1, 1, 48, 60) and y.shape == (1, 1, 24, 30)  # over-sampled twice, then halved
    off = create_model("ssnet_m", scale=3, super_sampling=1)
    assert isinstance(off.downsample, nn.Identity) and off(torch.rand(1, 1, 8, 10)).shape == (1, 1, 24, 30)
    with pytest.raises(ValueError, match="super_sampling=3 must be 1"):
        create_model("ssnet_m", super_sampling=3)


def test_untrained_ssnet_starts_at_bicubic():
    """The recursive block's last conv is zero and the sub-pixel conv tiny at initialisation: with the global
    residual the output is bicubic plus a small correction; without it, about zero."""
    torch.manual_seed(0)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        y = SSNet(scale=2).eval()(x)
        bare = SSNet(scale=2, global_residual=False).eval()(x)
    assert (y - bicubic_upscale(x, 2)).abs().max() < 0.02
    assert bare.abs().max() < 0.02
