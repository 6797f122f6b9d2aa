"""Parity of sepconv's Keras weight import at Keras' own input sizes, every covered width.

Builds each ``keras.applications`` model with random weights and BatchNorm statistics (as
tests/weights/test_from_keras.py does, at the smaller sizes), saves it with ``save_weights``,
imports the ``.weights.h5`` file with ``sepconv.weights.create_with_weights`` and prints
max |difference| of the logits against 1e-4 * max(1, max |logit|). Not part of the test suite.

    KERAS_BACKEND=torch .venv/bin/python benchmarks/verify_weights_keras.py
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
# (Keras application, its arguments, input size, sepconv model, sepconv arguments)
CASES = [
    *[("MobileNet", {"alpha": a}, 224, "mobilenet_v1", {"width_mult": a}) for a in (0.25, 0.5, 0.75, 1.0)],
    *[("MobileNetV2", {"alpha": a}, 224, "mobilenet_v2", {"width_mult": a}) for a in (0.35, 1.0, 1.4)],
    *[(f"MobileNetV3{v}", {"alpha": a}, 224, f"mobilenet_v3_{v.lower()}", {"width_mult": a})
      for v in ("Large", "Small") for a in (0.75, 1.0)],
    ("Xception", {}, 299, "xception", {}),
]


def helpers():
    """The model builder and comparison of the Keras tests (one definition of the randomisation)."""
    sys.path.insert(0, str(ROOT / "tests"))  # where the tests' own imports (support.*) resolve
    spec = importlib.util.spec_from_file_location("test_from_keras", ROOT / "tests/weights/test_from_keras.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    import keras

    from sepconv.weights import create_with_weights

    t = helpers()
    failures = 0
    print(f"{'keras model':<18} {'args':<16} {'input':>5} {'max|logit|':>10} {'max|diff|':>10} {'tolerance':>10}  ok")
    with tempfile.TemporaryDirectory() as tmp:
        for application, kwargs, size, name, ours in CASES:
            model = t.build(keras, application, kwargs, size, classes=1000)
            path = Path(tmp) / "w.weights.h5"
            model.save_weights(str(path))
            x = t.pixels(size)
            reference = t.keras_logits(keras, model, application, x)
            logits = t.sepconv_logits(create_with_weights(name, path, "keras", **ours), x)
            diff, scale = float(np.abs(logits - reference).max()), float(np.abs(reference).max())
            tolerance = 1e-4 * max(1.0, scale)
            failures += diff > tolerance
            args = ",".join(f"{k}={v}" for k, v in kwargs.items())
            ok = "yes" if diff <= tolerance else "NO"
            print(f"{application:<18} {args:<16} {size:>5} {scale:>10.4f} {diff:>10.2e} {tolerance:>10.1e}  {ok}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
