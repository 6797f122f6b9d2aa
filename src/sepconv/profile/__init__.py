"""Measurement: FLOPs against real time, per layer, on this machine (``sepconv profile``).

:func:`profile_model` measures; :func:`~sepconv.profile.report.to_dict` gives the JSON document
that the tables, charts and HTML page render. See each module for its part:
:mod:`~sepconv.machine` (roofline ceilings), :mod:`~sepconv.profile.layers` (per-layer
time), :mod:`~sepconv.profile.backends` (which backends the whole model is timed on, by
:mod:`sepconv.engines.runner`); with ``train=True``, :mod:`~sepconv.profile.training` (each
layer's forward and backward, a conv's backward split in its two passes) and
:mod:`~sepconv.profile.step` (the whole training step per backend and precision), reported by
:mod:`~sepconv.profile.training_report`; several models side by side: :mod:`~sepconv.profile.summary`.

Example::

    >>> from sepconv.models import create_model
    >>> doc = to_dict(profile_model(create_model("mobilenet_v2"), (1, 3, 224, 224)))
    >>> [row["kind"] for row in doc["by_kind"]][:3]
    ['standard', 'norm', 'activation']
"""

from ..engines.runner import BackendResult, time_backends
from ..machine import Machine, machine_profile, measure_machine
from .backends import BACKENDS, parse_backends
from .layers import LayerProfile, LayerTiming, time_layers
from .profiler import Profile, TrainingProfile, profile_model
from .report import SCHEMA_VERSION, to_dict
from .step import StepResult, time_steps
from .summary import summary_dict
from .training import LayerTraining, TrainingLayers, time_training_layers

__all__ = [
    "BACKENDS",
    "SCHEMA_VERSION",
    "BackendResult",
    "LayerProfile",
    "LayerTiming",
    "LayerTraining",
    "Machine",
    "Profile",
    "StepResult",
    "TrainingLayers",
    "TrainingProfile",
    "machine_profile",
    "measure_machine",
    "parse_backends",
    "profile_model",
    "summary_dict",
    "time_backends",
    "time_layers",
    "time_steps",
    "time_training_layers",
    "to_dict",
]
