"""The model zoo: one module per family, one registry."""

from .registry import ModelEntry, create_model, list_models, model_entry, parse_spec, register_model

__all__ = ["ModelEntry", "create_model", "list_models", "model_entry", "parse_spec", "register_model"]
