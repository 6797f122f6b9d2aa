"""Every registered model, through the same checks (DESIGN.md, test level 2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sepconv
from sepconv.models import create_model, list_models, model_entry
from sepconv.models._base import Backbone, Classifier
from sepconv.models.mobilefacenet import MobileFaceNetFeatures

# The zoo's own models (test modules elsewhere may register small models of their own).
MODELS = [n for n in list_models(task="classification") if model_entry(n).fn.__module__.startswith("sepconv.models.")]


# The input most tests use, per model: 64 px, or the smallest a model takes (Inception v3's reductions are
# unpadded: 75 px leaves its last map 1x1, as torchvision's min_size says).
SIZE = {"inception_v3": 75}


# How far a feature map's side may fall short of input / stride: Inception v3's unpadded 3x3 convs
# take 2 pixels each (96 px: 20 at stride 4, not 24).
MAP_SLACK = {"inception_v3": 4}


def size_of(name: str) -> int:
    return SIZE.get(name, 64)


# The classification baselines run these checks at a quarter of their width (every layer, the same code
# paths): at full width their 7-61M parameters would add minutes to the suite. test_counts.py builds them at
# full width and runs them at their input size (analyze's forward).
BASELINES = ("alexnet", "googlenet", "inception_v3", "resnet18", "resnet50", "resnet152")


def small_kwargs(name: str, size: int) -> dict:
    """Arguments for a small, quick instance; MobileFaceNet's GDC is sized from the input."""
    if name in BASELINES:
        return {"width_mult": 0.25}
    return {"img_size": size} if name == "mobilefacenet" else {}


def make(name: str, size: int | None = None, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **small_kwargs(name, size or size_of(name)), **kwargs)


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    model = make(name, num_classes=7)
    x = torch.randn(2, 3, size_of(name), size_of(name))
    y = model(x)
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_features_only_strides_and_channels(name):
    size = 96
    model = make(name, size, features_only=True).eval()
    with torch.no_grad():
        maps = model(torch.randn(1, 3, size, size))
    info = model.feature_info
    assert len(maps) == len(info) >= 4
    strides = [f.stride for f in info]
    assert strides == sorted(strides) and len(set(strides)) == len(strides)
    for fmap, f in zip(maps, info):
        assert fmap.shape[1] == f.channels
        assert abs(fmap.shape[-1] - size / f.stride) <= MAP_SLACK.get(name, 3), (f, fmap.shape)
    assert not hasattr(model, "classifier")
    # out_indices picks levels, negative indices count from the end
    picked = make(name, size, features_only=True, out_indices=(1, -1)).eval()
    with torch.no_grad():
        two = picked(torch.randn(1, 3, size, size))
    assert [m.shape[1] for m in two] == [info[1].channels, info[-1].channels]
    # a backbone has no head: forward_features returns the same list as forward (timm's convention)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        feats = picked.forward_features(x)
        assert isinstance(feats, list)
        assert all(torch.equal(a, b) for a, b in zip(feats, picked(x), strict=True))
    assert not hasattr(picked, "forward_head")


@pytest.mark.parametrize("name", MODELS)
def test_backbone_and_classifier_share_the_body_and_nothing_else(name):
    """features_only builds the family's backbone class, with the classifier's stem and blocks (same
    names and shapes, so weights map onto both) and no head module; the classifier always returns a tensor."""
    classifier, backbone = make(name), make(name, features_only=True)
    assert isinstance(backbone, Backbone) and backbone.features_only
    assert isinstance(classifier, Classifier) and not classifier.features_only
    body = {k: v.shape for k, v in classifier.state_dict().items() if k.startswith(("stem.", "blocks."))}
    assert {k: v.shape for k, v in backbone.state_dict().items()} == body
    assert [n for n, _ in backbone.named_children()] == ["stem", "blocks"]
    assert backbone.feature_info == classifier.feature_info
    with torch.no_grad():
        assert isinstance(classifier.eval()(torch.randn(1, 3, size_of(name), size_of(name))), torch.Tensor)


def test_readme_backbone_example():
    b = sepconv.create_model("mobilenet_v3_large", features_only=True, out_indices=(2, 3, 4))
    with torch.no_grad():
        maps = b(torch.zeros(1, 3, 224, 224))
    assert [f.stride for f in b.feature_info] == [8, 16, 32]
    assert [tuple(m.shape) for m in maps] == [(1, f.channels, 224 // f.stride, 224 // f.stride) for f in b.feature_info]


@pytest.mark.parametrize("name", MODELS)
def test_out_indices_needs_features_only(name):
    with pytest.raises(ValueError, match=r"out_indices=\(1, 2\) picks a backbone's feature maps: it needs"):
        create_model(name, out_indices=(1, 2))


def test_backbone_takes_no_head_arguments():
    """create_model accepts the head's arguments with features_only (a spec may carry them) and builds no head."""
    b = create_model("mobilefacenet", features_only=True, num_classes=5, img_size=96, drop_rate=0.1)
    assert isinstance(b, MobileFaceNetFeatures)
    with pytest.raises(TypeError):
        MobileFaceNetFeatures(num_classes=5)


@pytest.mark.parametrize("name", MODELS)
def test_single_channel_input(name):
    model = make(name, in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, size_of(name), size_of(name))).shape == (1, 3)


@pytest.mark.parametrize("name", MODELS)
def test_odd_input_size(name):
    model = make(name, 193, num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 193, 193)).shape == (1, 5)


@pytest.mark.parametrize("name", MODELS)
def test_num_classes_zero_gives_pooled_features(name):
    model = make(name, num_classes=0).eval()
    s = size_of(name)
    with torch.no_grad():
        feats = model(torch.randn(2, 3, s, s))
        pre = model.forward_head(model.forward_features(torch.randn(2, 3, s, s)), pre_logits=True)
    assert feats.shape == (2, model.num_features)
    assert pre.shape == (2, model.num_features)


@pytest.mark.parametrize("name", MODELS)
def test_eval_mode_is_deterministic(name):
    model = make(name).eval()
    x = torch.randn(2, 3, size_of(name), size_of(name))
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_drop_rate_is_used_in_training_only(name):
    x = torch.randn(2, 3, size_of(name), size_of(name))
    plain = make(name, drop_rate=0.0, num_classes=7).train()
    assert torch.equal(plain(x), plain(x))  # train mode is deterministic without dropout ...
    model = make(name, drop_rate=0.2, num_classes=7).train()
    assert not torch.equal(model(x), model(x))  # ... so dropout is what makes these differ
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_bad_arguments_are_value_errors(name):
    with pytest.raises(ValueError, match="num_classes=-1"):
        create_model(name, num_classes=-1)
    with pytest.raises(ValueError, match="in_chans=0"):
        create_model(name, in_chans=0)
    with pytest.raises(ValueError, match="not_an_argument"):
        create_model(name, not_an_argument=1)
    with pytest.raises(ValueError, match=r"out_indices=\(9,\): 9 is out of range; out_indices must be"):
        create_model(name, features_only=True, out_indices=(9,))
    with pytest.raises(ValueError, match=r"out_indices=3 must be a non-empty sequence of ints, each indexing one of"):
        create_model(name, features_only=True, out_indices=3)
    with pytest.raises(ValueError, match=r"out_indices='13' must be a non-empty sequence of ints"):
        create_model(name, features_only=True, out_indices="13")
    with pytest.raises(ValueError, match=r"out_indices=\(\) must be a non-empty sequence"):
        create_model(name, features_only=True, out_indices=())
    with pytest.raises(ValueError, match=r"out_indices=\(0, 1.5\): 1.5 is out of range"):
        create_model(name, features_only=True, out_indices=(0, 1.5))
    with pytest.raises(ValueError, match="features_only='no' must be True or False"):
        create_model(name, features_only="no")


@pytest.mark.parametrize("name", MODELS)
def test_wrong_input_channels_named(name):
    """The error names the model called, not the stem's inner Conv2d."""
    model = make(name)
    cls = type(model).__name__
    with pytest.raises(ValueError, match=rf"^{cls}: expected 3 input channels, got 1"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match=rf"^{cls}: expected 3 input channels, got 1"):
        model.forward_features(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match=rf"^{cls}: input must be 4-D"):
        model(torch.randn(3, 64, 64))


def test_width_mult_validated():
    with pytest.raises(ValueError, match="width_mult=0"):
        create_model("mobilenet_v2", width_mult=0)
    with pytest.raises(ValueError, match="conv='depthwise'"):
        create_model("mobilenet_v1", conv="depthwise")
    with pytest.raises(ValueError, match="rounding='keras'"):
        create_model("mobilenet_v3_large", rounding="keras")


@pytest.mark.parametrize("name, narrowest", [("mobilenet_v1", 32), ("mobilenet_v2", 16), ("mobilenet_v3_large", 16),
                                             ("mobilenet_v3_small", 16)])
def test_width_mult_too_small_is_refused(name, narrowest):
    with pytest.raises(ValueError, match=rf"width_mult=0.01 must be at least 1/{narrowest}"):
        create_model(name, width_mult=0.01)
    create_model(name, width_mult=1 / narrowest)  # the narrowest layer keeps exactly one channel


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_minimalistic_must_be_a_bool(value):
    with pytest.raises(ValueError, match=rf"minimalistic={value!r} must be True or False"):
        create_model("mobilenet_v3_small", minimalistic=value)


# --- The classification baselines: variants and auxiliary classifiers -------------------------------------

VARIANT_FAMILIES = ("alexnet", "googlenet", "inception_v3", "resnet18", "resnet50", "resnet152")
# (model, the input its auxiliary heads need: GoogLeNet's paper pool reads (4a)'s 14x14 map, Inception v3's
# 5x5 conv the 17x17 one, number of auxiliary heads, their loss weight)
AUX = [("googlenet", "paper", 224, 2, 0.3), ("googlenet", "torchvision", 64, 2, 0.3),
       ("inception_v3", "paper", 299, 1, 0.4), ("inception_v3", "torchvision", 299, 1, 0.4)]


@pytest.mark.parametrize("name", VARIANT_FAMILIES)
def test_unknown_variant_is_named(name):
    with pytest.raises(ValueError, match=r"^variant='bogus' must be one of 'paper', 'torchvision'$") as err:
        create_model(name, variant="bogus")
    assert err.value.argument == "variant"
    with pytest.raises(ValueError, match=r"^variant='bogus'"):
        create_model(name, variant="bogus", features_only=True)


def test_unknown_variant_on_the_command_line_is_one_line_and_exit_2(capsys):
    from support.cli import run_cli

    code, out, err = run_cli(capsys, "models", "googlenet:variant=bogus")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "variant='bogus' must be one of 'paper', 'torchvision'" in err


@pytest.mark.parametrize("name, variant, size, heads, weight", AUX, ids=[f"{a[0]}-{a[1]}" for a in AUX])
def test_auxiliary_logits_come_only_from_forward_aux(name, variant, size, heads, weight):
    torch.manual_seed(0)
    model = create_model(name, variant=variant, aux_logits=True, num_classes=5, width_mult=0.25)
    x = torch.randn(2, 3, size, size)
    assert model.aux_weights == (weight,) * heads
    # forward returns the main logits, a tensor, in training as in eval mode: no flag changes its type
    assert isinstance(model.train()(x), torch.Tensor)
    outputs = model.forward_aux(x)
    assert isinstance(outputs, tuple) and len(outputs) == 1 + heads
    assert all(o.shape == (2, 5) for o in outputs)
    # the auxiliary loss reaches every parameter, the heads' included; the main loss alone does not reach them
    loss = F.cross_entropy(outputs[0], torch.tensor([0, 1]))
    loss = loss + sum(w * F.cross_entropy(a, torch.tensor([0, 1])) for w, a in zip(model.aux_weights, outputs[1:]))
    loss.backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    model.eval()
    with torch.no_grad():
        main, *aux = model.forward_aux(x)
        assert torch.equal(main, model(x))
        assert all(torch.isfinite(a).all() for a in aux)


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_auxiliary_heads_are_built_only_when_asked(name):
    plain = make(name)
    assert plain.aux_logits is False and plain.aux_weights == ()
    assert not [n for n, _ in plain.named_children() if n.startswith("aux")]
    with pytest.raises(ValueError, match="has no auxiliary classifier.*aux_logits=True"):
        plain.forward_aux(torch.randn(1, 3, 75, 75))
    with pytest.raises(ValueError, match="aux_logits=True needs num_classes > 0"):
        create_model(name, aux_logits=True, num_classes=0)
    with pytest.raises(ValueError, match="aux_logits='yes' must be True or False"):
        create_model(name, aux_logits="yes")
    backbone = make(name, features_only=True, aux_logits=True)  # a head argument: the backbone has no heads
    assert [n for n, _ in backbone.named_children()] == ["stem", "blocks"]


def test_googlenet_block_3a_is_the_inception_module_of_the_literature():
    """Table 1's (3a), 28x28x192 -> 28x28x256, is sepconv.layers.InceptionModule, in both variants."""
    from sepconv.layers import InceptionModule

    for variant in ("paper", "torchvision"):
        model = create_model("googlenet", variant=variant).eval()
        block = model.blocks[3]
        assert isinstance(block, InceptionModule)
        assert (block.in_channels, block.out_channels) == (192, 256)
        with torch.no_grad():
            maps = model.blocks[:3](model.stem(torch.randn(1, 3, 224, 224)))
            assert tuple(maps.shape) == (1, 192, 28, 28) and tuple(block(maps).shape) == (1, 256, 28, 28)
