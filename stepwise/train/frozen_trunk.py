"""The frozen lower layers computed once per batch instead of once per pass.

With ``top_layers`` only the top N decoder layers learn. Every layer below sees the same
input on every pass over a pair (the reference's precomputed pass, each epoch, each
evaluation) and gives the same output, and on a CPU that forward is most of a step's time.
``FrozenTrunk`` stands in for those layers as one module that keeps their output per batch,
keyed by a digest of what reaches them (embeddings, mask, positions): a batch seen before
skips them. Exact: a hit returns the tensor the first pass computed. It pays where the same
batches come back, as when a CPU takes its pairs one at a time for several passes.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

CACHE_BYTES = 4 * 2**30  # a 135M model's 630-token pair keeps 2.9 MB: ~1,400 pairs


def _digest(*tensors: torch.Tensor | None) -> bytes:
    """What identifies a batch's input to the trunk, shapes and dtypes included."""
    digest = hashlib.blake2b(digest_size=16)
    for tensor in tensors:
        if tensor is None:
            digest.update(b"-")
            continue
        digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().contiguous().cpu().view(torch.uint8).numpy())
    return digest.digest()


class FrozenTrunk(nn.Module):
    """Frozen decoder layers whose output is kept per batch (see the module's docstring)."""

    def __init__(self, layers: list[nn.Module], limit_bytes: int = CACHE_BYTES) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.limit_bytes = limit_bytes
        self._kept: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._kept_bytes = 0
        self.hits = self.misses = 0

    def forward(self, hidden_states: torch.Tensor, attention_mask: Any = None,
                position_ids: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        if kwargs.get("use_cache") or kwargs.get("cache") is not None:
            return self._run(hidden_states, attention_mask, position_ids, kwargs)  # generating
        mask = attention_mask if isinstance(attention_mask, torch.Tensor) else None
        key = _digest(hidden_states, mask, position_ids)
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            self.hits += 1
            return kept
        self.misses += 1
        with torch.no_grad():
            out = self._run(hidden_states, attention_mask, position_ids, kwargs)
        self._keep(key, out)
        return out

    def _run(self, hidden_states: torch.Tensor, attention_mask: Any,
             position_ids: torch.Tensor | None, kwargs: dict[str, Any]) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask=attention_mask,
                                  position_ids=position_ids, **kwargs)
        return hidden_states

    def _keep(self, key: bytes, out: torch.Tensor) -> None:
        if out.nbytes > self.limit_bytes:
            return
        self._kept[key] = out
        self._kept_bytes += out.nbytes
        while self._kept_bytes > self.limit_bytes:
            _, dropped = self._kept.popitem(last=False)
            self._kept_bytes -= dropped.nbytes


def install(model: Any, first: int) -> FrozenTrunk:
    """Put the decoder layers below ``first`` behind one ``FrozenTrunk``; ``remove`` undoes
    it (before saving: the trunk renames the layers' weights)."""
    decoder = model.get_decoder()
    layers = list(decoder.layers)
    if any(p.requires_grad for layer in layers[:first] for p in layer.parameters()):
        raise ValueError("the layers below the trained ones must be frozen first")
    trunk = FrozenTrunk(layers[:first])
    decoder.layers = nn.ModuleList([trunk, *layers[first:]])
    return trunk


def remove(model: Any) -> None:
    """The decoder's own layers back in place of its ``FrozenTrunk``, if it has one."""
    decoder = model.get_decoder()
    if decoder.layers and isinstance(decoder.layers[0], FrozenTrunk):
        decoder.layers = nn.ModuleList([*decoder.layers[0].layers, *decoder.layers[1:]])
