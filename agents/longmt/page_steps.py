"""One page of LongMT: query memory, translate, update memory.

``PageSteps`` holds what is not state (models, the document's pages, the policy) and
turns one state into the next; the LangGraph graph (graph.py) wires its three steps into
a loop over pages, and an explorer can drive the same steps with its own module choices.

- query: a rule policy's module set becomes the assistant's own tool-call turn (the step
  the explorer exports); ``auto`` asks the policy model, which either generates its turn
  (its bad calls come back to it as error results; prose other than the no-modules reply
  is a fallback) or, with ``decide="rank"``, ranks the eight module sets' turns by their
  likelihood (``stepwise.llm.ranking``) and takes the best one's turn; ``decide="reward"``
  ranks them the same way by DPO's implicit reward, the trained policy's log-likelihood
  less its reference's (``stepwise.llm.implicit_reward``: what DPO trains);
- translate: numbered lines, one per source sentence; an answer with the wrong number of
  lines is retried, then the page is split in halves, down to single sentences;
- update: the page goes into page memory, then a summary and entity records are asked for.

A translate, summary or entity call whose model fails (the server, a replay miss:
``stepwise.errors.MODEL_ERRORS``) stops the document at that page step with
``PageStepFailed``, which keeps the trace so far; a deciding model that fails costs the
page a fallback. A bug in stepwise's own code raises as itself either way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from stepwise.agents.longmt.optima import SETS
from stepwise.agents.longmt.policies import Oracle, Policy
from stepwise.agents.longmt.prompts import (
    SYSTEM_PROMPT,
    is_no_modules_reply,
    numbered_lines,
    query_prompt,
    retry_prompt,
    translate_prompt,
)
from stepwise.agents.longmt.state import LongMTState, ModuleCall, PageStep
from stepwise.agents.longmt.updates import (
    UPDATE_ENTITIES,
    UPDATE_SUMMARIES,
    update_entities,
    update_summaries,
)
from stepwise.documents.pages import Document, Page
from stepwise.errors import MODEL_ERRORS, ModelBackendError, StepwiseError, error_line
from stepwise.llm.implicit_reward import ImplicitReward
from stepwise.llm.messages import token_usage, tool_schemas, training_dicts
from stepwise.llm.ranking import best_index, ranker
from stepwise.llm.token_data import with_purpose
from stepwise.memory.translation import PageRecord, TranslationMemory
from stepwise.tools.call_ids import unique_call_ids
from stepwise.tools.executor import is_error, run_tool_calls
from stepwise.tools.longmt.formats import NOTHING_FOUND
from stepwise.tools.longmt.modules import PageView, default_arguments, memory_tools
from stepwise.tools.think.tokens import estimate_tokens

NO_MODULES = "This page needs no memory; translating now."  # a rule turn that calls nothing
DECIDE_MODES = ("generate", "rank", "reward")
NOT_A_DECISION = "neither a tool call nor the no-modules reply"


def page_tokens(lines: Sequence[str]) -> int:
    """Tokens a page's translation may need: 4/3 of its characters (a target language can
    take more tokens than the source has characters, as zh -> en does), the line numbers,
    and a margin."""
    return 4 * sum(len(line) for line in lines) // 3 + 4 * len(lines) + 64


def unusable_decision(answers: Sequence[AnyMessage]) -> str | None:
    """Why a model's decision turns cannot be used, or None.

    A decision is usable when the model called at least one module successfully, or
    answered with the no-modules reply the prompt documents (or the rule turn's own
    no-modules text, which is what a policy trained on exported steps learns). It is
    unusable when it tried tool calls and none could be run (malformed, unknown tools, bad
    arguments), when the first answer is empty, or when it is other prose.
    """
    turns = [m for m in answers if isinstance(m, AIMessage)]
    if not turns:
        return "no answer"
    tried = any(m.tool_calls or m.invalid_tool_calls for m in turns)
    succeeded = any(isinstance(m, ToolMessage) and not is_error(m) for m in answers)
    if tried and not succeeded:
        return "no tool call could be run: " + next(
            (m.text[:160] for m in answers if isinstance(m, ToolMessage)), "malformed tool calls")
    first = turns[0]
    if not first.tool_calls and not first.invalid_tool_calls:
        if not first.text.strip():
            return "an empty answer"
        if not is_no_modules_reply(first.text, NO_MODULES):
            return NOT_A_DECISION
    return None


class PageStepFailed(ModelBackendError):
    """A model call of one page step failed, so the document stops at that page.

    ``steps`` is the trace so far: the finished pages, then the failed page's step with
    ``failed`` (the call and its error line), so a caller can write down what was done.
    """

    def __init__(self, page: int, pages: int, call: str, cause: BaseException,
                 steps: list[dict]) -> None:
        super().__init__(f"page {page + 1} of {pages}, {call}: {error_line(cause)}")
        self.page = page
        self.call = call
        self.steps = steps


@dataclass
class TranslatedLines:
    lines: list[str]
    attempts: int = 0
    splits: int = 0
    unaligned: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    calls: list[dict] = field(default_factory=list)  # token records (``with_purpose``)


@dataclass
class PageSteps:
    """Models, document and policy: everything the page steps use that is not state."""

    model: BaseChatModel
    document: Document
    src: str
    tgt: str
    policy: Policy
    policy_model: BaseChatModel | None = None
    oracle: Oracle | None = None
    view_k: int = 5
    max_query_rounds: int = 2
    retries: int = 1
    update_memory: bool = True
    fallback: tuple[str, ...] = ()  # the modules of a page whose model decision is unusable
    # Per-call token limits (None: the model's own). A decision is a few tool calls; a
    # translation is sized to its page (``page_tokens``), at most ``translation_max_tokens``.
    decision_max_tokens: int | None = None
    translation_max_tokens: int | None = None
    # How a deciding model decides: generate its turn, or rank the module sets' turns by
    # likelihood (rank) or by implicit reward (reward: the policy model is an ImplicitReward).
    decide: str = "generate"
    pages: list[Page] = field(init=False)

    def __post_init__(self) -> None:
        if self.decide not in DECIDE_MODES:
            raise StepwiseError(f"decide must be one of {', '.join(DECIDE_MODES)}, "
                                f"not {self.decide!r}")
        self.pages = self.document.pages

    # -- query ------------------------------------------------------------------------

    def view(self, state: LongMTState) -> PageView:
        page = state["page"]
        return PageView(state["memory"], page, "\n".join(self.pages[page].lines), self.view_k)

    def decision_messages(self, page: int) -> list[AnyMessage]:
        """The prompt of a page's decision turn: what a policy model (and a DPO pair) sees."""
        return [SystemMessage(SYSTEM_PROMPT),
                HumanMessage(query_prompt(page, len(self.pages), self.src, self.tgt,
                                          self.pages[page].lines))]

    def rule_turn(self, page: int, modules: Sequence[str], view: PageView) -> AIMessage:
        """A rule policy's choice written as the assistant's own tool-call turn."""
        calls = [{"name": tool, "args": default_arguments(tool, view), "id": f"call_{page}_{i}",
                  "type": "tool_call"} for i, tool in enumerate(modules)]
        return AIMessage(content="" if calls else NO_MODULES, tool_calls=calls)

    def query(self, state: LongMTState, modules: Sequence[str] | None = None) -> dict:
        """Call the page's memory modules: ``modules`` if given, else the policy's choice."""
        started = time.perf_counter()
        page = state["page"]
        view = self.view(state)
        tools = memory_tools(view)
        messages = self.decision_messages(page)
        step = PageStep(page=page, sentences=len(self.pages[page].lines),
                        policy=self.policy.text, modules=[], decision_errors=0,
                        tokens_in=0, tokens_out=0, seconds={})
        if modules is None and page == 0:
            step["decided_by"] = "first page"
        elif modules is not None or not self.policy.decides:
            chosen = modules if modules is not None else self.policy.modules_for(
                page, self.pages[page].lines, self.oracle,
                best=lambda: self.oracle.best_sets(self, state))
            step["decided_by"] = "given" if modules is not None else "rule"
            turn = self.rule_turn(page, chosen, view)
            messages += [turn, *run_tool_calls(turn, tools)]
        elif self.decide in ("rank", "reward"):
            step["decided_by"] = self.decide
            messages = self._rank_decides(page, messages, view, tools, step)
        else:
            step["decided_by"] = "model"
            step["model_turns"] = step["model_tool_calls"] = 0
            messages = self._model_decides(page, messages, view, tools, step)
        context = self._record_calls(messages, step)
        step["context_tokens"] = sum(estimate_tokens(body) for _, body in context)
        step["seconds"]["query"] = time.perf_counter() - started
        return {"current": step, "context": context}

    def _rank_decides(self, page: int, messages: list[AnyMessage], view: PageView,
                      tools: dict, step: PageStep) -> list[AnyMessage]:
        """The module set whose exported turn the deciding model finds likeliest: its turn.

        Each set's turn is the rule turn a pair would hold as chosen or rejected, scored
        after the decision prompt with the tool schemas the environment exports. All sets
        scoring the same is a tie (``rank_tie``), broken to the cheapest (``SETS`` order).
        """
        decider = self.policy_model or self.model
        if self.decide == "reward" and not isinstance(decider, ImplicitReward):
            raise StepwiseError("decide=reward ranks by a trained policy's implicit reward: "
                                "the deciding model must be an ImplicitReward (policy and "
                                "reference)")
        score = ranker(decider)
        turns = [self.rule_turn(page, modules, view) for modules in SETS]
        scores = score(training_dicts(messages), [training_dicts([turn]) for turn in turns],
                       tool_schemas(list(tools.values())))
        best, tied = best_index(scores)
        step["rank_scores"] = {"+".join(modules) or "none": round(value, 5)
                               for modules, value in zip(SETS, scores, strict=True)}
        step["rank_tie"] = tied
        return [*messages, turns[best], *run_tool_calls(turns[best], tools)]

    def _model_decides(self, page: int, messages: list[AnyMessage], view: PageView,
                       tools: dict, step: PageStep) -> list[AnyMessage]:
        """The model's tool calls, or the fallback modules when its answer is unusable or
        its call fails (``MODEL_ERRORS``); a bug in stepwise raises as itself."""
        prompt = list(messages)
        try:
            messages = self._model_rounds(page, messages, tools, step)
        except MODEL_ERRORS as exc:  # a failing policy model costs a fallback, not the run
            return self._fall_back(page, prompt, view, tools, step,
                                   f"the model failed: {error_line(exc)}")
        reason = unusable_decision(messages[len(prompt):])
        if reason is None:
            return messages
        step["decision_errors"] += sum(is_error(m) for m in messages[len(prompt):]
                                       if isinstance(m, ToolMessage))
        return self._fall_back(page, prompt, view, tools, step, reason)

    def _fall_back(self, page: int, prompt: list[AnyMessage], view: PageView, tools: dict,
                   step: PageStep, reason: str) -> list[AnyMessage]:
        step["decided_by"] = "fallback"
        step["fallback_reason"] = reason
        turn = self.rule_turn(page, self.fallback, view)
        return [*prompt, turn, *run_tool_calls(turn, tools)]

    def _model_rounds(self, page: int, messages: list[AnyMessage], tools: dict,
                      step: PageStep) -> list[AnyMessage]:
        decider = self.policy_model or self.model
        model = decider.bind_tools(list(tools.values()))
        # A model whose own tool_choice forces a call (a small model that answers in prose
        # otherwise) is forced on the first round only; later rounds may stop.
        forced = getattr(decider, "tool_choice", None) not in (None, "auto")
        later = decider.bind_tools(list(tools.values()), tool_choice="auto") if forced else model
        limit = {"max_tokens": self.decision_max_tokens} if self.decision_max_tokens else {}
        for round_ in range(self.max_query_rounds):
            answer = (later if round_ else model).invoke(messages, **limit)
            tokens_in, tokens_out = token_usage(answer)
            step["tokens_in"] += tokens_in
            step["tokens_out"] += tokens_out
            step["model_turns"] += 1  # turns with the memory tools bound, and calls made
            step["model_tool_calls"] += len(answer.tool_calls) + len(answer.invalid_tool_calls)
            if (record := with_purpose("decision", answer)) is not None:
                step.setdefault("model_calls", []).append(record)
            answer = unique_call_ids(answer, messages, f"{page}_{round_}")
            messages.append(answer)
            if not answer.tool_calls and not answer.invalid_tool_calls:
                break
            messages += run_tool_calls(answer, tools)
        return messages

    def _record_calls(self, messages: list[AnyMessage], step: PageStep) -> list[tuple[str, str]]:
        """Module calls into the step; successful, non-empty results become context."""
        calls = {call["id"]: call for m in messages if isinstance(m, AIMessage)
                 for call in m.tool_calls}
        context: list[tuple[str, str]] = []
        for message in messages:
            if not isinstance(message, ToolMessage):
                continue
            call = calls.get(message.tool_call_id, {})
            failed = is_error(message)
            step["modules"].append(ModuleCall(
                tool=message.name or call.get("name", ""), args=dict(call.get("args", {})),
                status="error" if failed else "ok", result=message.text,
                tokens=estimate_tokens(message.text)))
            if failed:
                step["decision_errors"] += 1
            elif message.text.strip() != NOTHING_FOUND:
                context.append((message.name or call.get("name", ""), message.text))
        return context

    # -- translate --------------------------------------------------------------------

    def translate(self, state: LongMTState) -> dict:
        started = time.perf_counter()
        page = state["page"]
        lines = self.pages[page].lines
        step = dict(state["current"])
        try:
            done = self.translate_lines(page, lines, state.get("context", []))
        except MODEL_ERRORS as exc:
            step.update(source=lines, translation=[])
            raise self._failed(state, step, "translate", exc, started) from exc
        step.update(source=lines, translation=done.lines, attempts=done.attempts,
                    splits=done.splits, unaligned=done.unaligned,
                    tokens_in=step["tokens_in"] + done.tokens_in,
                    tokens_out=step["tokens_out"] + done.tokens_out)
        if done.calls:
            step["model_calls"] = [*step.get("model_calls", []), *done.calls]
        step["seconds"] = {**step["seconds"], "translate": time.perf_counter() - started}
        return {"current": step}

    def translate_lines(self, page: int, lines: Sequence[str],
                        context: Sequence[tuple[str, str]]) -> TranslatedLines:
        """Numbered lines in, as many lines out: retry, then split in halves."""
        prompt = translate_prompt(page, len(self.pages), self.src, self.tgt, lines, context)
        messages: list[BaseMessage] = [SystemMessage(SYSTEM_PROMPT), HumanMessage(prompt)]
        done = TranslatedLines(lines=[])
        parsed: list[str] = []
        cap = self.translation_max_tokens
        limit = {"max_tokens": min(page_tokens(lines), cap)} if cap else {}
        for attempt in range(1 + self.retries):
            answer = self.model.invoke(messages, **limit)
            tokens_in, tokens_out = token_usage(answer)
            done.attempts += 1
            done.tokens_in += tokens_in
            done.tokens_out += tokens_out
            if (record := with_purpose("translate", answer)) is not None:
                done.calls.append(record)
            parsed = numbered_lines(answer.text)
            if len(parsed) == len(lines):
                done.lines = parsed
                return done
            if attempt < self.retries:
                messages += [answer, HumanMessage(retry_prompt(len(lines), len(parsed)))]
        if len(lines) == 1:  # nothing left to split: keep what the model wrote
            text = " ".join(parsed) or " ".join(answer.text.split())
            done.lines, done.unaligned = [text], 1
            return done
        half = len(lines) // 2
        done.splits += 1
        for part in (lines[:half], lines[half:]):
            sub = self.translate_lines(page, part, context)
            done.lines += sub.lines
            for name in ("attempts", "splits", "unaligned", "tokens_in", "tokens_out"):
                setattr(done, name, getattr(done, name) + getattr(sub, name))
            done.calls += sub.calls
        return done

    # -- update -----------------------------------------------------------------------

    def update(self, state: LongMTState) -> dict:
        started = time.perf_counter()
        step = dict(state["current"])
        page = state["page"]
        source, translation = step["source"], step["translation"]
        memory: TranslationMemory = state["memory"].with_page(
            PageRecord(number=page, source=tuple(source), translation=tuple(translation)))
        step["updates"] = []
        writes = {  # each takes the memory so far and adds to it
            UPDATE_SUMMARIES: lambda memory: update_summaries(self.model, memory, page, self.tgt,
                                                              source, translation),
            UPDATE_ENTITIES: lambda memory: update_entities(self.model, memory, page, source,
                                                            translation),
        } if self.update_memory else {}
        for name, write in writes.items():
            try:
                done = write(memory)
            except MODEL_ERRORS as exc:
                raise self._failed(state, step, name, exc, started) from exc
            memory = done.memory
            step["updates"].append(done.trace())
            step["tokens_in"] += done.tokens_in
            step["tokens_out"] += done.tokens_out
        step["seconds"] = {**step["seconds"], "update": time.perf_counter() - started}
        return {"memory": memory, "steps": [step], "page": page + 1, "current": {},
                "context": []}

    def _failed(self, state: LongMTState, step: dict, call: str, cause: BaseException,
                started: float) -> PageStepFailed:
        """The failure of ``call`` on this page, with the trace so far and this step last."""
        node = "translate" if call == "translate" else "update"
        seconds = {**step.get("seconds", {}), node: time.perf_counter() - started}
        failed = {**step, "failed": {"call": call, "error": error_line(cause)}, "seconds": seconds}
        return PageStepFailed(state["page"], len(self.pages), call, cause,
                              [*state.get("steps", []), failed])

    def finished(self, state: LongMTState) -> bool:
        return state["page"] >= len(self.pages)
