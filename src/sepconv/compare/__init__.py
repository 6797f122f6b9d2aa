"""One layer in every separable form, side by side (``sepconv compare``): exact cost and measured
time (:mod:`.layer`), and sweeps of one argument with a chart (:mod:`.sweep`)."""

from .layer import CompareConfig, CompareResult, FormResult, compare_layer

__all__ = ["CompareConfig", "CompareResult", "FormResult", "compare_layer"]
