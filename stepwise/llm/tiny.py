"""A tiny random Qwen2-style model and a tokenizer trained here: the ``tiny`` model URI.

Nothing is downloaded: the tokenizer is a byte-level BPE trained with the ``tokenizers``
library on a small built-in corpus, the model is a two-layer Qwen2 with random weights,
and the chat template is Qwen-style with Hermes ``<tool_call>`` blocks. Its answers are
noise; it exists so that the real Hugging Face code paths (chat template, tool schemas,
batched generation, saving and loading) run in tests and demos.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_VERSION = 3  # bump when the recipe changes, so cached copies are rebuilt

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
                "<think>", "</think>"]

CHAT_TEMPLATE = """\
{%- set offset = 0 -%}
{%- if tools -%}
<|im_start|>system
{% if messages and messages[0].role == 'system' %}{{ messages[0].content }}

{% set offset = 1 %}{% endif -%}
# Tools

You may call one or more functions. Their signatures are inside <tools></tools>:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>

To call a function, answer with <tool_call>{"name": <name>, "arguments": <object>}</tool_call>.<|im_end|>
{% elif messages and messages[0].role == 'system' -%}
<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% set offset = 1 %}{%- endif -%}
{%- for message in messages -%}
{%- if loop.index0 >= offset or message.role != 'system' -%}
{%- if message.role == 'tool' -%}
<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% elif message.role == 'assistant' -%}
<|im_start|>assistant
{% if message.content %}{{ message.content }}{% endif -%}
{%- for call in message.tool_calls or [] %}
<tool_call>{"name": {{ call.function.name | tojson }}, "arguments": {% if call.function.arguments is string %}{{ call.function.arguments }}{% else %}{{ call.function.arguments | tojson }}{% endif %}}</tool_call>
{%- endfor %}<|im_end|>
{% else -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif -%}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""

CORPUS = """\
The translator reads the page, looks up the names it has seen before, and writes the page again in another language.
A summary of each page keeps the story short; the entity records keep every name translated the same way.
An agent thinks when it needs to: it plans, reflects on what it did, and verifies an answer before it commits.
The search tree grows one step at a time; each node keeps its visits, its wins and its value.
Preference pairs compare two steps taken from the same state: the chosen one and the rejected one.
Thassalin crossed the river at dawn. Nyssi waited by the gate with a lantern and a map of the old roads.
Kayel asked Tenuk whether the tower still stood; Rhetvik answered that nobody had climbed it for years.
What is two plus three? Two plus three is five. Add the numbers, then check the sum.
The weather today is cold and bright; tomorrow it may rain in the hills.
翻译代理逐页阅读文档，查看之前的摘要，查找实体记录，然后翻译并更新记忆。
{"name": "add", "arguments": {"a": 2, "b": 3}} {"name": "lookup_entities", "arguments": {"names": ["Nyssi"]}}
{"name": "view_summaries", "arguments": {"pages": [1, 2]}} {"name": "think", "arguments": {"thought": "check"}}
system user assistant tool function name arguments content role description parameters type object string
integer number array boolean required properties items enum true false null 0 1 2 3 4 5 6 7 8 9 10 100
"""


def default_cache_dir() -> Path:
    root = os.environ.get("STEPWISE_CACHE") or Path.home() / ".cache" / "stepwise"
    return Path(root) / "tiny"


def build_tokenizer(vocab_size: int = 768):
    """A byte-level BPE tokenizer trained on the built-in corpus, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(CORPUS.splitlines() * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_tokens(ADDED_TOKENS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny(path: str | Path, *, seed: int = 0, hidden_size: int = 64, layers: int = 2):
    """Write a tiny random Qwen2 model, its tokenizer and chat template to ``path``."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # as load_hf does: no "Writing model shards" bar
    path = Path(path)
    tokenizer = build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        # a random model has no trained context: room for the longest prompts the demos
        # and evaluations send (an airline task's policy and tools are ~4,000 tokens here)
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[config.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=32,
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_model_path(seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """The cached tiny model for ``seed``, built on first use (atomically: safe under races)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    final = cache / f"v{TINY_VERSION}-seed{seed}"
    if (final / "config.json").exists():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=cache))
    try:
        build_tiny(staging, seed=seed)
        try:
            staging.rename(final)
        except OSError:  # another process finished first
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
