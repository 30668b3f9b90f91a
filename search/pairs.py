"""Step-level preference pairs from a search tree, in the formats TRL trainers read.

Siblings share a parent, so they share the history up to the decision: comparing them
isolates one step. Per parent, the max-Q child is *chosen* and the min-Q child
*rejected* (MCTS-DPO, Step-DPO); the best child below the chosen one can be the rejected
side too (``negatives``), a near miss that teaches finer choices than the worst one does. By default only the parents along the best path are
used (the root, then each chosen node while it has children: the seed's "each layer"; a
tree searched step by step has its committed path, ``spine``, and that is used instead);
``scope="all"`` uses every parent with two or more children.

The rows are written so that ``datasets.load_dataset("json", ...)`` and TRL's trainers
take the file as it is, whatever ``datasets`` version infers the Arrow schema:

- message ``content`` is always a string (None becomes ""), and a message keeps only the
  keys chat templates read (role, content, tool_calls, tool_call_id, reasoning_content);
- tool-call ``arguments`` stay JSON strings: as objects, the arguments of different tools
  would be merged into one Arrow struct, each filled with the others' keys as nulls;
- ``tools`` is one JSON string (TRL's trainers ``json.loads`` a string ``tools``): as a
  list, plain Arrow inference merges all tool schemas into one struct and every tool would
  render with the other tools' parameters as nulls. Key order inside it is kept as the
  environment gave it, since templates render tools with ``tojson``;
- a step a model generated carries its call's token ids and logprobs in
  ``meta.chosen_tokens`` / ``meta.rejected_tokens`` (``stepwise.llm.token_data``: lists
  of one type each, and the model's name); a rule-made step has no such key.

``check_prefix`` renders rows through the tool-call rewrite of ``pair_templates``, as
the trainer does, and drops the ones that would give it no clean signal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from stepwise.files import write_atomic
from stepwise.jsonl import read_jsonl
from stepwise.search.pair_templates import template_problem, template_row, tools_list
from stepwise.search.tree import best_path, rank, visited_children

SCOPES = ("best_path", "all")
FORMATS = ("preference", "stepwise")
NEGATIVES = ("worst", "closest", "both")
MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "reasoning_content")


@dataclass
class PairStats:
    """What pair extraction looked at and why parents gave no pair."""

    parents_seen: int = 0
    pairs: int = 0
    one_action: int = 0  # the decision had one allowed action: nothing to compare
    too_few_children: int = 0  # fewer than two children with enough visits
    no_preference: int = 0  # chosen and rejected have the same Q
    below_delta_q: int = 0  # 0 < ΔQ < min_delta_q
    no_prompt: int = 0  # the parent has no decision prompt
    no_completion: int = 0  # chosen or rejected has no completion
    same_completion: int = 0  # both steps are the same messages: nothing to learn
    dropped_by_tokenizer: int = 0  # set by the caller from ``check_prefix``

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# -- messages ------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(part if isinstance(part, str) else str(part.get("text") or "")
                       for part in content if isinstance(part, str | Mapping))
    return json.dumps(content, ensure_ascii=False)


def _tool_call(call: Mapping[str, Any], arguments_as: str) -> dict:
    function = call.get("function") or {"name": call.get("name"), "arguments": call.get("args")}
    arguments = function.get("arguments")
    if arguments is None:
        arguments = {}
    if arguments_as == "json" and not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    elif arguments_as == "dict" and isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            arguments = {"unparsed": arguments}
    out: dict[str, Any] = {}
    if isinstance(call.get("id"), str) and call["id"]:
        out["id"] = call["id"]
    out["type"] = "function"
    out["function"] = {"name": str(function.get("name") or ""), "arguments": arguments}
    return out


def normalize_messages(messages: Sequence[Mapping[str, Any]], *,
                       arguments_as: str = "json") -> list[dict]:
    """Chat messages as TRL and chat templates take them, with one Arrow-friendly shape.

    ``arguments_as="dict"`` gives tool-call arguments as objects, for templates that
    ``tojson`` them unconditionally (Qwen2.5, Llama 3.1); loading such a file keeps each
    tool's arguments apart only with ``datasets`` >= 5 (its ``Json`` feature).
    """
    if arguments_as not in ("json", "dict"):
        raise ValueError(f"arguments_as must be 'json' or 'dict', not {arguments_as!r}")
    out = []
    for message in messages:
        row: dict[str, Any] = {"role": str(message["role"]), "content": _text(message.get("content"))}
        calls = message.get("tool_calls") or []
        if calls:
            row["tool_calls"] = [_tool_call(call, arguments_as) for call in calls]
        if message.get("tool_call_id"):
            row["tool_call_id"] = str(message["tool_call_id"])
        if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
            row["reasoning_content"] = message["reasoning_content"]
        out.append(row)
    return out


def tools_json(tools: Sequence[Mapping[str, Any]] | str | None) -> str | None:
    """Tool schemas as one JSON string (None when there are none), key order kept."""
    if isinstance(tools, str):
        tools = json.loads(tools)
    return json.dumps(list(tools), ensure_ascii=False) if tools else None


# -- extraction ----------------------------------------------------------------------------


def decision_parents(graph: nx.DiGraph, scope: str = "best_path",
                     min_visits: int = 1) -> Iterable[int]:
    """The parents pairs are taken at: every one with two or more children, or the path of
    decisions (the committed ``spine`` of a step-by-step search, else the best path)."""
    if scope == "all":
        parents = [n for n in graph.nodes if graph.out_degree(n) >= 2]
        yield from sorted(parents, key=lambda n: (graph.nodes[n].get("depth") or 0, n))
        return
    yield from (n for n in best_path(graph, min_visits) if graph.out_degree(n))


def rejected_children(graph: nx.DiGraph, children: Sequence[int], chosen: int,
                      negatives: str = "worst") -> list[int]:
    """The children paired against ``chosen``: the min-Q one (``worst``), the best one
    below the chosen's Q (``closest``: the hard negative, a near miss the policy must tell
    apart), or both (``both``, once each)."""
    worst = min(children, key=lambda c: rank(graph, c))
    if negatives == "worst":
        return [worst]
    top = rank(graph, chosen)[0]
    below = [c for c in children if rank(graph, c)[0] < top - 1e-12]
    closest = max(below, key=lambda c: rank(graph, c)) if below else worst
    if negatives == "closest":
        return [closest]
    return [closest] if closest == worst else [closest, worst]


def extract_pairs(graph: nx.DiGraph, *, min_visits: int = 1, min_delta_q: float = 0.0,
                  scope: str = "best_path", format: str = "preference",
                  arguments_as: str = "json", tokenizer: Any = None,
                  negatives: str = "worst") -> tuple[list[dict], PairStats]:
    """Preference rows from ``graph`` (as ``load_tree`` or ``Tree.to_graph`` gives it).

    Only children with ``visits >= min_visits`` take part; a parent needs two of them.
    A pair is kept when ``ΔQ = q_chosen - q_rejected`` is positive and ``>= min_delta_q``.
    ``negatives`` picks the rejected side (``rejected_children``); with ``both`` a parent
    can give two pairs. ``format="stepwise"`` gives TRL's stepwise-supervision rows instead
    (``to_stepwise``; ``tokenizer`` renders their text with its chat template when given).
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {NEGATIVES}, not {negatives!r}")
    attrs = graph.graph
    tools = tools_json(attrs.get("tools"))
    stats = PairStats()
    rows: list[dict] = []
    for parent in decision_parents(graph, scope, min_visits):
        stats.parents_seen += 1
        children = visited_children(graph, parent, min_visits)
        if graph.out_degree(parent) == 1:
            stats.one_action += 1
            continue
        if len(children) < 2:
            stats.too_few_children += 1
            continue
        chosen = max(children, key=lambda c: rank(graph, c))
        found = [_pair(graph, parent, chosen, rejected, tools, min_delta_q, arguments_as)
                 for rejected in rejected_children(graph, children, chosen, negatives)]
        kept = [row for row in found if isinstance(row, dict)]
        if not kept:  # the parent's reason: that of its first candidate
            setattr(stats, found[0], getattr(stats, found[0]) + 1)
        rows += kept
        stats.pairs += len(kept)
    if format == "stepwise":
        return to_stepwise(rows, tokenizer), stats
    return rows, stats


def _pair(graph: nx.DiGraph, parent: int, chosen: int, rejected: int, tools: str | None,
          min_delta_q: float, arguments_as: str) -> dict | str:
    """One preference row, or the ``PairStats`` field that says why there is none."""
    attrs = graph.graph
    p, c, r = graph.nodes[parent], graph.nodes[chosen], graph.nodes[rejected]
    q_chosen, q_rejected = float(c.get("q") or 0.0), float(r.get("q") or 0.0)
    delta = q_chosen - q_rejected
    if delta <= 1e-12:
        return "no_preference"
    if delta < min_delta_q:
        return "below_delta_q"
    if not p.get("prompt"):
        return "no_prompt"
    if not c.get("completion") or not r.get("completion"):
        return "no_completion"
    chosen_messages = normalize_messages(c["completion"], arguments_as=arguments_as)
    rejected_messages = normalize_messages(r["completion"], arguments_as=arguments_as)
    if chosen_messages == rejected_messages:
        return "same_completion"
    meta = {
        "task": attrs.get("task"),
        "seed": attrs.get("seed"),
        "depth": int(p.get("depth") or 0),
        "parent_id": int(parent),
        "chosen_id": int(chosen),
        "rejected_id": int(rejected),
        "q_chosen": q_chosen,
        "q_rejected": q_rejected,
        "delta_q": delta,
        "visits_chosen": int(c.get("visits") or 0),
        "visits_rejected": int(r.get("visits") or 0),
        "chosen_action": c.get("action"),
        "rejected_action": r.get("action"),
        "chosen_label": c.get("label"),
        "rejected_label": r.get("label"),
        "optimal_action": p.get("optimal"),
        "best_actions": p.get("best_actions"),
    }
    for side, node in (("chosen", c), ("rejected", r)):
        if node.get("call_tokens"):  # a step a model generated, as it saw and wrote it
            meta[f"{side}_tokens"] = node["call_tokens"]
    return {
        "prompt": normalize_messages(p["prompt"], arguments_as=arguments_as),
        "chosen": chosen_messages,
        "rejected": rejected_messages,
        "tools": tools,
        "meta": meta,
    }


# -- stepwise supervision ------------------------------------------------------------------


def _plain_prompt(messages: Sequence[Mapping[str, Any]], tools: list[dict] | None) -> str:
    parts = []
    if tools:
        parts.append("tools: " + json.dumps(tools, ensure_ascii=False))
    parts += [f"{m['role']}: {_plain_step([m])}" for m in messages]
    return "\n\n".join(parts) + "\n\nassistant: "


def _plain_step(messages: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for message in messages:
        if message.get("content"):
            lines.append(message["content"])
        for call in message.get("tool_calls") or []:
            arguments = call["function"]["arguments"]
            if isinstance(arguments, str):
                arguments = json.loads(arguments) if arguments.strip() else {}
            lines.append(json.dumps({"name": call["function"]["name"], "arguments": arguments},
                                    ensure_ascii=False))
    return "\n".join(lines)


def _rendered(tokenizer: Any, row: Mapping[str, Any], side: str) -> tuple[str, str]:
    """The prompt text and the step's text, rendered through the tool-call rewrite."""
    row = template_row(row, tokenizer)
    prompt, step, tools = list(row["prompt"]), list(row[side]), tools_list(row.get("tools"))
    alone = tokenizer.apply_chat_template(prompt, tools=tools, add_generation_prompt=True,
                                          tokenize=False)
    whole = tokenizer.apply_chat_template(prompt + step, tools=tools, tokenize=False)
    common = 0
    for a, b in zip(alone, whole, strict=False):
        if a != b:
            break
        common += 1
    return alone[:common], whole[common:]


def to_stepwise(rows: Sequence[Mapping[str, Any]], tokenizer: Any = None) -> list[dict]:
    """Preference rows as TRL's stepwise-supervision rows (``prompt``, ``completions``, ``labels``).

    That format is plain text (TRL's ``PRMTrainer`` read it; trl 1.x no longer ships a
    trainer for it). Each decision gives two one-step rows with the same prompt: the
    chosen step labelled True and the rejected one labelled False. With a ``tokenizer``
    the text is its chat template's rendering; without one, a plain transcript.
    """
    out = []
    for row in rows:
        tools = tools_list(row.get("tools"))
        for side, label in (("chosen", True), ("rejected", False)):
            if tokenizer is not None:
                prompt, step = _rendered(tokenizer, row, side)
            else:
                prompt, step = _plain_prompt(row["prompt"], tools), _plain_step(row[side])
            out.append({"prompt": prompt, "completions": [step], "labels": [label],
                        "meta": {**row.get("meta", {}), "side": side}})
    return out


# -- files and checks ----------------------------------------------------------------------


def write_pairs(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Rows as JSONL, one per line, written atomically. Key order is the rows' own
    (``extract_pairs`` builds them in a fixed order); it is not sorted, because chat
    templates render tool-call argument objects in the order they are stored."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    write_atomic(path, text)
    return Path(path)


def read_pairs(path: str | Path) -> list[dict]:
    """The rows of a pairs JSONL file (a bad line: one error naming file and line)."""
    return [row for _, row in read_jsonl(Path(path))]


def check_prefix(rows: Sequence[Mapping[str, Any]], tokenizer: Any) -> tuple[list[dict], int]:
    """Keep rows that train cleanly under ``tokenizer``'s chat template; return them and how
    many were dropped.

    A row is rendered as the trainer will see it (``pair_templates.template_row``: tool
    calls the template cannot show become text) and kept when its tokenized prompt (with
    the generation prompt) is a strict prefix of both tokenized prompt+chosen and
    prompt+rejected, and chosen and rejected are different tokens. Where the prefix
    breaks, a trainer would cut the completion where the two diverge and train on a
    context the model never sees at inference (or on an empty completion); where the
    tokens are equal, DPO has nothing to learn. A row the template refuses is dropped too.
    """
    kept = [dict(row) for row in rows if template_problem(row, tokenizer) is None]
    return kept, len(rows) - len(kept)
