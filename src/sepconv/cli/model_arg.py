"""The MODEL argument the commands share (``profile``, ``separate``, ``export``, ``bench``): a
model reference with ``--weights`` and ``--weights-source``, resolved by
:func:`sepconv.resolve.resolve_model` and nothing else.

Example::

    >>> p = argparse.ArgumentParser()
    >>> add_model_arguments(p)
    >>> resolve_args(p.parse_args(["mobilefacenet:img_size=96"])).input_shape
    (1, 3, 96, 96)
"""

from __future__ import annotations

import argparse

from .. import resolve
from ..resolve import Resolved
from ..weights import SOURCES

__all__ = ["MODEL_HELP", "add_model_arguments", "resolve_args"]

MODEL_HELP = ("a registry name with optional arguments ('mobilenet_v1:width_mult=0.5,num_classes=10'), a sepconv "
              "checkpoint (runs/x/model.safetensors; a separated one too), a run directory of sepconv train, or "
              "package.module:callable")


def add_model_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """Add MODEL (optional when ``default`` is given), ``--weights`` and ``--weights-source``."""
    if default is None:
        parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    else:
        parser.add_argument("model", metavar="MODEL", nargs="?", default=default,
                            help=f"{MODEL_HELP} (default {default})")
    parser.add_argument("--weights", metavar="FILE", default=None,
                        help="weights for the registered model MODEL names: a sepconv .safetensors checkpoint, or "
                             "with --weights-source a torchvision, timm or Keras file")
    parser.add_argument("--weights-source", choices=tuple(SOURCES), default=None, metavar="SOURCE",
                        help=f"where --weights comes from: {', '.join(SOURCES)} (default: a sepconv checkpoint)")


def resolve_args(args: argparse.Namespace) -> Resolved:
    """The model, description and input shape that ``args.model``, ``--weights`` and ``--weights-source`` name."""
    return resolve.resolve_model(args.model, weights=args.weights, weights_source=args.weights_source)
