"""Keras import: keras.applications models (weights=None, BatchNorm statistics randomised), saved
with Keras' own writers, imported, and compared on the same input (Keras 3, torch backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import sepconv.weights as W
from sepconv.models import create_model

# (Keras application, its arguments, input size, sepconv model, sepconv arguments)
CASES = [
    ("MobileNet", {"alpha": 0.25}, 64, "mobilenet_v1", {"width_mult": 0.25}),
    ("MobileNet", {"alpha": 0.5}, 64, "mobilenet_v1", {"width_mult": 0.5}),
    ("MobileNet", {"alpha": 0.75}, 64, "mobilenet_v1", {"width_mult": 0.75}),
    ("MobileNet", {"alpha": 1.0}, 64, "mobilenet_v1", {"width_mult": 1.0}),
    ("MobileNetV2", {"alpha": 0.35}, 64, "mobilenet_v2", {"width_mult": 0.35}),
    ("MobileNetV2", {"alpha": 1.0}, 64, "mobilenet_v2", {}),
    ("MobileNetV2", {"alpha": 1.4}, 64, "mobilenet_v2", {"width_mult": 1.4}),
    ("MobileNetV3Large", {}, 64, "mobilenet_v3_large", {}),
    ("MobileNetV3Large", {"alpha": 0.75}, 64, "mobilenet_v3_large", {"width_mult": 0.75}),
    ("MobileNetV3Small", {}, 64, "mobilenet_v3_small", {}),
    ("MobileNetV3Small", {"alpha": 0.75}, 64, "mobilenet_v3_small", {"width_mult": 0.75}),
    ("Xception", {}, 71, "xception", {}),
]


def randomize(keras, model, seed: int = 0) -> None:
    """Kernels of variance 1 / fan_in (so that the signal, not the BatchNorm offsets, dominates: padding and eps
    then matter), biases, and BatchNorm statistics far from their defaults."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.uniform(-0.2, 0.2, n),
                               rng.uniform(-0.2, 0.2, n), rng.uniform(0.5, 1.5, n)])
            continue
        for w in layer.weights:
            shape = tuple(w.shape)
            if len(shape) == 1:
                w.assign(rng.uniform(-0.2, 0.2, shape).astype("float32"))
                continue
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D) or w.path.endswith("/depthwise_kernel")
            fan_in = int(np.prod(shape[:-2] if depthwise else shape[:-1]))
            w.assign((rng.uniform(-1, 1, shape) * np.sqrt(3 / fan_in)).astype("float32"))


def build(keras, application: str, kwargs: dict, size: int, classes: int = 10):
    model = getattr(keras.applications, application)(
        weights=None, input_shape=(size, size, 3), classes=classes, classifier_activation=None, **kwargs)
    randomize(keras, model)
    return model


def pixels(size: int) -> np.ndarray:
    """A (2, size, size, 3) batch of pixels in [0, 255]."""
    return np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype(np.float32)


def keras_logits(keras, model, application: str, x: np.ndarray) -> np.ndarray:
    # MobileNetV3 rescales inside (include_preprocessing); the others take preprocess_input's x/127.5 - 1.
    x_in = x if application.startswith("MobileNetV3") else x / 127.5 - 1
    return keras.ops.convert_to_numpy(model(x_in, training=False))


def sepconv_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x / 127.5 - 1).permute(0, 3, 1, 2)).numpy()


def assert_parity(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    """Per case: (.weights.h5 path, pixels, Keras logits), each model built once."""
    out = {}
    directory = tmp_path_factory.mktemp("keras")
    for application, kwargs, size, _, _ in CASES:
        model = build(keras, application, kwargs, size)
        path = directory / f"{application}_{kwargs.get('alpha', 1.0)}.weights.h5"
        model.save_weights(str(path))
        x = pixels(size)
        out[application, kwargs.get("alpha")] = (path, x, keras_logits(keras, model, application, x))
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1].get('alpha', 1.0)}" for c in CASES])
def test_keras_logits_equal_sepconv(saved, case) -> None:
    application, kwargs, _, name, ours = case
    path, x, reference = saved[application, kwargs.get("alpha")]
    model = W.create_with_weights(name, path, "keras", **ours)
    assert_parity(sepconv_logits(model, x), reference)


def test_source_names_work_too(saved) -> None:
    path, x, reference = saved["MobileNetV2", 1.0]
    assert_parity(sepconv_logits(W.create_with_weights("MobileNetV2", path, "keras"), x), reference)


@pytest.mark.parametrize("change", [{"padding": "same"}, {"bn_eps": 1e-5}])
def test_wrong_settings_are_refused_and_do_change_the_logits(saved, change: dict) -> None:
    """Symmetric padding or eps 1e-5 give other numbers: load() refuses such a model when strict,
    and the parity check sees the difference (so it would catch a loader that ignored them)."""
    path, x, reference = saved["MobileNetV2", 1.0]
    plain = create_model("mobilenet_v2", **{**W.resolve("keras", "mobilenet_v2")[1], "num_classes": 10, **change})
    with pytest.raises(ValueError, match=r"computes differently .*\(needs (padding='tf_same'|bn_eps=0.001)\)"):
        W.load(plain, "keras", path)
    W.load(plain, "keras", path, strict=False)
    assert np.abs(sepconv_logits(plain, x) - reference).max() > 10 * 1e-4 * max(1.0, np.abs(reference).max())


@pytest.fixture(scope="module")
def small(keras):
    """MobileNet alpha 0.25 at 64 px with 7 classes: the model for the file-format tests."""
    model = build(keras, "MobileNet", {"alpha": 0.25}, 64, classes=7)
    x = pixels(64)
    return model, x, keras_logits(keras, model, "MobileNet", x)


def write_tf_keras_h5(model, path: Path) -> None:
    """The Keras 2 / tf.keras layout of the ImageNet files keras.applications downloads:
    ``layer_names``/``weight_names`` attributes, ``:0`` suffixes, ``depthwise_kernel``."""
    import h5py

    with h5py.File(path, "w") as f:
        names = [layer.name for layer in model.layers]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for layer in model.layers:
            group = f.create_group(layer.name)
            weight_names = []
            for w in layer.weights:
                var = w.path.split("/")[-1]
                if type(layer).__name__ == "DepthwiseConv2D":
                    var = "depthwise_kernel"
                weight_names.append(f"{layer.name}/{var}:0")
                group.create_dataset(weight_names[-1], data=np.asarray(w.numpy()))
            group.attrs["weight_names"] = [n.encode() for n in weight_names]


@pytest.mark.parametrize("form", ["weights.h5", "keras", "legacy.h5", "tf_keras.h5", "mapping", "model"])
def test_every_keras_form_gives_the_same_model(small, tmp_path: Path, form: str) -> None:
    model, x, reference = small
    target: object = tmp_path / f"m.{form}"
    if form == "weights.h5":
        model.save_weights(str(target))
    elif form == "keras":
        model.save(str(target))
    elif form == "legacy.h5":
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(target, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)
    elif form == "tf_keras.h5":
        write_tf_keras_h5(model, target)
    elif form == "mapping":
        target = {w.path: w.numpy() for w in model.weights}
    else:
        target = model
    ours = W.create_with_weights("MobileNet", target, "keras", width_mult=0.25)
    assert ours.classifier.out_features == 7  # num_classes read from the file
    assert_parity(sepconv_logits(ours, x), reference)


def test_headless_file_gives_a_headless_model(keras, tmp_path: Path) -> None:
    model = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3), alpha=0.35)
    randomize(keras, model)
    path = tmp_path / "notop.weights.h5"
    model.save_weights(str(path))
    x = pixels(64)
    reference = keras.ops.convert_to_numpy(model(x / 127.5 - 1, training=False)).mean(axis=(1, 2))
    ours = W.create_with_weights("mobilenet_v2", path, "keras", width_mult=0.35)
    assert_parity(sepconv_logits(ours, x), reference)  # num_classes=0: pooled features out


def test_a_keras_file_for_another_model_or_width_is_refused(saved) -> None:
    path, _, _ = saved["MobileNet", 0.25]
    with pytest.raises(ValueError, match=r"260 missing: Conv1/kernel.*137 unexpected: conv1_bn/gamma.*another model"):
        W.create_with_weights("mobilenet_v2", path, "keras")
    model = create_model("mobilenet_v1", **W.resolve("keras", "mobilenet_v1")[1], width_mult=0.5, num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    misfit = r"mis-shaped: conv1/kernel \(3, 3, 3, 8\) \(for stem.conv.weight \(16, 3, 3, 3\)\)"
    with pytest.raises(ValueError, match=misfit):
        W.load(model, "keras", path)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
