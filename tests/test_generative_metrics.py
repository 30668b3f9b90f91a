"""Generative-agent metrics on hand-computed cases: information diffusion, network density
(eta = 2|E| / (|V|(|V| - 1))), who-knows-whom edges from memories, and claim grounding."""

from __future__ import annotations

import pytest

from stepwise.agents.generative.metrics import (
    diffusion_report,
    grounding,
    information_diffusion,
    keyword_judge,
    network_density,
    relationship_edges,
)
from stepwise.sim.sandbox import bundled_world

ANSWERS = {
    "Isabella Rodriguez": "I'm hosting a Valentine's Day party at Hobbs Cafe on Feb 14 at 5pm!",
    "Maria Lopez": "Isabella told me about a VALENTINE'S party at the cafe tomorrow.",
    "Klaus Mueller": "I have been busy with my research paper on gentrification.",
    "Sam Moore": "",
}


# Information diffusion


def test_keywords_in_a_string_must_all_appear_ignoring_case():
    report = diffusion_report(ANSWERS, "valentine party")
    assert report.knowers == ("Isabella Rodriguez", "Maria Lopez")
    assert report.agents == ("Isabella Rodriguez", "Klaus Mueller", "Maria Lopez", "Sam Moore")
    assert report.share == 0.5
    assert information_diffusion(ANSWERS, "valentine party") == 0.5


def test_keyword_sequence_keeps_phrases_whole():
    assert diffusion_report(ANSWERS, ["Hobbs Cafe", "5pm"]).knowers == ("Isabella Rodriguez",)
    # As a string, "Hobbs Cafe" is two keywords, and Maria's answer lacks "hobbs".
    assert information_diffusion(ANSWERS, "party cafe") == 0.5
    assert information_diffusion(ANSWERS, "hobbs cafe party") == 0.25


def test_function_judge_and_empty_answers():
    calls = []

    def knows(answer: str) -> bool:
        calls.append(answer)
        return "party" in answer.lower()

    assert information_diffusion(ANSWERS, knows) == 0.5
    assert "" not in calls  # an empty answer never counts as knowing
    assert information_diffusion({"A": "a party", "B": "   "}, lambda _: True) == 0.5


def test_no_agents_and_bad_keywords():
    assert information_diffusion({}, "party") == 0.0
    assert diffusion_report({}, "party").knowers == ()
    for bad in ("", "   ", [], ["party", ""]):
        with pytest.raises(ValueError, match="keywords"):
            keyword_judge(bad)


# Network density


@pytest.mark.parametrize(("agents", "edges", "density"), [
    (["a", "b", "c"], [("a", "b"), ("b", "c")], 2 / 3),
    (["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "d")], 0.5),
    (["a", "b", "c", "d"], [(x, y) for x in "abcd" for y in "abcd" if x < y], 1.0),
    (["a", "b"], [], 0.0),
    ([f"agent {i}" for i in range(25)],  # the paper's scale: 25 agents
     [(f"agent {i}", f"agent {j}") for i in range(25) for j in range(i + 1, 25)][:50],
     100 / 600),
])
def test_density_on_hand_computed_graphs(agents, edges, density):
    assert network_density(agents, edges) == pytest.approx(density)


def test_density_of_three_agents_two_edges_rounds_to_0_667():
    assert round(network_density(["a", "b", "c"], [("a", "b"), ("a", "c")]), 3) == 0.667


def test_duplicate_and_reversed_edges_and_self_loops_count_nothing():
    edges = [("a", "b"), ("b", "a"), ("a", "b"), ("c", "c"), ("a", "a")]
    assert network_density(["a", "b", "c"], edges) == pytest.approx(1 / 3)
    assert network_density(["a", "b", "c"], iter(edges)) == pytest.approx(1 / 3)


def test_fewer_than_two_agents_is_zero():
    assert network_density([], []) == 0.0
    assert network_density(["a"], [("a", "a")]) == 0.0


def test_edge_to_an_unknown_agent_is_an_error():
    with pytest.raises(ValueError, match="'z', who is not among the agents"):
        network_density(["a", "b"], [("a", "z")])


# Who knows whom


def test_party_world_memories_give_two_edges_and_density_two_thirds():
    party = bundled_world("party")
    memories = {name: agent.memories for name, agent in party.agents.items()}
    edges = relationship_edges(memories)
    assert edges == [("Isabella Rodriguez", "Maria Lopez"), ("Klaus Mueller", "Maria Lopez")]
    assert round(network_density(list(memories), edges), 3) == 0.667


def test_first_names_count_unless_shared_or_full_names_asked():
    memories = {
        "Maria Lopez": ["Had coffee with Klaus this morning."],
        "Klaus Mueller": ["Studied alone."],
        "Isabella Rodriguez": ["Sam Moore's campaign posters are up."],
        "Sam Moore": ["Sam is my own name."],
        "Sam Lee": ["Planted tulips."],
    }
    assert relationship_edges(memories) == [("Isabella Rodriguez", "Sam Moore"),
                                            ("Klaus Mueller", "Maria Lopez")]
    assert relationship_edges(memories, names="full") == [("Isabella Rodriguez", "Sam Moore")]


def test_names_match_whole_words_with_case():
    memories = {
        "May Chen": ["I met Ann at the park."],
        "Ann Ito": ["I may go to the cafe.", "Mariano says hi.", "Annual report due."],
        "Maria Lopez": ["Nothing to report."],
    }
    assert relationship_edges(memories) == [("Ann Ito", "May Chen")]
    assert relationship_edges({"A B": [], "C D": ["met A B"]}, names="full") == [("A B", "C D")]


# Grounding


def test_grounding_reports_uncited_and_unknown_ids():
    claims = [
        ("Isabella is hosting a party", [1, 4]),
        ("The party is at 5pm", [4]),
        ("Klaus is coming", []),
        ("There will be cake", [4, 9, 9, 12]),
    ]
    report = grounding(claims, memory_ids={1, 2, 3, 4})
    assert (report.grounded, report.total, report.share) == (2, 4, 0.5)
    assert [(c.claim, c.missing) for c in report.ungrounded] == [
        ("Klaus is coming", ()), ("There will be cake", (9, 12))]
    assert report.ungrounded[0].reason == "cites no memory"
    assert report.ungrounded[1].reason == "cites unknown memory ids 9, 12"
    assert report.ungrounded[1].cited == (4, 9, 9, 12)


def test_grounding_edge_cases():
    assert grounding([("a fact", [7])], []).share == 0.0
    assert grounding([("a fact", (7,))], range(10)).share == 1.0
    empty = grounding([], {1})
    assert (empty.share, empty.total, empty.ungrounded) == (1.0, 0, ())
