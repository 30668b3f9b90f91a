"""Properties that must hold for any input a model or a caller can produce."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage

from stepwise.llm.messages import canonical_request, request_key
from stepwise.llm.tool_calls import parse_hermes_tool_calls

model_text = st.text(alphabet=st.sampled_from(list('<>/tool_call{}":, ab[]1\n')), max_size=120)


@given(model_text)
@settings(max_examples=300)
def test_hermes_parsing_never_raises_and_accounts_for_every_block(text):
    content, calls, invalid = parse_hermes_tool_calls(text)
    assert len(calls) + len(invalid) == text.count("<tool_call>")
    assert "<tool_call>" not in content
    assert all(isinstance(call["args"], dict) for call in calls)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@given(st.text(max_size=30), st.dictionaries(st.sampled_from(["temperature", "seed", "n", "x"]),
                                             json_value, max_size=4), st.text(max_size=8))
def test_request_key_ignores_ids_and_param_order(text, params, message_id):
    plain = [HumanMessage(text), AIMessage("ok")]
    tagged = [HumanMessage(text, id=message_id or None), AIMessage("ok", id="x")]
    reordered = dict(reversed(list(params.items())))
    assert request_key(canonical_request(plain, params)) == request_key(
        canonical_request(tagged, reordered))
