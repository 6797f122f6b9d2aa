"""Reading foreign checkpoints into ``{name: tensor}``, safely.

PyTorch files (``.pth``, ``.pt``, ``.bin``) are read only with ``torch.load(weights_only=True)``,
which builds tensors and plain containers and refuses any pickle that would import or call
anything else; ``.safetensors`` holds no code at all. Keras files are read with h5py: the Keras 3
``.weights.h5`` layout (``layers/<class>_<n>/vars/<i>``, the layer's name in an attribute), the
Keras 2 / tf.keras ``.h5`` layout (``layer_names`` and ``weight_names`` attributes, as in the
ImageNet files ``keras.applications`` downloads) and the ``.keras`` zip (its ``model.weights.h5``).
Keras names come out as ``"<layer>/<variable>"``, e.g. ``"conv1_bn/moving_mean"``, in model order.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
KERAS_SUFFIXES = (".keras", ".h5")
# Wrappers training scripts put around a state dict (timm's train.py, Lightning, plain dicts).
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "state_dict_ema", "model_ema")
# Variable order of each Keras layer class in a Keras 3 .weights.h5 (which stores only indices).
KERAS_VARIABLES = {
    "conv2d": ("kernel", "bias"),
    "depthwise_conv2d": ("kernel", "bias"),
    "separable_conv2d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "dense": ("kernel", "bias"),
    "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()  # a Keras variable or a TF tensor
    return torch.from_numpy(np.array(value))


def existing(path: str | Path, suffixes: tuple[str, ...], source: str) -> Path:
    path = Path(path)
    if path.suffix not in suffixes:
        raise ValueError(f"source={source!r} reads {', '.join(suffixes)} files; {str(path)!r} is not one "
                         f"(a file for another source?)")
    if not path.is_file():
        raise ValueError(f"{str(path)!r}: no such file")
    return path


def read_torch(path: str | Path, source: str) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pth``/``.pt``/``.bin`` (no code runs) or ``.safetensors`` file."""
    path = existing(path, TORCH_SUFFIXES, source)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types for corrupt files
            raise ValueError(f"{str(path)!r}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))  # torch names what the pickle wants to import
        if found is None:  # not a refused import: a damaged or foreign file
            reason = str(e).split("WeightsUnpickler error:")[-1].strip().split("\n")[0]
            raise ValueError(f"{str(path)!r}: not a readable PyTorch file ({reason})") from None
        raise ValueError(
            f"{str(path)!r}: refused: its pickle would import or call code (it asks for {found.group(1)}), "
            f"and sepconv reads PyTorch files only with torch.load(weights_only=True); save the model's "
            f"state_dict (plain tensors) or convert it to .safetensors"
        ) from None
    except Exception as e:  # a truncated or foreign file: zipfile, EOF and runtime errors alike
        raise ValueError(f"{str(path)!r}: not a readable PyTorch file ({type(e).__name__}: {e})") from None
    return state_dict_in(obj, str(path))


def is_array(value: Any) -> bool:
    """A tensor, a NumPy array or scalar, or anything NumPy can turn into an array by its
    ``__array__`` (a Keras variable, a JAX array): a value of a state dict, not a nested container."""
    return isinstance(value, (torch.Tensor, np.ndarray, np.generic)) or hasattr(value, "__array__")


def state_dict_in(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """The ``{name: tensor}`` in a loaded object or a mapping of names to tensors or arrays,
    unwrapped from a training checkpoint if need be."""
    if isinstance(obj, Mapping) and not all(is_array(v) for v in obj.values()):
        inner = next((obj[k] for k in STATE_DICT_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            raise ValueError(f"{where}: holds no state dict (a mapping of names to tensors or arrays); keys: "
                             f"{', '.join(map(str, list(obj)[:8]))}")
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{where}: holds {type(obj).__name__}, not a state dict of tensors")
    state = {str(k): as_tensor(v) for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def read_keras(path: str | Path) -> dict[str, torch.Tensor]:
    """``{"<layer>/<variable>": tensor}`` from a ``.keras``, ``.weights.h5`` or Keras 2 ``.h5`` file."""
    path = existing(path, KERAS_SUFFIXES, "keras")
    try:
        import h5py
    except ImportError:
        raise ValueError("reading Keras files needs h5py: pip install h5py") from None
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                source: Any = io.BytesIO(z.read("model.weights.h5"))
        else:
            source = str(path)
        with h5py.File(source, "r") as f:
            return keras_h5(f, str(path))
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{str(path)!r}: not a readable Keras weights file ({e})") from None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _natural(key: str) -> tuple[str, int]:
    """``"conv2d_12"`` -> ("conv2d", 12): Keras numbers same-class layers in model order."""
    cls, _, n = key.rpartition("_")
    return (cls, int(n)) if cls and n.isdigit() else (key, -1)


def keras_h5(f: Any, where: str) -> dict[str, torch.Tensor]:
    out: dict[str, Any] = {}
    if "layer_names" in f.attrs or "model_weights" in f:  # Keras 2 / tf.keras layout
        group = f["model_weights"] if "model_weights" in f else f
        for layer in map(_text, group.attrs["layer_names"]):
            for weight in map(_text, group[layer].attrs["weight_names"]):
                out[f"{layer}/{weight.split('/')[-1].split(':')[0]}"] = group[layer][weight][()]
    elif "layers" in f:  # Keras 3 layout
        for key in sorted(f["layers"], key=_natural):
            variables = f["layers"][key].get("vars")
            if variables is None or not len(variables):
                continue
            layer = _text(variables.attrs.get("name", key))
            names = KERAS_VARIABLES.get(_natural(key)[0], ())
            for i in range(len(variables)):
                out[f"{layer}/{names[i] if i < len(names) else i}"] = variables[str(i)][()]
    else:
        raise ValueError(f"{where}: not a Keras weights file (no 'layers' group or 'layer_names' attribute)")
    return keras_names(out)


def keras_names(weights: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Normalise Keras names to ``"<layer>/<variable>"``: drop ``":0"`` and outer model names, and
    call a DepthwiseConv2D's kernel ``kernel`` (Keras 3) rather than ``depthwise_kernel`` (Keras 2)."""
    out = {}
    for name, value in weights.items():
        parts = str(name).split(":")[0].split("/")
        out["/".join(parts[-2:])] = as_tensor(value)
    layers_with_pointwise = {k.rsplit("/", 1)[0] for k in out if k.endswith("/pointwise_kernel")}
    renamed = {}
    for k, v in out.items():
        layer, _, var = k.rpartition("/")
        if var == "depthwise_kernel" and layer not in layers_with_pointwise:
            k = f"{layer}/kernel"
        renamed[k] = v
    return renamed


def keras_mapping(obj: Any) -> dict[str, torch.Tensor]:
    """A Keras model (its ``weights``), or a mapping of Keras names to arrays."""
    if hasattr(obj, "weights") and not isinstance(obj, Mapping):
        return keras_names({w.path: w for w in obj.weights})
    if not isinstance(obj, Mapping):
        raise ValueError(f"path_or_mapping={type(obj).__name__}: expected a file path, a mapping of names "
                         f"to arrays or a Keras model")
    return keras_names(obj)
