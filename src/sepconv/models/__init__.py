"""The model zoo: one module per family, one registry.

Each family module registers its builders with :func:`register_model` when it is imported; this
package imports every family after the registry, so the registry never imports a family (a new
family is a module here and one name in the import below).
"""

from . import (  # registers every family
    alexnet,
    googlenet,
    inception_v3,
    mobilefacenet,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    resnet,
    superres,
    vgg,
    xception,
)
from .provenance import Provenance
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

__all__ = ["ModelEntry", "PaperFigures", "Provenance", "create_model", "list_models", "model_entry", "paper_figures",
           "parse_spec", "register_model", "alexnet", "googlenet", "inception_v3", "mobilefacenet", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3", "resnet", "superres", "vgg",
           "xception"]
