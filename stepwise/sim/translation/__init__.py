"""A simulated translation world: documents in the synthetic language ``qsy``, with names,
references and phrases that only memory of earlier pages resolves, ``sim:translator``, and
the world's oracle (exact best module sets per page).

Importing this package registers the ``sim:translator`` chat model. Everything it scores
is a simulation, never translation quality.
"""

from stepwise.sim.translation import translator  # noqa: F401  (registers sim:translator)
from stepwise.sim.translation.language import LANGUAGE, decode, encode, marker_modules
from stepwise.sim.translation.oracle import WorldOracle, sentence_references
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
    "WorldOracle",
    "decode",
    "encode",
    "english_text",
    "make_document",
    "make_documents",
    "marker_modules",
    "reveal",
    "sentence_references",
    "write_dataset",
]
