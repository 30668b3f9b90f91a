"""The LongMT agent: policies, memory tools, retries and splits, bad model output."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from stepwise.agents.longmt import LongMTAgent, Policy
from stepwise.agents.longmt.agent import assemble_lines
from stepwise.agents.longmt.prompts import (
    ENTITIES_HEAD,
    NO_MODULES_REPLY,
    QUERY_HEAD,
    SUMMARY_HEAD,
    TRANSLATE_HEAD,
    blocks,
    json_array,
    numbered_lines,
)
from stepwise.documents import paginate
from stepwise.errors import ConfigError, ModelBackendError, StepwiseError
from stepwise.memory.translation import EntityUpdate, PageRecord, TranslationMemory
from stepwise.testing.responding import RespondingChatModel
from stepwise.testing.scripted import ai
from stepwise.tools.executor import run_tool_calls
from stepwise.tools.longmt.formats import context_blocks
from stepwise.tools.longmt.modules import PageView, memory_tools

LINES = [
    "Anna met Boris in Vienna. They talked about the old bridge.",
    "The bridge had been built by Anna's grandfather.",
    "Boris wanted to paint the bridge. Anna laughed.",
    "Later that year the bridge was closed for repairs.",
    "Anna wrote to Boris about the closure. He did not answer.",
]


def last_prompt(messages) -> str:
    return next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))


def echo_translator(prefix: str = "T:", entities: str = "[]"):
    """Translates a line as ``T:<line>``; summaries and entities by rule."""

    def respond(messages, tools):
        prompt = last_prompt(messages)
        if prompt.startswith(TRANSLATE_HEAD):
            return "\n".join(f"{i}. {prefix}{line}"
                             for i, line in enumerate(blocks(prompt)["page"], 1))
        if prompt.startswith(SUMMARY_HEAD):
            return "summary of " + blocks(prompt)["translation"][0]
        if prompt.startswith(ENTITIES_HEAD):
            return entities
        return NO_MODULES_REPLY  # a decision turn: the documented "no modules" reply

    return respond


def test_policies_parse_and_refuse_bad_ones():
    assert Policy.parse("none").modules_for(3, []) == ()
    assert Policy.parse("all").modules_for(3, []) == ("view_summaries", "view_pages",
                                                      "lookup_entities")
    assert Policy.parse("only:entities").modules_for(1, []) == ("lookup_entities",)
    assert Policy.parse("only:view_pages").modules_for(1, []) == ("view_pages",)
    fixed = Policy.parse("fixed:none;entities+summaries")
    assert fixed.modules_for(1, []) == ("view_summaries", "lookup_entities")
    assert fixed.modules_for(7, []) == ()
    assert Policy.fixed([[], ["lookup_entities", "view_pages"]]).text == \
        "fixed:none;view_pages+lookup_entities"
    world = SimpleNamespace(marker_modules=lambda lines: ["lookup_entities", "view_pages"])
    best = [("view_pages", "lookup_entities"), ("view_pages",), ("lookup_entities",)]
    assert Policy.parse("oracle").modules_for(1, ["x"], world, best=lambda: best) == \
        ("view_pages",)  # the cheapest best set: fewest modules, then the tools' order
    assert Policy.parse("markers").modules_for(1, ["x"], world) == \
        ("view_pages", "lookup_entities")
    assert Policy.parse("oracle").needs_world and not Policy.parse("auto").needs_world
    assert Policy.parse("auto").decides
    for bad in ("sometimes", "only:", "only:glossary", "fixed:entities+nope"):
        with pytest.raises(ConfigError):
            Policy.parse(bad)
    for kind in ("oracle", "markers"):
        with pytest.raises(ConfigError, match="world"):
            Policy.parse(kind).modules_for(1, [], None)


def memory_after_two_pages() -> TranslationMemory:
    memory = TranslationMemory.empty()
    memory = memory.with_page(PageRecord(number=0, source=("Anna met Boris.", "It rained."),
                                         translation=("A met B.", "Rain.")))
    memory = memory.with_summary(0, "Anna and Boris meet.")
    memory = memory.with_entities([EntityUpdate(name="Boris", translation="Борис")], 0)
    memory = memory.with_page(PageRecord(number=1, source=("The bridge fell.", "Nobody cared."),
                                         translation=("Bridge fell.", "None cared.")))
    return memory.with_summary(1, "The bridge falls.")


def test_memory_tools_read_only_earlier_pages_and_say_what_is_wrong():
    view = PageView(memory_after_two_pages(), page=2, page_text="Boris crossed the bridge.")
    tools = memory_tools(view)
    calls = ai("", ("view_summaries", {"pages": [2]}), ("view_pages", {"query": "bridge"}),
               ("view_pages", {"query": "bridge", "pages": [3]}),
               ("lookup_entities", {}), ("lookup_entities", {"names": ["Bor"]}),
               ("view_summaries", {"pages": "two"}), ("translate", {}))
    replies = run_tool_calls(calls, tools)
    assert replies[0].text == "Page 2: The bridge falls."
    assert replies[1].text == "Page 2, line 1: The bridge fell. => Bridge fell."  # not the page
    assert replies[2].status == "error" and "earlier pages are 1 to 2" in replies[2].text
    assert replies[3].text == replies[4].text == "Boris => Борис"
    assert replies[5].status == "error" and "pages" in replies[5].text
    assert replies[6].status == "error" and "no tool named 'translate'" in replies[6].text

    first = memory_tools(PageView(TranslationMemory.empty(), page=0, page_text="x"))
    reply = run_tool_calls(ai("", ("view_summaries", {"pages": [1]})), first)[0]
    assert reply.status == "error" and "first page" in reply.text


def test_every_policy_translates_every_sentence_in_line_order():
    model = RespondingChatModel(respond=echo_translator())
    for policy in ("none", "all", "only:pages", "fixed:none;entities"):
        result = LongMTAgent(model, policy=policy, page_sentences=2).translate(
            LINES, src="en", tgt="en")
        assert result.lines == [
            " ".join("T:" + s.strip() for s in paginate([line], "en", page_sentences=9)
                     .pages[0].lines) for line in LINES]
        assert [s["page"] for s in result.steps] == list(range(4))
        assert result.memory.page_count == 4 and len(result.memory.summaries) == 4
    modules = [[m["tool"] for m in s["modules"]] for s in result.steps]
    assert modules == [[], ["lookup_entities"], [], []]  # fixed:none;entities, nothing after


def test_rule_policy_context_reaches_the_translation_prompt():
    entities = '[{"name": "Anna", "translation": "Анна", "type": "person"}]'
    model = RespondingChatModel(respond=echo_translator(entities=entities))
    result = LongMTAgent(model, policy="all", page_sentences=2).translate(LINES, src="en",
                                                                          tgt="ru")
    prompts = [last_prompt(c["messages"]) for c in model.calls
               if last_prompt(c["messages"]).startswith(TRANSLATE_HEAD)]
    assert context_blocks(prompts[0]) == {}  # nothing to remember on the first page
    later = context_blocks(prompts[2])
    assert later["lookup_entities"] == "Anna => Анна (person)"
    assert later["view_summaries"].startswith("Page 1: summary of T:Anna met Boris")
    assert "Page 1, line 2: They talked about the old bridge." in later["view_pages"]
    assert result.steps[2]["context_tokens"] > 0
    assert result.memory.entities["Anna"].mentions == (0, 1, 2, 3)


def test_broken_alignment_is_retried_then_split():
    def drops_lines(messages, tools):
        prompt = last_prompt(messages)
        if not prompt.startswith(TRANSLATE_HEAD) and not prompt.startswith("Your answer"):
            return "[]"
        lines = blocks(next(m.text for m in messages if m.text.startswith(TRANSLATE_HEAD)))["page"]
        if len(lines) > 1:  # always one line short: retried, then split down to single lines
            lines = lines[:-1]
        return "\n".join(f"{i}. X" for i in range(1, len(lines) + 1))

    result = LongMTAgent(RespondingChatModel(respond=drops_lines), page_sentences=4).translate(
        LINES, src="en", tgt="en")
    first = result.steps[0]
    assert first["sentences"] == 4 and first["translation"] == ["X"] * 4
    assert first["splits"] == 3 and first["attempts"] == 2 + 2 * 2 + 4
    assert len(result.lines) == len(LINES)


def test_an_unusable_single_line_answer_is_kept_and_counted():
    def unnumbered(messages, tools):
        prompt = last_prompt(messages)
        return "[]" if prompt.startswith((SUMMARY_HEAD, ENTITIES_HEAD)) else "just some words"

    result = LongMTAgent(RespondingChatModel(respond=unnumbered), page_sentences=1).translate(
        ["One sentence only."], src="en", tgt="en")
    assert result.lines == ["just some words"]
    assert result.steps[0]["unaligned"] == 1 and result.steps[0]["attempts"] == 2


def test_auto_policy_model_errors_become_messages_it_reads():
    def decider(messages, tools):
        if isinstance(messages[-1], AIMessage) or messages[-1].type == "tool":
            return "ready"
        return ai("", ("view_pages", {"query": "bridge", "pages": [9]}),
                  ("view_summaries", {"pages": [1]}), ("guess", {}), invalid=['{"names": ['])

    translator = RespondingChatModel(respond=echo_translator())
    policy_model = RespondingChatModel(respond=decider)
    result = LongMTAgent(translator, policy="auto", policy_model=policy_model,
                         page_sentences=2).translate(LINES, src="en", tgt="en")
    step = result.steps[1]
    assert step["decided_by"] == "model"
    assert [m["status"] for m in step["modules"]] == ["error", "ok", "error", "error"]
    assert step["decision_errors"] == 3
    second_round = policy_model.calls[1]["messages"]
    assert any("not an earlier page" in m.text for m in second_round if m.type == "tool")
    assert set(policy_model.calls[0]["tools"]) == {"view_summaries", "view_pages",
                                                   "lookup_entities"}
    assert len(policy_model.calls) == 3 * 2  # pages 2 to 4, two rounds each (page 1: none)
    assert result.steps[0]["decided_by"] == "first page"
    prompt = last_prompt(policy_model.calls[0]["messages"])
    assert prompt.startswith(QUERY_HEAD)


def test_entity_answers_that_do_not_parse_insert_nothing():
    model = RespondingChatModel(respond=echo_translator(entities="I found Anna and Boris."))
    result = LongMTAgent(model, page_sentences=5).translate(LINES, src="en", tgt="en")
    assert result.memory.entities == {}
    assert result.steps[0]["updates"][1]["error"] == "no JSON array in the answer"
    mixed = '[{"name": "Anna", "translation": "A"}, {"name": "Boris"}, "x"]'
    model = RespondingChatModel(respond=echo_translator(entities=mixed))
    result = LongMTAgent(model, page_sentences=5).translate(LINES, src="en", tgt="en")
    assert list(result.memory.entities) == ["Anna"]
    assert result.steps[0]["updates"][1]["error"] == "2 of 3 records unusable"


def test_lines_reassemble_with_the_target_languages_joiner():
    doc = paginate(["一。二。", "", "三。"], "zh", page_sentences=2)
    assert assemble_lines(doc, [["A", "B"], ["C"]], "zh") == ["AB", "", "C"]
    assert assemble_lines(doc, [["A", "B"], ["C"]], "en") == ["A B", "", "C"]


def test_bad_documents_fail_with_one_clear_line():
    model = RespondingChatModel(respond=echo_translator())
    with pytest.raises(StepwiseError, match="empty"):
        LongMTAgent(model).translate(["", "  "], src="en", tgt="zh")
    with pytest.raises(StepwiseError, match="unknown language code"):
        LongMTAgent(model).translate(["Hello."], src="xx", tgt="zh")
    with pytest.raises(ConfigError, match="world"):
        LongMTAgent(model, policy="oracle").translate(["Hello."], src="en", tgt="zh")


def test_prompt_parsing_helpers():
    assert numbered_lines("1. a\nnoise\n2) b\n3、c\n2. again") == ["a", "b", "c"]
    assert json_array('Here: ```json\n[{"name": "A"}]\n```') == [{"name": "A"}]
    assert json_array("[not json] then [1, 2]") == [1, 2]
    assert json_array("{}") is None


def test_a_model_moves_page_breaks_without_losing_a_sentence():
    from stepwise.documents.adjust import BREAK_HEAD, adjust_breaks

    text = ["One. Two. Three. Four.", "Five? Six. Seven. Eight."]
    doc = paginate(text, "en", page_sentences=3)  # [1 2 3] [4 5 6] [7 8]
    answers = iter(["2", "I would end it after sentence 4."])
    model = RespondingChatModel(respond=lambda messages, tools: next(answers))
    adjusted, decisions = adjust_breaks(doc, model)
    assert [p.lines for p in adjusted.pages] == [["One.", "Two."],
                                                 ["Three.", "Four.", "Five?", "Six.", "Seven."],
                                                 ["Eight."]]
    assert [d.moved for d in decisions] == [1, -1]
    assert adjusted.joined_pages() == doc.text
    assert last_prompt(model.calls[0]["messages"]).startswith(BREAK_HEAD)
    two = paginate(["Yes. No."], "en", page_sentences=1)
    for answer in ("1", "no idea", "7"):  # would empty a page, does not parse, out of range
        model = RespondingChatModel(respond=lambda messages, tools, answer=answer: answer)
        kept, decisions = adjust_breaks(two, model)
        assert [p.lines for p in kept.pages] == [["Yes."], ["No."]] and decisions[0].moved == 0


def test_unusable_policy_decisions_fall_back_to_the_stated_modules_and_are_counted():
    answers = {  # page text marker -> how the policy model misbehaves on that page
        "Page3": lambda: ai("", ("guess", {}), invalid=['{"names": [']),
        "Page4": lambda: "",
        "Page5": lambda: (_ for _ in ()).throw(ModelBackendError("context too long")),
        "Page6": lambda: "nothing needed here",  # prose, not the no-modules reply
        "Page7": lambda: "No modules.",  # the documented reply, in its own case and stop
    }

    def decider(messages, tools):
        if isinstance(messages[-1], AIMessage) or messages[-1].type == "tool":
            return "ready"
        prompt = last_prompt(messages)
        return next((answer() for marker, answer in answers.items() if marker in prompt),
                    ai("", ("view_summaries", {})))

    lines = [f"Page{i} sentence." for i in range(1, 8)]
    translator = RespondingChatModel(respond=echo_translator())
    result = LongMTAgent(translator, policy="auto", page_sentences=1, fallback="summaries",
                         policy_model=RespondingChatModel(respond=decider)).translate(
        lines, src="en", tgt="en")
    by_page = {step["page"]: step for step in result.steps}
    assert by_page[1]["decided_by"] == "model"  # a good call
    assert [m["tool"] for m in by_page[1]["modules"]] == ["view_summaries"]
    for page, reason in ((2, "no tool call could be run"), (3, "an empty answer"),
                         (4, "the model failed: context too long")):
        assert by_page[page]["decided_by"] == "fallback"
        assert by_page[page]["fallback_reason"].startswith(reason)
        assert [(m["tool"], m["status"]) for m in by_page[page]["modules"]] == [
            ("view_summaries", "ok")]
    assert by_page[2]["decision_errors"] == 2  # the unknown tool and the malformed call
    assert by_page[5]["decided_by"] == "fallback"
    assert by_page[5]["fallback_reason"] == "neither a tool call nor the no-modules reply"
    assert by_page[6]["decided_by"] == "model" and by_page[6]["modules"] == []  # reply: none
    assert result.totals()["fallbacks"] == 4
