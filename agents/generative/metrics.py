"""Evaluation metrics for generative agents (Park et al. 2023, section 7), computed on runs
of the simulated sandbox world; they describe the simulation, not real people.

- information diffusion: the share of agents whose interview answer shows they know a
  fact (the paper: who knew of Isabella's party after two game days);
- network density: eta = 2|E| / (|V|(|V| - 1)) of a graph of agents: who talked with
  whom (``conversation_edges``, as the paper counts it), or who mentions whom in memory
  (``relationship_edges``, which seed memories alone already fill);
- grounding: whether each fact claimed in an interview answer cites memories that exist,
  so answers can be checked against the memory stream instead of trusted.

Everything takes plain mappings and sequences, so no metric depends on the memory-stream
or agent classes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import networkx as nx

Judge = Callable[[str], bool] | str | Sequence[str]


@dataclass(frozen=True)
class DiffusionReport:
    """Who of the interviewed agents knows: ``share`` = len(knowers) / len(agents)."""

    share: float
    knowers: tuple[str, ...]  # sorted
    agents: tuple[str, ...]  # everyone interviewed, sorted


def keyword_judge(keywords: str | Sequence[str]) -> Callable[[str], bool]:
    """A judge that an answer is correct when it contains every keyword, ignoring case.

    A string is split on whitespace into keywords ("valentine party"); a sequence gives
    the keywords as they are, so one may hold spaces (["Hobbs Cafe", "5pm"]). Keywords
    match anywhere, also inside words ("valentine" in "Valentine's").
    """
    words = keywords.split() if isinstance(keywords, str) else list(keywords)
    if not words or not all(isinstance(word, str) and word.strip() for word in words):
        raise ValueError(f"keywords must be non-empty text, not {keywords!r}")
    lowered = [word.strip().casefold() for word in words]
    return lambda answer: all(word in answer.casefold() for word in lowered)


def diffusion_report(answers: Mapping[str, str], is_correct: Judge) -> DiffusionReport:
    """Which agents answered correctly (``is_correct``: a function, or keywords as in
    ``keyword_judge``). A missing or empty answer is not correct; no agents give 0.0."""
    judge = is_correct if callable(is_correct) else keyword_judge(is_correct)
    knowers = tuple(sorted(agent for agent, answer in answers.items()
                           if isinstance(answer, str) and answer.strip() and judge(answer)))
    agents = tuple(sorted(answers))
    return DiffusionReport(share=len(knowers) / len(agents) if agents else 0.0,
                           knowers=knowers, agents=agents)


def information_diffusion(answers: Mapping[str, str], is_correct: Judge) -> float:
    """The share of agents whose interview answer is correct (see ``diffusion_report`` for
    which ones)."""
    return diffusion_report(answers, is_correct).share


def network_density(agents: Sequence[str], edges: Iterable[tuple[str, str]]) -> float:
    """eta = 2|E| / (|V|(|V| - 1)) over undirected edges, each pair counted once and self
    loops dropped. Fewer than two agents have no possible edge: 0.0. An edge naming an
    agent not in ``agents`` is a ValueError (it would silently change |V|)."""
    graph = nx.Graph()
    graph.add_nodes_from(agents)
    for first, second in edges:
        for name in (first, second):
            if name not in graph:
                raise ValueError(f"edge ({first!r}, {second!r}) names {name!r}, "
                                 "who is not among the agents")
        if first != second:
            graph.add_edge(first, second)
    if graph.number_of_nodes() < 2:
        return 0.0
    return nx.density(graph)


def relationship_edges(memories: Mapping[str, Iterable[str]],
                       names: Literal["first", "full"] = "first") -> list[tuple[str, str]]:
    """Who-knows-whom edges: one (sorted) pair when either agent's memories mention the
    other by name.

    Names match as whole words and case-sensitively (names are capitalised; "May" must
    not match "may"). With ``names="full"`` only the full name counts; with "first" the
    full name or the first name does, except a first name shared by two agents, where only
    full names count. Sorted, without duplicates or self loops.
    """
    agents = list(memories)
    first_names = {agent: (agent.split() or [agent])[0] for agent in agents}
    shared = {first for first in first_names.values()
              if list(first_names.values()).count(first) > 1}
    patterns = {}
    for agent in agents:
        forms, first = [agent], first_names[agent]
        if names == "first" and first != agent and first not in shared:
            forms.append(first)
        alternatives = "|".join(re.escape(form) for form in forms)
        patterns[agent] = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
    edges = set()
    for agent in agents:
        text = "\n".join(memories[agent])
        for other in agents:
            if other != agent and patterns[other].search(text):
                edges.add(tuple(sorted((agent, other))))
    return sorted(edges)


def conversation_edges(pairs: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """Who-talked-with-whom edges: one sorted pair per pair of agents that held a
    conversation, each counted once, self pairs dropped."""
    return sorted({tuple(sorted((pair[0], pair[1]))) for pair in pairs  # type: ignore[misc]
                   if len(pair) == 2 and pair[0] != pair[1]})


@dataclass(frozen=True)
class UngroundedClaim:
    """A claim that cites no memory, or cites ids the memory stream does not have."""

    claim: str
    cited: tuple[int, ...]
    missing: tuple[int, ...]  # cited ids that do not exist

    @property
    def reason(self) -> str:
        if not self.cited:
            return "cites no memory"
        return "cites unknown memory ids " + ", ".join(map(str, self.missing))


@dataclass(frozen=True)
class GroundingReport:
    """``share`` = grounded / total claims; with no claims nothing is ungrounded: 1.0."""

    share: float
    grounded: int
    total: int
    ungrounded: tuple[UngroundedClaim, ...]


def grounding(claims: Sequence[tuple[str, Sequence[int]]],
              memory_ids: Collection[int]) -> GroundingReport:
    """Check each (claim, cited memory ids) of an interview answer: a claim is grounded
    when it cites at least one id and every id it cites exists in ``memory_ids``."""
    known = set(memory_ids)
    ungrounded = []
    for claim, cited in claims:
        cited = tuple(cited)
        missing = tuple(dict.fromkeys(i for i in cited if i not in known))
        if not cited or missing:
            ungrounded.append(UngroundedClaim(claim=claim, cited=cited, missing=missing))
    total = len(claims)
    grounded = total - len(ungrounded)
    return GroundingReport(share=grounded / total if total else 1.0, grounded=grounded,
                           total=total, ungrounded=tuple(ungrounded))
