"""The simulated translation world: the qsy language, its documents, sim:translator answering
the LongMT prompts, and the policy structure the world exists to show."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from rank_bm25 import BM25Okapi
from typer.testing import CliRunner

from stepwise.agents.longmt.prompts import (
    SYSTEM_PROMPT,
    entities_prompt,
    json_array,
    numbered_lines,
    query_prompt,
    summary_prompt,
    translate_prompt,
)
from stepwise.documents import paginate, split_sentences
from stepwise.memory.translation import EntityRecord
from stepwise.scoring import corpus_bleu
from stepwise.sim.translation import (
    SyntheticDocument,
    TranslatorSimChatModel,
    decode,
    encode,
    english_text,
    make_documents,
    marker_modules,
    reveal,
    write_dataset,
)
from stepwise.sim.translation.language import MARKED
from stepwise.sim.translation.translator import NOT_MINE, READY
from stepwise.tools.longmt.formats import (
    LOOKUP_ENTITIES,
    MODULES,
    NOTHING_FOUND,
    VIEW_PAGES,
    VIEW_SUMMARIES,
    entities_text,
    sentences_text,
    summaries_text,
)

from .conftest import WMT_DOCS

MODEL = TranslatorSimChatModel()
TOOLS = [{"type": "function", "function": {"name": name, "parameters": {}}} for name in MODULES]

# -- the language ------------------------------------------------------------------------


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_decode_inverts_encode_on_ascii(text):
    assert decode(encode(text)) == text
    assert encode(decode(text)) == text


@given(st.text())
def test_decode_inverts_encode_on_any_text(text):
    assert decode(encode(text)) == text


def test_only_ascii_letters_change_and_case_is_kept():
    text = "Thassalin’s 3 jaws, café!"
    coded = encode(text)
    assert coded != text and len(coded) == len(text)
    assert [c.isupper() for c in coded] == [c.isupper() for c in text]
    assert [c for c in coded if not c.isascii() or not c.isalpha()] == \
        [c for c in text if not c.isascii() or not c.isalpha()]
    assert all(a != b for a, b in zip(encode("abcdefghijklmnopqrstuvwxyz"),
                                      "abcdefghijklmnopqrstuvwxyz", strict=True))


def test_marker_modules_on_constructed_lines():
    assert marker_modules(["Dcp ylq fln qpg."]) == []
    assert marker_modules(["Cp nlf ~Dcl lxg ncp nlrg."]) == [LOOKUP_ENTITIES]
    assert marker_modules(["Dcp yqplrdbqp^wqm clg yjop."]) == []  # a gloss explains itself
    assert marker_modules(["Dcp ^wqm clg yjop."]) == [VIEW_SUMMARIES]
    assert marker_modules(["Ncp fln *lsap kaz."]) == [VIEW_PAGES]
    assert marker_modules(["~Dcl lxg ^wqm", "fpxd *lsap kaz."]) == list(MODULES)


# -- the documents -----------------------------------------------------------------------


def bundled_lines(index: int) -> list[str]:
    raw = resources.files("stepwise.sim.translation").joinpath(f"data/doc{index}.txt")
    lines = raw.read_text("utf-8").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


@pytest.mark.parametrize("index", range(6))
def test_bundled_texts_are_the_wmt_english_sides(index):
    original = WMT_DOCS / f"doc{index}.en"
    if not original.exists():
        pytest.skip(f"{original} is not here")
    assert "\n".join(english_text(index)) + "\n" == original.read_text("utf-8")


def test_same_seed_same_documents_other_seed_other_documents():
    first = [doc.model_dump() for doc in make_documents(7, 0)]
    assert first == [doc.model_dump() for doc in make_documents(7, 0)]
    other = [doc.model_dump() for doc in make_documents(7, 1)]
    assert [d["src"] for d in first] != [d["src"] for d in other]
    assert first[0]["terms"] != first[6]["terms"]  # the same text, other seeded choices
    assert first[0]["ref"] == first[6]["ref"]


@pytest.fixture(scope="module")
def worlds() -> list[SyntheticDocument]:
    return [doc for seed in range(4) for doc in make_documents(6, seed)]


def test_references_are_the_bundled_english_and_the_answer_key_gives_them_back(worlds):
    for doc in worlds:
        assert doc.ref == bundled_lines(doc.text)
        assert [reveal(line, doc.terms) for line in doc.src] == doc.ref
        assert not re.search(r"[~^*]", "".join(doc.ref))


def marked_sentences(doc: SyntheticDocument) -> list[tuple[int, re.Match[str]]]:
    """(sentence from 0, marked form) for every marked form, sentences as the agent pages."""
    found, sentence = [], 0
    for line in doc.src:
        for part in split_sentences(line, "qsy"):
            if part.strip():
                found += [(sentence, m) for m in MARKED.finditer(part)]
                sentence += 1
    return found


def test_every_marked_form_is_at_least_gap_sentences_after_its_introduction(worlds):
    for doc in worlds:
        terms = {term.marker: term for term in doc.terms}
        seen: Counter[str] = Counter()
        for sentence, match in marked_sentences(doc):
            if match["word"]:  # a gloss: the introduction of a reference
                assert terms["^" + match["gloss"]].intro == sentence
                continue
            marker = match.group()
            term = terms[marker]
            assert sentence >= term.intro + doc.gap, (doc.id, marker, sentence, term.intro)
            assert sentence in term.uses
            seen[marker] += 1
        assert seen == Counter({t.marker: len(t.uses) for t in doc.terms})


def test_marks_keep_the_sentences_and_pages_of_the_plain_text(worlds):
    for doc in worlds:
        plain = paginate([encode(line) for line in doc.ref], "qsy", page_sentences=5)
        marked = paginate(doc.src, "qsy", page_sentences=5)
        assert [len(p.lines) for p in plain.pages] == [len(p.lines) for p in marked.pages]


def test_pages_need_varied_module_sets(worlds):
    needs = Counter()
    for doc in worlds:
        for page in paginate(doc.src, "qsy", page_sentences=5).pages:
            needs[len(marker_modules(page.lines))] += 1
    total = sum(needs.values())
    assert 0.3 < needs[0] / total < 0.75  # a good share needs nothing
    assert needs[1] / total > 0.2  # many need exactly one module
    assert needs[2] + needs[3] > 0
    kinds = Counter(term.kind for doc in worlds for term in doc.terms)
    assert set(kinds) == {"entity", "reference", "phrase"}


def test_write_dataset_rows_and_world_file(tmp_path):
    docs = make_documents(2, 5)
    path = write_dataset(docs, tmp_path / "out")
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["synth-000", "synth-001"]
    assert rows[0]["src"].split("\n") == docs[0].src and rows[0]["ref"].split("\n") == docs[0].ref
    assert {r["src_lang"] for r in rows} == {"qsy"} and {r["tgt_lang"] for r in rows} == {"en"}
    assert rows[1]["terms"] == [t.model_dump() for t in docs[1].terms]
    world = json.loads((tmp_path / "out" / "world.json").read_text("utf-8"))
    assert world["simulated"] is True and world["seed"] == 5 and world["docs"] == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dataset.jsonl", "world.json"]


# -- sim:translator ----------------------------------------------------------------------


def ask(prompt: str, model: TranslatorSimChatModel = MODEL, **kwargs) -> AIMessage:
    return model.invoke([SystemMessage(SYSTEM_PROMPT), HumanMessage(prompt)], **kwargs)


def translate(lines: list[str], context=(), model: TranslatorSimChatModel = MODEL) -> list[str]:
    answer = ask(translate_prompt(3, 9, "qsy", "en", lines, list(context)), model)
    assert answer.response_metadata == {"model_name": "sim:translator", "simulated": True}
    return numbered_lines(answer.text)


def record(name: str, translation: str) -> EntityRecord:
    return EntityRecord(name=name, translation=translation, type="name", first_page=0)


ENGLISH = ["The dragon circled above Thassalin and the forest.", "Kayel did not agree.",
           "It was not that bad."]
PAGE = [encode(line) for line in ENGLISH]


def test_plain_lines_are_decoded_one_answer_line_per_source_line():
    assert translate(PAGE) == ENGLISH


def test_an_alias_resolves_from_entity_records_and_is_a_wrong_guess_without():
    page = [encode("She looked at ") + "~" + encode("Tha") + encode("'s back.")]
    entities = entities_text([record(encode("Thassalin"), "Thassalin")])
    assert translate(page, [(LOOKUP_ENTITIES, entities)]) == ["She looked at Thassalin's back."]
    assert translate(page) == ["She looked at Tha's back."]
    earlier = sentences_text([(0, 1, encode("Then Thassalin flew."), "Then Thassalin flew.")])
    assert translate(page, [(VIEW_PAGES, earlier)]) == ["She looked at Thassalin's back."]


def test_a_reference_resolves_only_from_a_summary():
    page = [encode("The ") + "^wqm" + encode(" came back.")]
    summaries = summaries_text([(0, "(simulated summary) It began. ^wqm = creature.")])
    assert translate(page, [(VIEW_SUMMARIES, summaries)]) == ["The creature came back."]
    assert translate(page) == ["The it came back."]
    earlier = sentences_text([(0, 0, encode("The creature") + "^wqm", "The creature")])
    entities = entities_text([record("wqm", "creature")])
    wrong = translate(page, [(VIEW_PAGES, earlier), (LOOKUP_ENTITIES, entities)],
                      TranslatorSimChatModel(interference=0))
    assert wrong == ["The it came back."]


def test_a_gloss_explains_itself():
    assert translate([encode("The creature") + "^wqm" + encode(" hissed.")]) == \
        ["The creature hissed."]


def test_a_phrase_resolves_from_an_earlier_sentence():
    page = [encode("She was ") + "*" + encode("able") + encode(" see.")]
    earlier = sentences_text([(1, 2, encode("Nobody was able to fly."), "Nobody was able to fly.")])
    assert translate(page, [(VIEW_PAGES, earlier)]) == ["She was able to see."]
    assert translate(page) == ["She was able see."]


def test_interference_comes_only_from_blocks_that_resolve_nothing():
    page = PAGE + [encode("He saw ") + "~" + encode("Tha") + encode(" again.")]
    entities = (LOOKUP_ENTITIES, entities_text([record(encode("Thassalin"), "Thassalin")]))
    leak = "(simulated summary) Zebras quarrel loudly everywhere."
    summaries = (VIEW_SUMMARIES, summaries_text([(0, leak)]))
    loud = TranslatorSimChatModel(interference=1.0)
    out = translate(page, [entities, summaries], loud)
    assert out == translate(page, [entities, summaries], loud)  # deterministic
    expected = [*ENGLISH, "He saw Thassalin again."]
    changed = [(o, e) for o, e in zip(out, expected, strict=True) if o != e]
    assert len(changed) == len(page)  # every line, from the irrelevant summaries block
    for got, want in changed:
        new = set(got.split()) - set(want.split())
        assert len(new) == 1 and new.pop().strip(".,").lower() in {
            "zebras", "quarrel", "loudly", "everywhere"}
    assert translate(page, [entities], loud) == expected  # the entities block resolved the alias
    assert translate(page, [entities, summaries], TranslatorSimChatModel(interference=0)) == \
        expected


def test_interference_is_a_rate():
    lines = [encode(f"Line {i} of the story goes on and on.") for i in range(200)]
    summaries = (VIEW_SUMMARIES, summaries_text([(0, "(simulated summary) Zebras quarrel.")]))
    out = translate(lines, [summaries], TranslatorSimChatModel(interference=0.3))
    changed = sum(o != decode(line) for o, line in zip(out, lines, strict=True))
    assert 35 < changed < 85


def test_summary_carries_the_glosses_of_its_page():
    source = [encode("The creature") + "^wqm" + encode(" hissed at the dragon.")]
    answer = ask(summary_prompt(0, "en", source, ["The creature hissed at the dragon."])).text
    assert answer.startswith("(simulated summary) The creature hissed")
    assert "^wqm = creature." in answer


def test_entities_are_mid_sentence_names_as_json():
    source = [encode("Thassalin flew to Nyssi and Kayel's car."),
              encode("Then ") + "~" + encode("Tha") + encode(" saw Nyssi.")]
    answer = ask(entities_prompt(2, source, ["x", "y"], [encode("Kayel")])).text
    records = json_array(answer)
    assert [r["name"] for r in records] == [encode("Nyssi")]  # Kayel known, Thassalin first
    assert records[0]["translation"] == "Nyssi" and "page 3" in records[0]["description"]
    assert json_array(ask(entities_prompt(0, ["Dcp ylq."], ["The car."], [])).text) == []


def test_auto_policy_calls_tools_first_then_stops_and_never_on_page_one():
    page = [encode("She saw ") + "~" + encode("Tha") + encode(" and Kayel."),
            encode("The ") + "^wqm" + encode(" was ") + "*" + encode("able") + encode(" fly.")]
    prompt = query_prompt(4, 9, "qsy", "en", page)
    first = ask(prompt, tools=TOOLS)
    calls = {call["name"]: call["args"] for call in first.tool_calls}
    assert set(calls) == set(MODULES)
    assert calls[LOOKUP_ENTITIES]["names"] == [encode("Tha"), encode("Kayel")]
    assert calls[VIEW_PAGES]["query"] == encode("able")
    assert first.tool_calls == ask(prompt, tools=TOOLS).tool_calls
    results = [first, *[ToolMessage("(nothing found)", tool_call_id=c["id"], name=c["name"])
                        for c in first.tool_calls]]
    after = MODEL.invoke([SystemMessage(SYSTEM_PROMPT), HumanMessage(prompt), *results],
                         tools=TOOLS)
    assert not after.tool_calls and after.text == READY
    assert not ask(query_prompt(0, 9, "qsy", "en", page), tools=TOOLS).tool_calls
    only = ask(prompt, tools=TOOLS[2:])
    assert [c["name"] for c in only.tool_calls] == [LOOKUP_ENTITIES]  # only what is bound
    assert ask("What is the weather?").text == NOT_MINE


def test_uri_names_the_translator():
    from stepwise.llm import from_uri

    model = from_uri("sim:translator", interference=0.5)
    assert isinstance(model, TranslatorSimChatModel) and model.interference == 0.5


# -- the structure the world exists to show ----------------------------------------------


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in re.findall(r"[^\W_]+", text)]


def _relevant(pairs, query, k=5):
    wanted = _tokens(query)
    corpus = [_tokens(f"{src} {tgt}") or ["\0"] for _, _, src, tgt in pairs]
    if not pairs:
        return []
    scores = BM25Okapi(corpus).get_scores(wanted)
    shared = [i for i, doc in enumerate(corpus) if set(wanted) & set(doc)]
    return [pairs[i] for i in sorted(sorted(shared, key=lambda i: (-scores[i], i))[:k])]


def _entities_on(records: dict[str, EntityRecord], text: str) -> list[EntityRecord]:
    names = re.findall(r"~?([A-Z][a-z]{2,})", text)
    return [r for r in records.values()
            if re.search(rf"(?<![\w~]){r.name}(?!\w)", text)
            or any(r.name != n and r.name.startswith(n) for n in names)]


def emulate(doc: SyntheticDocument, policy: str, model: TranslatorSimChatModel) -> list[str]:
    """The agent's loop with each module's retrieval emulated: translated lines."""
    pages = paginate(doc.src, "qsy", page_sentences=5).pages
    summaries, records, pairs = [], {}, []
    out_lines = [[] for _ in doc.src]
    for page in pages:
        lines, text = page.lines, "\n".join(page.lines)
        modules = (() if page.number == 0 or policy == "none" else MODULES if policy == "all"
                   else marker_modules(lines) if policy == "oracle" else (policy,))
        bodies = {VIEW_SUMMARIES: summaries_text(summaries),
                  VIEW_PAGES: sentences_text(_relevant(pairs, text)),
                  LOOKUP_ENTITIES: entities_text(_entities_on(records, text))}
        context = [(m, bodies[m]) for m in modules if bodies[m] != NOTHING_FOUND]
        done = numbered_lines(ask(translate_prompt(page.number, len(pages), "qsy", "en", lines,
                                                   context), model).text)
        for sentence, translation in zip([s for s in page.sentences if s.text.strip()], done,
                                         strict=True):
            out_lines[sentence.line].append(translation)
        summaries.append((page.number, ask(summary_prompt(page.number, "en", lines, done)).text))
        for item in json_array(ask(entities_prompt(page.number, lines, done, list(records))).text):
            records.setdefault(item["name"], EntityRecord(first_page=page.number, **item))
        pairs += [(page.number, i, s, t) for i, (s, t) in enumerate(zip(lines, done, strict=True))]
    return [" ".join(parts) for parts in out_lines]


def test_the_oracle_beats_every_fixed_policy_and_all_is_not_the_best():
    docs = make_documents(6, 0)
    refs = [line for doc in docs for line in doc.ref]
    bleu = {policy: corpus_bleu([line for doc in docs for line in emulate(doc, policy, MODEL)],
                                refs, "en")
            for policy in ("none", "all", *MODULES, "oracle")}
    fixed = {p: score for p, score in bleu.items() if p != "oracle"}
    assert bleu["oracle"] >= max(fixed.values()) + 1, bleu
    assert bleu["all"] <= max(s for p, s in fixed.items() if p != "all") - 1, bleu
    assert bleu[LOOKUP_ENTITIES] > bleu["none"], bleu  # memory helps where it is needed


# -- stepwise sim make -------------------------------------------------------------------


def test_cli_sim_make_writes_a_dataset(tmp_path):
    import stepwise.cli.sim  # noqa: F401 -- registers the sim commands
    from stepwise.cli.common import app

    runner = CliRunner()
    result = runner.invoke(app, ["sim", "make", "--world", "translation", "--docs", "3",
                                 "--seed", "2", "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "simulated" in result.output and "entity" in result.output
    rows = [json.loads(line) for line in (tmp_path / "data" / "dataset.jsonl").open()]
    assert [row["world"] for row in rows] == ["translation"] * 3
    assert [row["src"] for row in rows] == ["\n".join(d.src) for d in make_documents(3, 2)]
    bad = runner.invoke(app, ["sim", "make", "--world", "airline", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "Invalid value for '--world': 'airline' is not one of 'translation'" in bad.output
