"""Chat-model backends, every one a langchain-core ``BaseChatModel``.

Agents never know which backend they talk to; a model URI picks one (``from_uri``).
"""

from stepwise.llm.hf import HFChatModel
from stepwise.llm.openai_compat import OpenAICompatChatModel
from stepwise.llm.replay import RecordingChatModel, ReplayChatModel, record
from stepwise.llm.sim import SIM_MODELS, register_sim
from stepwise.llm.uri import from_uri

__all__ = [
    "SIM_MODELS",
    "HFChatModel",
    "OpenAICompatChatModel",
    "RecordingChatModel",
    "ReplayChatModel",
    "from_uri",
    "record",
    "register_sim",
]
