"""Batched local rollouts in the explorer: ``EnvSpec.batch`` puts a local model (and a
local deciding model) behind a ``BatchingChatModel``, inside the request cache, and the
search it drives is the one it drives unbatched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from stepwise.agents.environments import MAX_BATCH, EnvSpec
from stepwise.llm.batching import BatchingChatModel
from stepwise.llm.cache import CachingChatModel
from stepwise.search.options import ExploreOptions
from stepwise.search.run import explore_tasks

DOCS = [(["A dog ran.", "Birds sang.", "The sun rose.", "All slept."],
         ["Ein Hund lief.", "Vögel sangen.", "Die Sonne ging auf.", "Alle schliefen."]),
        (["The cat sat.", "It rained.", "We left.", "Night fell."],
         ["Die Katze saß.", "Es regnete.", "Wir gingen.", "Es wurde Nacht."])]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("docs") / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "src": src, "ref": ref, "src_lang": "en",
                                        "tgt_lang": "de"}) + "\n"
                            for i, (src, ref) in enumerate(DOCS)), encoding="utf-8")
    return path


def spec(dataset: Path, **fields) -> EnvSpec:
    return EnvSpec(env="longmt", dataset=str(dataset), model="tiny", page_sentences=1,
                   model_kwargs=json.dumps({"max_tokens": 8}), **fields)


def test_batch_puts_local_models_behind_the_queue_inside_the_cache(dataset, tiny_path):
    make_env, model = spec(dataset, batch=4, rollout="auto", policy_model="tiny").factory()
    assert isinstance(model, CachingChatModel) and isinstance(model.model, BatchingChatModel)
    assert model.model.max_batch == 4
    decider = make_env("d0").steps.policy_model
    assert isinstance(decider, CachingChatModel) and isinstance(decider.model, BatchingChatModel)
    assert spec(dataset, batch=64).factory()[1].model.max_batch == MAX_BATCH
    for unbatched in (spec(dataset), spec(dataset, batch=1)):
        assert not isinstance(unbatched.factory()[1].model, BatchingChatModel)
    simulated = EnvSpec(env="think", dataset="airline", model="sim:airline-oracle", batch=4)
    assert not isinstance(simulated.factory()[1].model, BatchingChatModel)  # nothing to batch
    with pytest.raises(ValidationError):
        spec(dataset, batch=0)


def test_a_batched_explore_gives_the_trees_and_pairs_of_an_unbatched_one(dataset, tiny_path,
                                                                         tmp_path):
    runs = {}
    for batch in (None, 4):
        make_env, model = spec(dataset, batch=batch).factory()
        out = tmp_path / str(batch)
        explore_tasks(["d0", "d1"], make_env, ExploreOptions(simulations=8, parallel=2), out,
                      env_name="longmt", workers=2)
        runs[batch] = (out, model.counts)
    (plain, plain_counts), (batched, batched_counts) = runs[None], runs[4]
    assert batched_counts == plain_counts
    assert (batched / "pairs.jsonl").read_bytes() == (plain / "pairs.jsonl").read_bytes()
    for task in ("d0", "d1"):
        tree = (batched / "trees" / f"{task}.json").read_bytes()
        assert tree == (plain / "trees" / f"{task}.json").read_bytes()
        assert json.loads(tree)["nodes"][0]["visits"] == 8
