"""Agent memory (installed as ``stepwise.memory``): pages, summaries, entities, memory streams."""

from __future__ import annotations

from stepwise.lazy_exports import lazy_exports

_HOMES = {  # name -> the module that defines it
    "Memory": "stepwise.memory.stream",
    "MemoryStream": "stepwise.memory.stream",
    "RetrievedMemory": "stepwise.memory.stream",
    "RetrievalPreset": "stepwise.memory.retrieval",
    "EmbeddingModelError": "stepwise.memory.embeddings",
    "SentenceTransformerEmbeddings": "stepwise.memory.embeddings",
    "default_embeddings": "stepwise.memory.embeddings",
    "local_embeddings": "stepwise.memory.embeddings",
    "MemoryStore": "stepwise.memory.store",
    "MemoryStoreError": "stepwise.memory.store",
    "EntityRecord": "stepwise.memory.translation",
    "EntityUpdate": "stepwise.memory.translation",
    "PageRecord": "stepwise.memory.translation",
    "TranslationMemory": "stepwise.memory.translation",
    "TranslationMemoryError": "stepwise.memory.translation",
}
__all__ = [
    "EmbeddingModelError",
    "EntityRecord",
    "EntityUpdate",
    "Memory",
    "MemoryStore",
    "MemoryStoreError",
    "MemoryStream",
    "PageRecord",
    "RetrievalPreset",
    "RetrievedMemory",
    "SentenceTransformerEmbeddings",
    "TranslationMemory",
    "TranslationMemoryError",
    "default_embeddings",
    "local_embeddings",
]


# Lazy, so that importing the package stays cheap: numpy and the embedding model load
# only when a name that needs them is used.
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
