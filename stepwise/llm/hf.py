"""A chat model over a local Hugging Face transformers causal LM.

The model's own chat template renders messages and tool schemas; Hermes/Qwen-style
``<tool_call>{json}</tool_call>`` blocks in the output become ``tool_calls`` (broken
ones ``invalid_tool_calls``). ``batch`` runs one padded ``generate`` for all inputs,
``n`` samples come from ``num_return_sequences``, and a ``seed`` makes sampling
repeatable without touching the caller's global RNG state.

A template that renders no tools (plain ChatML, as SmolLM2's) gets the schemas and the
call format in the system prompt and past calls as ``<tool_call>`` text
(``stepwise.llm.tool_prompt``). Every answer keeps its prompt and completion token ids and
the model's log-probability of each completion token in ``response_metadata``
(``prompt_token_ids``, ``completion_token_ids``, ``completion_logprobs``), so a step that
is trained on later need not be tokenised again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from pydantic import ConfigDict, PrivateAttr

from stepwise.errors import ModelBackendError, ModelURIError, StepwiseError
from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.constrained import CALL_CLOSE, CALL_OPEN, call_constraint, forced_tool_name
from stepwise.llm.messages import to_chat_dicts
from stepwise.llm.tool_calls import parse_hermes_tool_calls
from stepwise.llm.tool_prompt import render_chat

# Parameters the chat template sees rather than the sampler.
TEMPLATE_PARAMS = ("tools", "chat_template_kwargs")
DEVICES = "auto, cpu, cuda, cuda:N or mps"
DTYPES = ("auto", "float32", "float16", "bfloat16")


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | None = "auto") -> str:
    """The torch device a local model runs on: ``auto`` is the GPU when there is one (CUDA,
    then Apple's MPS), else the CPU. A device this machine lacks is one clear error here,
    not a traceback from deep inside the first load."""
    import torch

    name = (device or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    kind, colon, index = name.partition(":")
    if name in ("cpu", "mps"):
        if name == "mps" and not _mps_available():
            raise StepwiseError("device mps: this machine has no MPS (Apple GPU) device; "
                                "use --device cpu, or leave --device out for the default")
        return name
    if kind == "cuda" and (not colon or index.isdigit()):
        if not torch.cuda.is_available():
            raise StepwiseError(f"device {device}: no CUDA GPU is available here; use "
                                "--device cpu, or leave --device out for the default")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise StepwiseError(f"device {device}: this machine has {count} CUDA GPU(s), "
                                f"numbered from cuda:0")
        return name
    raise StepwiseError(f"device {device!r} is unknown; expected {DEVICES}")


def resolve_dtype(dtype: str | None, device: str) -> Any:
    """The torch dtype of a model's weights on ``device`` (a resolved one): ``auto`` is
    bfloat16 on a GPU that computes in it (half the memory, the speed of its tensor cores),
    else float32 (a CPU is slow in half precision, and some ops lack it there)."""
    import torch

    name = (dtype or "auto").strip().lower()
    if name not in DTYPES:
        raise StepwiseError(f"dtype {dtype!r} is unknown; expected one of {', '.join(DTYPES)}")
    if name != "auto":
        return getattr(torch, name)
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def check_model_dir(path: str | Path) -> Path:
    """A local model directory with a config and a tokenizer, or a one-line ``ModelURIError``.

    A name such as ``smollm2`` that is not a folder here is a named real model, fetched
    and converted on first use (``stepwise.llm.named_models``).
    """
    from stepwise.llm.named_models import resolve_hf_path

    path = Path(resolve_hf_path(str(path))).expanduser()
    if not path.is_dir():
        raise ModelURIError(f"hf:{path}: no such model directory")
    if not (path / "config.json").exists():
        raise ModelURIError(f"hf:{path}: no config.json in that directory")
    if not any((path / name).exists() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise ModelURIError(f"hf:{path}: no tokenizer there (tokenizer.json or tokenizer_config.json)")
    return path


def load_hf(path: str | Path, device: str = "auto", dtype: str = "auto"):
    """Load model and tokenizer from a local directory onto ``device`` in ``dtype`` (both
    as ``resolve_device`` and ``resolve_dtype`` read them), with a clear error for what's
    missing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    path = check_model_dir(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.chat_template is None:
        raise ModelURIError(f"hf:{path}: the tokenizer has no chat template")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    model.to(device)
    model.eval()
    return model, tokenizer


def context_length(model: Any, tokenizer: Any) -> int | None:
    """The longest sequence the model was built for: its position embeddings, else the
    tokenizer's limit when it names a real one (an unset limit is a huge number)."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        return positions
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**9 else None


def _token_logprobs(logits: Any, completions: Any) -> list[list[float]]:
    """The model's log-probability of each generated token (raw logits, before sampling
    settings reshape them), one list per returned sequence."""
    import torch

    if not logits:
        return [[] for _ in range(completions.shape[0])]
    steps = torch.stack(logits, dim=1).float().log_softmax(dim=-1)  # (rows, steps, vocab)
    chosen = steps.gather(2, completions[:, :steps.shape[1], None]).squeeze(2)
    return [[round(value, 5) for value in row] for row in chosen.tolist()]


class HFChatModel(ToolCallingMixin, BaseChatModel):
    """Chat model over a local transformers causal LM (``hf:<path>`` and ``tiny`` URIs).

    Pass ``model_path`` (loaded on first use, onto ``device`` in ``dtype``), or ``hf_model``
    and ``tokenizer`` objects (used where they are). ``device`` and ``dtype`` are checked
    when the model is made, so a missing GPU is reported before any work starts.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model_path: str | None = None
    model_label: str | None = None  # the name answers carry; the model URI by default
    hf_model: Any = None
    tokenizer: Any = None
    device: str = "auto"  # auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps
    dtype: str = "auto"  # auto (bfloat16 on a GPU that has it, else float32), or a torch name
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = 256
    repetition_penalty: float | None = None  # > 1 discourages the loops small models fall into
    timeout: float | None = None  # seconds of generation before the answer is cut (max_time)
    tool_choice: str | None = None  # with tools bound: None/"auto", "required" or a tool name
    n: int = 1
    seed: int | None = None
    stop: list[str] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    streaming: bool = False

    _loaded: bool = PrivateAttr(default=False)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        if self.hf_model is None:
            resolve_dtype(self.dtype, resolve_device(self.device))

    @property
    def _llm_type(self) -> str:
        return "huggingface-local"

    @property
    def model_name(self) -> str:
        if self.model_label:
            return self.model_label
        if self.model_path:
            return self.model_path
        return getattr(getattr(self.hf_model, "config", None), "_name_or_path", "") or "in-memory"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model_name, "temperature": self.temperature, "top_p": self.top_p,
                "max_tokens": self.max_tokens, "n": self.n, "seed": self.seed,
                "repetition_penalty": self.repetition_penalty}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return tracing_params(
            "huggingface", kwargs.get("model", self.model_name),
            temperature=self.temperature, max_tokens=self.max_tokens, stop=stop or self.stop,
        )

    def _ensure_loaded(self) -> None:
        if self.hf_model is None or self.tokenizer is None:
            if not self.model_path:
                raise ModelURIError("HFChatModel needs model_path, or hf_model and tokenizer")
            self.hf_model, self.tokenizer = load_hf(self.model_path, self.device, self.dtype)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"

    # -- generation -----------------------------------------------------------------

    def _prompt(self, messages: Sequence[BaseMessage], options: dict[str, Any]) -> str:
        template_kwargs = {**(self.chat_template_kwargs or {}),
                           **(options.get("chat_template_kwargs") or {})}
        return render_chat(self.tokenizer, to_chat_dicts(messages, arguments_as="dict"),
                           options.get("tools") or None, add_generation_prompt=True,
                           **template_kwargs)

    def generate_many(
        self, conversations: Sequence[Sequence[BaseMessage]], **kwargs: Any
    ) -> list[ChatResult]:
        """One padded ``generate`` call for several conversations; n results each."""
        import torch

        self._ensure_loaded()
        options = {"temperature": self.temperature, "top_p": self.top_p,
                   "max_tokens": self.max_tokens, "n": self.n, "seed": self.seed,
                   "stop": self.stop, "repetition_penalty": self.repetition_penalty,
                   "timeout": self.timeout, "tool_choice": self.tool_choice,
                   **{k: v for k, v in kwargs.items() if v is not None}}
        unknown = set(options) - {"temperature", "top_p", "max_tokens", "n", "seed", "stop",
                                  "tools", "tool_choice", "chat_template_kwargs",
                                  "response_format", "model", "timeout", "max_retries",
                                  "repetition_penalty"}
        if unknown:
            raise ValueError(f"HFChatModel does not take {sorted(unknown)}")
        prompts = [self._prompt(conv, options) for conv in conversations]
        # tool_choice "required" or a tool's name: the answer opens a call, decoded under
        # the call's JSON schema, as servers do with a grammar.
        forced = forced_tool_name(options.get("tool_choice"), options.get("tools"))
        if forced is not None:
            prompts = [prompt + CALL_OPEN for prompt in prompts]
        options["forced_call"] = forced is not None
        # verbose=False: the prompt's length is checked against the context here, instead
        # of transformers warning that it is too long (and then again while generating)
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True,
                               add_special_tokens=False, verbose=False).to(self.hf_model.device)
        n = int(options["n"] or 1)
        temperature = options["temperature"]
        sample = bool(temperature) or n > 1
        generate_args: dict[str, Any] = {
            "max_new_tokens": self._room(batch["input_ids"].shape[1],
                                         int(options["max_tokens"] or 256)),
            "do_sample": sample,
            "num_return_sequences": n,
            "pad_token_id": self.tokenizer.pad_token_id,
            "return_dict_in_generate": True,
            "output_logits": True,
        }
        if options["repetition_penalty"] is not None:
            generate_args["repetition_penalty"] = float(options["repetition_penalty"])
        if options["timeout"] is not None:
            generate_args["max_time"] = float(options["timeout"])
        if forced is not None:
            generate_args["prefix_allowed_tokens_fn"] = call_constraint(
                self.tokenizer, options["tools"], forced, self._eos_ids())
        if sample:
            generate_args["temperature"] = float(temperature or 1.0)
            if options["top_p"] is not None:
                generate_args["top_p"] = float(options["top_p"])
        if options["stop"]:
            generate_args["stop_strings"] = list(options["stop"])
            generate_args["tokenizer"] = self.tokenizer
        seeded = options["seed"] is not None
        # A seed gets its own RNG stream; unseeded sampling draws from (and advances) the global one.
        with torch.random.fork_rng(devices=[], enabled=seeded), torch.inference_mode():
            if seeded:
                torch.manual_seed(int(options["seed"]))
            output = self.hf_model.generate(**batch, **generate_args)
        prompt_width = batch["input_ids"].shape[1]
        completions = output.sequences[:, prompt_width:]
        logprobs = _token_logprobs(output.logits, completions)
        results = []
        for i in range(len(prompts)):
            mask = batch["attention_mask"][i].bool()
            prompt_ids = batch["input_ids"][i][mask].tolist()
            generations = []
            for j in range(n):
                row = i * n + j
                generations.append(self._generation(completions[row], logprobs[row], prompt_ids,
                                                    options, first=j == 0))
            results.append(ChatResult(generations=generations,
                                      llm_output={"model_name": self.model_name}))
        return results

    def _room(self, prompt_tokens: int, max_tokens: int) -> int:
        """New tokens that fit after the prompt in the model's context, at most
        ``max_tokens`` (an answer cut there ends with finish_reason ``length``); a prompt
        that fills the context alone is the backend's error, not a silent overrun."""
        context = context_length(self.hf_model, self.tokenizer)
        if context is None:
            return max_tokens
        if prompt_tokens >= context:
            raise ModelBackendError(f"hf model {self.model_name}: the prompt is {prompt_tokens} "
                                    f"tokens, the model's context {context}: no room to answer")
        return min(max_tokens, context - prompt_tokens)

    def _generation(self, tokens: Any, logprobs: list[float], prompt_ids: list[int],
                    options: dict, first: bool) -> ChatGeneration:
        eos_ids = set(self._eos_ids())
        kept = []
        finish = "length"
        for token in tokens.tolist():
            if token in eos_ids:
                finish = "stop"
                kept.append(token)  # the end-of-turn token is part of the step's tokens
                break
            kept.append(token)
        ids, kept = kept, kept[:-1] if finish == "stop" else kept
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        for stop in options["stop"] or []:
            if stop in text:
                text, finish = text.split(stop, 1)[0], "stop"
        if options.get("forced_call"):
            text = CALL_OPEN + text + (CALL_CLOSE if finish == "stop" else "")
        content, calls, invalid = parse_hermes_tool_calls(text)
        if calls:
            finish = "tool_calls"
        prompt_tokens = len(prompt_ids)
        usage = UsageMetadata(input_tokens=prompt_tokens, output_tokens=len(kept),
                              total_tokens=prompt_tokens + len(kept))
        message = AIMessage(
            content=content, tool_calls=calls, invalid_tool_calls=invalid,
            usage_metadata=usage if first else None,
            response_metadata={"model_name": self.model_name, "finish_reason": finish,
                               "prompt_token_ids": prompt_ids, "completion_token_ids": ids,
                               "completion_logprobs": logprobs[:len(ids)]},
        )
        return ChatGeneration(message=message, generation_info={"finish_reason": finish})

    def score_completions(self, prompt_messages: Sequence[Any],
                          completions: Sequence[Sequence[Any]],
                          tools: Sequence[Any] | None = None) -> list[float]:
        """Each completion's summed log-probability after the prompt, rendered and cut as
        training does (``stepwise.llm.ranking``): how a policy ranks allowed actions."""
        from stepwise.llm.ranking import score_completions

        self._ensure_loaded()
        return score_completions(self.hf_model, self.tokenizer, prompt_messages, completions,
                                 tools)

    def _eos_ids(self) -> list[int]:
        ids = self.hf_model.generation_config.eos_token_id
        ids = list(ids) if isinstance(ids, list | tuple) else [ids] if ids is not None else []
        for token in ("<|im_end|>", self.tokenizer.eos_token):
            token_id = self.tokenizer.convert_tokens_to_ids(token) if token else None
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id:
                ids.append(token_id)
        return ids

    # -- langchain hooks ----------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if stop:
            kwargs["stop"] = stop
        return self.generate_many([messages], **kwargs)[0]

    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """All inputs in one padded forward pass (callbacks are not run per input)."""
        if not inputs:
            return []
        conversations = [self._convert_input(item).to_messages() for item in inputs]
        results = self.generate_many(conversations, **kwargs)
        return [result.generations[0].message for result in results]  # type: ignore[misc]
