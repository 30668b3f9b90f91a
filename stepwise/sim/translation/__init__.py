"""A simulated translation world: documents in the synthetic language ``qsy``, with names,
references and phrases that only memory of earlier pages resolves, and ``sim:translator``.

Importing this package registers the ``sim:translator`` chat model. Everything it scores
is a simulation, never translation quality.
"""

from stepwise.sim.translation import translator  # noqa: F401  (registers sim:translator)
from stepwise.sim.translation.language import LANGUAGE, decode, encode, oracle_modules
from stepwise.sim.translation.translator import TranslatorSimChatModel
from stepwise.sim.translation.world import (
    WORLD,
    SyntheticDocument,
    Term,
    english_text,
    make_document,
    make_documents,
    reveal,
    write_dataset,
)

__all__ = [
    "LANGUAGE",
    "WORLD",
    "SyntheticDocument",
    "Term",
    "TranslatorSimChatModel",
    "decode",
    "encode",
    "english_text",
    "make_document",
    "make_documents",
    "oracle_modules",
    "reveal",
    "write_dataset",
]
