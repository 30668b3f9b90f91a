"""Model URIs: the one string that names a chat model on the command line and in scenarios.

``sim:<world>``, ``replay:<cassette>``, ``openai:<base_url>`` (with ``model_name=``),
``hf:<local path>`` or ``hf:<name>`` (a real model fetched on first use, e.g. ``hf:smollm2``),
``tiny`` (or ``tiny:<seed>``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from stepwise.errors import ModelURIError

SCHEMES = ("sim:<world>", "replay:<cassette>", "openai:<base_url>", "hf:<path>",
           "hf:smollm2", "tiny")


def tiny_seed(uri: str) -> int | None:
    """The seed a ``tiny`` or ``tiny:<seed>`` URI names (0 when it names none); None for a
    URI of another scheme. The one reading of tiny URIs, for the backends and training."""
    scheme, _, rest = uri.partition(":")
    if scheme != "tiny":
        return None
    try:
        return int(rest or 0)
    except ValueError:
        raise ModelURIError(f"tiny:{rest}: the tiny model takes an integer seed (tiny:0)") \
            from None


def from_uri(uri: str, **kwargs: Any) -> BaseChatModel:
    """Build the chat model a URI names; extra keyword arguments go to its constructor."""
    scheme, _, rest = uri.partition(":")
    if (seed := tiny_seed(uri)) is not None:
        from stepwise.llm.hf import HFChatModel
        from stepwise.llm.tiny import tiny_model_path

        kwargs.setdefault("model_label", uri)
        return HFChatModel(model_path=str(tiny_model_path(seed)), **kwargs)
    if not rest:
        raise ModelURIError(f"model URI {uri!r} is incomplete; expected one of {', '.join(SCHEMES)}")
    if scheme == "sim":
        from stepwise.llm.sim import sim_model, sim_names

        factory = sim_model(rest)
        if factory is None:
            known = ", ".join(f"sim:{name}" for name in sim_names())
            stale = "" if len(sim_names()) > 1 else (
                "; the bundled worlds are missing: reinstall stepwise (pip install -e .)")
            raise ModelURIError(f"unknown simulated world {rest!r} (known: {known}){stale}")
        return factory(**kwargs)
    if scheme == "replay":
        from stepwise.llm.cassette import Cassette
        from stepwise.llm.replay import ReplayChatModel

        Cassette.load(rest)  # fail now, with the reason, rather than on the first call
        return ReplayChatModel(cassette=rest, **kwargs)
    if scheme == "openai":
        from stepwise.llm.openai_compat import OpenAICompatChatModel

        name = kwargs.pop("model_name", None) or kwargs.pop("model", None)
        if not name:
            raise ModelURIError(f"{uri}: an OpenAI-compatible server needs a model name "
                                "(--model-name on the command line, model_name= in Python)")
        if not rest.startswith(("http://", "https://")):
            raise ModelURIError(f"{uri}: the base URL must start with http:// or https://")
        return OpenAICompatChatModel(base_url=rest, model=name, **kwargs)
    if scheme == "hf":
        from stepwise.llm.hf import HFChatModel, check_model_dir

        path = check_model_dir(rest)  # fail now, with the reason, rather than on the first call
        kwargs.setdefault("model_label", uri)
        return HFChatModel(model_path=str(path), **kwargs)
    raise ModelURIError(f"unknown model URI scheme {scheme!r} in {uri!r}; "
                        f"expected one of {', '.join(SCHEMES)}")
