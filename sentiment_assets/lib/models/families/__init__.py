"""Model families as one concept: the Family protocol, its registry, the built-in three."""

from sentiment_assets.lib.models.families.base import (
    Family,
    Objective,
    Progress,
    TrainingRows,
    families,
    family,
    family_names,
    register_family,
    unregister_family,
)
from sentiment_assets.lib.models.families.finetuned import FinetunedTransformer
from sentiment_assets.lib.models.families.logreg import EmbeddingLogReg, TfidfLogReg

# Registration order is the default training order.
register_family(TfidfLogReg())
register_family(EmbeddingLogReg())
register_family(FinetunedTransformer())

__all__ = [
    "Family",
    "Objective",
    "Progress",
    "TrainingRows",
    "families",
    "family",
    "family_names",
    "register_family",
    "unregister_family",
]
