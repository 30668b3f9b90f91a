"""Ranking a decision's allowed actions by a causal LM's likelihood of each action's step.

DPO raises the log-likelihood of the chosen step over the rejected one after the same
prompt, so a trained policy is measured by that same quantity: every allowed action's
exported step is scored by the summed log-probability of its tokens after the decision
prompt, and the best is taken. Rows are rendered as training renders them
(``tool_prompt.messages_for_template``: the prompt with the tool schemas, each step
without; then the chat template) and cut as TRL's ``DPOTrainer`` cuts them (the step
starts where the prompt alone and prompt + step diverge, as in
``search.pair_templates.rendered_ids``), so what is scored is what was trained.

All steps share the prompt: it goes through the model once, its key/value cache is
repeated for every step, and the steps then go through right-padded forward passes, one per
group of similar length (``shared_prefix_logprobs``); a prompt of ~700 tokens and eight
steps of ~50 cost about 1,100 token positions instead of 5,800. ``sequence_logprobs`` is the plain batched pass
(every row from its first token; only the logits from the earliest step token on), used
where a model's cache cannot be repeated.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stepwise.errors import StepwiseError
from stepwise.llm.tool_prompt import encode_chat, messages_for_template

TIE = 1e-6  # scores closer than this are equal
Messages = Sequence[Mapping[str, Any]]
Scorer = Callable[[Messages, Sequence[Messages], Sequence[Mapping[str, Any]] | None], list[float]]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def completion_rows(tokenizer: Any, prompt: Messages, completions: Sequence[Messages],
                    tools: Sequence[Mapping[str, Any]] | None = None
                    ) -> list[tuple[list[int], int]]:
    """Per completion: the token ids of prompt + step, and the index where the step starts."""
    rows, tools_arg = messages_for_template(prompt, tools, tokenizer)
    alone = encode_chat(tokenizer, rows, tools_arg, generation_prompt=True)
    out = []
    for completion in completions:
        step, _ = messages_for_template(completion, None, tokenizer)
        whole = encode_chat(tokenizer, [*rows, *step], tools_arg)
        cut = _common_prefix(alone, whole)
        if cut < 1 or cut >= len(whole):
            raise StepwiseError("a step renders to no tokens after the prompt under the chat "
                                "template: it cannot be scored")
        out.append((whole, cut))
    return out


def sequence_logprobs(model: Any, rows: Sequence[tuple[list[int], int]], pad_id: int
                      ) -> list[float]:
    """Summed log-probability of ``ids[cut:]`` given ``ids[:cut]``, per row, in one pass."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    start = min(cut for _, cut in rows) - 1  # the first position whose logits are needed
    device = getattr(model, "device", "cpu")
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, _) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    with torch.inference_mode():
        try:
            logits = model(input_ids=input_ids, attention_mask=mask,
                           logits_to_keep=width - start).logits
        except TypeError:  # a model class without logits_to_keep: all positions
            logits = model(input_ids=input_ids, attention_mask=mask).logits[:, start:]
        logprobs = logits[:, :-1].float().log_softmax(dim=-1)  # positions start .. width-2
        targets = input_ids[:, start + 1:]
        token = logprobs.gather(2, targets[:, :, None]).squeeze(2)
    scores = []
    for i, (ids, cut) in enumerate(rows):  # target position p sits at index p - start - 1
        scores.append(float(token[i, cut - start - 1:len(ids) - start - 1].sum()))
    return scores


def length_groups(lengths: Sequence[int], ratio: float = 2.0, slack: int = 64
                  ) -> list[list[int]]:
    """Indices grouped by length, shortest first, none longer than ``ratio`` times (or
    ``slack`` tokens more than) its group's shortest: a padded batch then wastes little (a
    step that calls view_pages carries the page text and is ten times longer than one that
    does not)."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        shortest = lengths[groups[-1][0]] if groups else 0
        if groups and lengths[i] <= max(ratio * shortest, shortest + slack):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _tail_logprobs(model: Any, cache: Any, name: str, shared: int,
                   rows: Sequence[tuple[list[int], int]], pad_id: int) -> list[float]:
    """Summed step log-probabilities of ``rows`` after a cache of their first ``shared``
    tokens (already repeated once per row), in one right-padded pass."""
    import torch

    device = getattr(model, "device", "cpu")
    tails = [ids[shared:] for ids, _ in rows]
    width = max(len(tail) for tail in tails)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), shared + width), dtype=torch.long)
    mask[:, :shared] = 1
    for i, tail in enumerate(tails):
        input_ids[i, :len(tail)] = torch.tensor(tail)
        mask[i, shared:shared + len(tail)] = 1
    positions = torch.arange(shared, shared + width)[None].expand(len(rows), -1)
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                   position_ids=positions.to(device), use_cache=True, **{name: cache}).logits
    # tail index j predicts the token at position shared + j + 1
    logprobs = logits[:, :-1].float().log_softmax(dim=-1)
    token = logprobs.gather(2, input_ids[:, 1:].to(device)[:, :, None]).squeeze(2)
    return [float(token[i, cut - shared - 1:len(ids) - shared - 1].sum())
            for i, (ids, cut) in enumerate(rows)]


def shared_prefix_logprobs(model: Any, rows: Sequence[tuple[list[int], int]], pad_id: int
                           ) -> list[float]:
    """As ``sequence_logprobs``, the prompt's common tokens run once and their cache shared;
    the steps go in batches of similar length (``length_groups``)."""
    import copy

    import torch

    first = rows[0][0]
    shared = min(min(_common_prefix(first, ids) for ids, _ in rows), min(c for _, c in rows) - 1)
    if shared < 1:
        return sequence_logprobs(model, rows, pad_id)
    device = getattr(model, "device", "cpu")
    # transformers >= 5.2x names the cache argument ``cache``; older ``past_key_values``
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with torch.inference_mode():
        prefix = model(input_ids=torch.tensor([first[:shared]], device=device), use_cache=True)
        cache = getattr(prefix, name, None)
        if cache is None:
            cache = getattr(prefix, "past_key_values", None)
        if not hasattr(cache, "batch_repeat_interleave"):
            return sequence_logprobs(model, rows, pad_id)
        scores = [0.0] * len(rows)
        for group in length_groups([len(ids) - shared for ids, _ in rows]):
            repeated = copy.deepcopy(cache)
            repeated.batch_repeat_interleave(len(group))
            found = _tail_logprobs(model, repeated, name, shared, [rows[i] for i in group],
                                   pad_id)
            for i, value in zip(group, found, strict=True):
                scores[i] = value
    return scores


def score_completions(model: Any, tokenizer: Any, prompt: Messages,
                      completions: Sequence[Messages],
                      tools: Sequence[Mapping[str, Any]] | None = None) -> list[float]:
    """Each completion's summed token log-probability after ``prompt`` (training's rendering)."""
    if not completions:
        return []
    rows = completion_rows(tokenizer, prompt, completions, tools)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return shared_prefix_logprobs(model, rows, int(pad or 0))


def best_index(scores: Sequence[float]) -> tuple[int, bool]:
    """The best action's index (the first of equal best: callers list the cheapest first),
    and whether all scores are equal (a tie the ranking cannot break)."""
    top = max(scores)
    best = next(i for i, value in enumerate(scores) if value >= top - TIE)
    return best, top - min(scores) <= TIE


def ranker(model: Any) -> Scorer:
    """The ``score_completions`` of ``model`` or of a model it wraps (a request cache, say),
    or a one-line error for a backend that cannot give log-likelihoods."""
    current, innermost, seen = model, model, 0
    while current is not None and seen < 8:
        score = getattr(current, "score_completions", None)
        if callable(score):
            return score
        innermost = current
        current, seen = getattr(current, "model", None), seen + 1
    name = getattr(innermost, "model_name", None) or type(innermost).__name__
    raise StepwiseError(f"rank decisions need an hf: or tiny policy model for now ({name} "
                        "gives no log-likelihoods); use --decide generate")
