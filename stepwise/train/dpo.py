"""DPO with a supervised term on step-level pairs: L = L_DPO + α·L_SFT (APT), on TRL.

TRL's ``DPOTrainer`` does the work (``loss_type=["sigmoid", "sft"]``,
``loss_weights=[1, α]``); this module picks the model, checks the pairs, holds some
out, logs one metrics row per step, and saves a folder that loads back as ``hf:DIR``
(weights, tokenizer, chat template; a LoRA adapter is merged in first).

Rows reach TRL rewritten for the training tokenizer's chat template
(``search.pair_templates.template_row``): a template that renders no tool schemas or
calls gets them as text, the way the HF backend prompts the model, so the trained steps
are the steps the model is asked for and chosen and rejected stay different tokens.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from stepwise.errors import StepwiseError
from stepwise.files import write_atomic

if TYPE_CHECKING:  # the checks load the model stack: the CLI reads DPOSettings without it
    from stepwise.train.pair_checks import PairReport

log = logging.getLogger(__name__)

# TRL's logged names -> the columns of metrics.jsonl.
METRIC_NAMES = {"loss": "loss", "rewards/accuracies": "reward_accuracy",
                "rewards/margins": "reward_margin", "logps/chosen": "logps_chosen",
                "logps/rejected": "logps_rejected", "learning_rate": "learning_rate",
                "num_tokens": "tokens"}
# Learning rates by what is trained: random tiny weights move fast, real weights must not.
DEFAULT_LR = {"tiny": 1e-3, "lora": 1e-4, "full": 5e-6}
FIT_SAMPLE = 16  # training pairs re-scored after training (how well it fits them)
GENERATION_TOKENS = 256  # room for a tool-call step when the trained model is used as a policy


class DPOSettings(BaseModel):
    """Everything that shapes a training run; saved with it in train.json."""

    beta: float = Field(0.1, gt=0, description="DPO beta: how far from the reference.")
    sft_weight: float = Field(0.2, ge=0, description="α in L = L_DPO + α·L_SFT (the SFT term "
                              "is on the chosen steps).")
    lora: int | None = Field(None, ge=1, description="Train a LoRA adapter of this rank "
                             "(merged into the saved model); unset: every weight.")
    top_layers: int | None = Field(None, ge=1, description="Train only the top N transformer "
                                   "layers (with LoRA: adapt only them); the frozen ones "
                                   "need no backward pass, about half the time per step on "
                                   "a CPU. Unset: every layer.")
    max_steps: int = Field(40, ge=1, description="Optimizer steps (in a loop: per round).")
    eval_frac: float = Field(0.1, ge=0, lt=1, description="Share of pairs held out for "
                             "reward accuracy before and after.")
    learning_rate: float | None = Field(None, gt=0, description="Learning rate (default: "
                                        "1e-3 for the tiny model, 1e-4 with LoRA, 5e-6 "
                                        "otherwise).")
    batch_size: int = Field(4, ge=1, description="Pairs per step.")
    max_length: int = Field(2048, ge=1, description="Most tokens of prompt + step.")
    seed: int = Field(0, description="Seeds the held-out split and training.")
    padding_free: bool = Field(False, description="Pack the batch without padding (needs "
                               "flash attention on GPU).")
    skip_bad: bool = Field(False, description="Drop pairs that fail the checks (reported) "
                           "instead of stopping.")
    # Where the trainer runs, not what it learns: left out of the saved settings (the result
    # names the device), so a run resumes on another machine.
    device: str = Field("auto", exclude=True, description="Where training runs: auto (a "
                        "CUDA GPU, else Apple's MPS, else the CPU), cpu, cuda, cuda:N or mps.")
    keep_frozen: bool = Field(True, exclude=True, description="With top_layers on a CPU: keep "
                              "the frozen layers' output per pair (memory for time; the "
                              "result is the same either way).")


def default(name: str) -> Any:
    """A ``DPOSettings`` field's default: the commands' options take theirs from here, so
    they and the library cannot disagree."""
    return DPOSettings.model_fields[name].default


def described(name: str) -> str:
    """A ``DPOSettings`` field's description: the help of the option that sets it."""
    return DPOSettings.model_fields[name].description or ""


@dataclass
class TrainResult:
    """Where the trained model is, and what happened to it."""

    out: str
    model: str
    steps: int
    pairs: dict[str, Any]
    train_pairs: int
    eval_pairs: int
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    train_fit: dict[str, float] = field(default_factory=dict)  # training pairs, after
    seconds: float = 0.0
    tokens_per_second: float | None = None
    peak_memory_gb: float | None = None
    device: str = "cpu"
    settings: dict[str, Any] = field(default_factory=dict)
    precomputed_reference: bool = False  # the reference's log-probs computed once, up front
    frozen_trunk: dict[str, int] | None = None  # hits and misses of the frozen layers' cache
    prepare_seconds: float = 0.0  # tokenizing the pairs (and any precomputed reference)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model(spec: str) -> tuple[Path, str]:
    """A model folder and what it is ("tiny" or "hf") from ``tiny``, ``tiny:SEED``,
    ``hf:PATH`` or a bare path."""
    from stepwise.llm.hf import check_model_dir
    from stepwise.llm.uri import tiny_seed

    if (seed := tiny_seed(spec)) is not None:
        from stepwise.llm.tiny import tiny_model_path

        return tiny_model_path(seed), "tiny"
    path = spec.removeprefix("hf:")
    return check_model_dir(path), "hf"


def peak_rss_bytes() -> int:
    """This process's peak resident memory (what a CPU run needs), from the kernel's count."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * 1024 if sys.platform != "darwin" else peak  # KiB on Linux, bytes on macOS


def split_pairs(rows: list[dict], eval_frac: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded held-out share (at least one pair when there is a share and two pairs)."""
    if eval_frac <= 0 or len(rows) < 2:
        return rows, []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = min(len(rows) - 1, max(1, round(len(rows) * eval_frac)))
    held_out = set(order[:held])
    return ([r for i, r in enumerate(rows) if i not in held_out],
            [r for i, r in enumerate(rows) if i in held_out])


def _top_layers(model: Any, count: int | None) -> list[int] | None:
    """The indices of the top ``count`` decoder layers, or None for every layer."""
    if count is None:
        return None
    total = len(model.get_decoder().layers)
    if count > total:
        raise StepwiseError(f"top_layers={count}, but the model has {total} layers")
    return list(range(total - count, total))


def _freeze_below(model: Any, first: int) -> None:
    """Only the decoder layers from ``first`` up and the final norm learn; the embeddings
    (tied to the output head in small models), the head and the layers below stay fixed."""
    model.requires_grad_(False)
    decoder = model.get_decoder()
    for layer in decoder.layers[first:]:
        layer.requires_grad_(True)
    if getattr(decoder, "norm", None) is not None:
        decoder.norm.requires_grad_(True)


def _dataset(rows: list[dict], tokenizer: Any):
    """Rows as a ``datasets.Dataset`` the way ``load_dataset("json", ...)`` would build it,
    each rewritten so ``tokenizer``'s template shows its tool calls (``tools`` is left out
    of a row whose schemas moved into the prompt)."""
    from datasets import Dataset

    from stepwise.search.pair_templates import template_row

    keep = ("prompt", "chosen", "rejected", "tools")
    rows = [template_row(row, tokenizer) for row in rows]
    return Dataset.from_list([{k: row[k] for k in keep if k in row} for row in rows])


def _metric_row(step: int, logs: dict[str, float]) -> dict[str, float]:
    row: dict[str, float] = {"step": step}
    for name, column in METRIC_NAMES.items():
        if name in logs and isinstance(logs[name], int | float) and math.isfinite(logs[name]):
            row[column] = float(logs[name])
    return row


def _eval_figures(metrics: dict[str, float]) -> dict[str, float]:
    return {column: float(metrics[f"eval_{name}"]) for name, column in METRIC_NAMES.items()
            if f"eval_{name}" in metrics and column not in ("learning_rate", "tokens")}


def _metrics_callback(path: Path, on_step: Callable[[int, int], None] | None):
    from transformers import TrainerCallback

    class MetricsFile(TrainerCallback):
        """One JSON row per logged training step, appended and flushed as it happens."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs and not any(k.startswith("eval_") for k in logs):
                with path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(_metric_row(state.global_step, logs)) + "\n")

        def on_step_end(self, args, state, control, **kwargs):
            if on_step:
                on_step(state.global_step, state.max_steps)

    return MetricsFile()


def train_dpo(pairs_path: str | Path, model: str, out: str | Path, settings: DPOSettings,
              on_step: Callable[[int, int], None] | None = None,
              on_report: Callable[[PairReport], None] | None = None) -> TrainResult:
    """Check the pairs, train, evaluate held-out pairs before and after, save to ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from stepwise.llm.hf import resolve_device
    from stepwise.train import frozen_trunk
    from stepwise.train.pair_checks import PairsError, check_pairs

    device = resolve_device(settings.device)  # a missing GPU fails before anything loads
    quiet_libraries()
    model_dir, kind = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.chat_template is None:
        raise StepwiseError(f"{model}: the tokenizer has no chat template")
    rows, report = check_pairs(pairs_path, tokenizer)
    if on_report:
        on_report(report)
    if report.dropped and not settings.skip_bad:
        raise PairsError(f"{pairs_path}: {sum(report.dropped.values())} of {report.rows} pairs "
                         f"cannot be trained on: " + "; ".join(report.lines())
                         + " (--skip-bad drops them and trains on the rest)")
    if not rows:
        raise PairsError(f"{pairs_path}: no pair left to train on")
    train_rows, eval_rows = split_pairs(rows, settings.eval_frac, settings.seed)

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(torch.device(device))  # the trainer places on the current GPU
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    trained_layers = _top_layers(policy, settings.top_layers)
    peft_config = None
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora, lora_alpha=2 * settings.lora,
                                 target_modules="all-linear", task_type="CAUSAL_LM",
                                 layers_to_transform=trained_layers)
    elif trained_layers is not None:
        _freeze_below(policy, trained_layers[0])
    rate = settings.learning_rate or DEFAULT_LR["lora" if settings.lora else
                                                "tiny" if kind == "tiny" else "full"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    metrics_path.unlink(missing_ok=True)
    # On a CPU a real model takes its pairs one at a time (gradients accumulated to the same
    # batch) without recomputing activations: the memory of one pair, and no second forward
    # pass. A GPU batches them and recomputes instead.
    one_at_a_time = device == "cpu" and kind != "tiny"
    per_device = 1 if one_at_a_time else settings.batch_size
    # One pair per batch comes back as the same batch on every pass: the frozen layers below
    # the trained ones then run once per pair, not once per pass (stepwise.train.frozen_trunk).
    trunk = None
    if (settings.keep_frozen and one_at_a_time and trained_layers is not None
            and not settings.lora):
        trunk = frozen_trunk.install(policy, trained_layers[0])
    # The reference's log-probabilities never change: when training passes over the pairs
    # more than once, computing them once up front saves a forward pass per pair and pass.
    precompute = settings.max_steps * settings.batch_size > len(train_rows)
    config = DPOConfig(
        output_dir=str(out / "checkpoints"), max_steps=settings.max_steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=settings.batch_size // per_device,
        per_device_eval_batch_size=per_device, learning_rate=rate,
        beta=settings.beta, loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, settings.sft_weight], max_length=settings.max_length,
        padding_free=settings.padding_free, logging_steps=1, save_strategy="no",
        eval_strategy="no", report_to=[], disable_tqdm=True, seed=settings.seed,
        use_cpu=device == "cpu", bf16=dtype == torch.bfloat16,
        gradient_checkpointing=cuda, precompute_ref_log_probs=precompute,
    )
    # Both evaluation sets are given up front: a precomputed reference is there only before
    # training starts.
    evaluated = {"fit": _dataset(train_rows[:FIT_SAMPLE], tokenizer)}
    if eval_rows:
        evaluated["held"] = _dataset(eval_rows, tokenizer)
    preparing = time.perf_counter()
    with _without_tqdm():  # TRL's own bar for the reference would cut into the caller's lines
        trainer = DPOTrainer(model=policy, args=config,
                             train_dataset=_dataset(train_rows, tokenizer),
                             eval_dataset=evaluated, processing_class=tokenizer,
                             peft_config=peft_config,
                             callbacks=[_metrics_callback(metrics_path, on_step)])
    prepare_seconds = time.perf_counter() - preparing
    trainer.remove_callback(PrinterCallback)  # the metrics file and the caller's progress instead

    def evaluate(name: str) -> dict[str, float]:
        return _eval_figures(trainer.evaluate(name, metric_key_prefix="eval"))

    before = evaluate("held") if eval_rows else {}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    after = evaluate("held") if eval_rows else {}
    fitted = evaluate("fit")

    trained = trainer.model
    if settings.lora:
        trained = trained.merge_and_unload()
    frozen_trunk.remove(trained)  # the layers' own names in the saved weights
    trained.generation_config.max_new_tokens = GENERATION_TOKENS
    trained.config.use_cache = True  # training turns the cache off; generation needs it (3x)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # save_strategy="no": only logs
    trained.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tokens = trainer.state.num_input_tokens_seen or _logged_tokens(trainer.state.log_history)
    result = TrainResult(
        out=str(out), model=str(model), steps=trainer.state.global_step,
        pairs=report.as_dict(), train_pairs=len(train_rows), eval_pairs=len(eval_rows),
        before=before, after=after, train_fit=fitted, seconds=round(seconds, 3),
        tokens_per_second=round(tokens / seconds, 1) if tokens and seconds else None,
        peak_memory_gb=round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda
        else round(peak_rss_bytes() / 2**30, 3),
        device=torch.cuda.get_device_name() if cuda else device,
        settings=settings.model_dump(), precomputed_reference=precompute,
        frozen_trunk={"hits": trunk.hits, "misses": trunk.misses} if trunk else None,
        prepare_seconds=round(prepare_seconds, 3),
    )
    from stepwise.train.curves import write_curves

    write_curves(metrics_path, out / "curves.png")
    write_atomic(out / "train.json", json.dumps(result.as_dict(), indent=1))
    return result


def quiet_libraries() -> None:
    """The caller shows progress; the libraries' own bars and deprecation notes are noise."""
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", category=UserWarning, module="trl")


@contextmanager
def _without_tqdm() -> Iterator[None]:
    """tqdm bars off for the block (TRL reads ``TQDM_DISABLE`` when it draws one)."""
    before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before


def _logged_tokens(history: list[dict[str, Any]]) -> float:
    """Tokens trained on, from TRL's running ``num_tokens`` in the log history."""
    counts = [entry["num_tokens"] for entry in history if "num_tokens" in entry]
    return float(counts[-1]) if counts else 0.0
