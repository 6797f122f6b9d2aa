"""The model zoo: one module per family, one registry."""

from .registry import (
    ModelEntry,
    PaperFigures,
    create_model,
    list_models,
    model_entry,
    paper_figures,
    parse_spec,
    register_model,
)

__all__ = ["ModelEntry", "PaperFigures", "create_model", "list_models", "model_entry", "paper_figures", "parse_spec",
           "register_model"]
