"""The one-way order of sepconv's packages, declared once.

A package may import only the packages before it in :data:`ORDER` (and itself). The root
package ``sepconv`` (the public façade), ``sepconv.__main__`` and this module stand outside the
order. ``tests/test_layering.py`` walks every module's syntax tree — function-level imports and
``"sepconv...."`` strings given to :func:`importlib.import_module` included — and fails on any
import of a package to the importer's right. DESIGN.md mirrors this list.

Where things go: a new engine is a runner in :mod:`sepconv.engines`; a new model family is a
module in :mod:`sepconv.models` that registers itself; a new command is a module in
:mod:`sepconv.cli` listed in ``sepconv.cli.COMMANDS``; a new file format is a module in
:mod:`sepconv.formats` with its schema.
"""

ORDER: tuple[str, ...] = (
    "_util",       # checks, atomic io, timing statistics, eval-mode/threads context managers, console, figures
    "layers",      # the operators of the papers, separated-module classes too
    "models",      # registry + one module per family; builds only
    "cost",        # analytic cost model
    "formats",     # sepconv's checkpoint + sidecar schema, separation-plan replay
    "weights",     # import of foreign checkpoints (torchvision, timm, Keras)
    "resolve",     # a model reference -> (model, description, input shape); sepconv.create_model
    "machine",     # the machine's ceilings
    "engines",     # BN folding, ONNX export, ONNX Runtime, quantization, the backend runners
    "data",        # digits, ImageFolder, CIFAR, calibration images
    "train",       # the training loop, its checkpoints, sweeps, health
    "separation",  # closed-form separation, recalibration, distillation
    "deploy",      # optimize: the fastest engine that matches PyTorch
    "profile",     # per-layer time against the roofline
    "compare",     # one layer in every form, sweeps
    "cli",         # argparse front end, one module per command
)

OUTSIDE: frozenset[str] = frozenset({"", "__main__", "_layering"})


def package_of(module: str) -> str:
    """``"sepconv.engines.ort"`` -> ``"engines"``; ``"sepconv"`` -> ``""``."""
    parts = module.split(".")
    if parts[0] != "sepconv":
        raise ValueError(f"module={module!r} is not part of sepconv")
    return parts[1] if len(parts) > 1 else ""


def allowed(importer: str, imported: str) -> bool:
    """Whether module ``importer`` may import module ``imported`` under :data:`ORDER`."""
    src, dst = package_of(importer), package_of(imported)
    if src in OUTSIDE or src == dst:
        return True
    if dst in OUTSIDE:
        return dst == "_layering"
    return ORDER.index(dst) < ORDER.index(src)
