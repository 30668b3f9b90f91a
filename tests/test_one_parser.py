"""One reading of tiny model URIs and one of language codes: every form an older copy
took gives the answer it gave."""

from __future__ import annotations

import pytest

from stepwise.documents.language_codes import base_language
from stepwise.documents.sentences import language_family
from stepwise.errors import ModelURIError, StepwiseError
from stepwise.llm.uri import tiny_seed
from stepwise.scoring import ScoringError, line_joiner, tokenizer_for


@pytest.mark.parametrize(("uri", "seed"), [
    ("tiny", 0), ("tiny:", 0), ("tiny:0", 0), ("tiny:3", 3), ("tiny:007", 7),
    ("hf:tiny", None), ("hf:/models/tiny", None), ("tinyllama", None), ("sim:echo", None),
])
def test_a_tiny_uri_names_its_seed(uri, seed):
    assert tiny_seed(uri) == seed


def test_a_tiny_uri_with_no_number_is_one_error_naming_it():
    with pytest.raises(ModelURIError, match=r"^tiny:x: the tiny model takes an integer seed"):
        tiny_seed("tiny:x")


@pytest.mark.parametrize(("code", "base"), [
    ("en", "en"), ("zh", "zh"), ("zh-CN", "zh"), ("zh_Hant", "zh"), ("pt-BR", "pt"),
    ("en_US", "en"), ("yue", "yue"), ("qsy", "qsy"), ("EN", "en"), (" zh-CN ", "zh"),
    ("ZH_hant", "zh"),
])
def test_every_form_of_a_code_gives_its_language(code, base):
    assert base_language(code) == base


def test_sentences_and_scoring_read_codes_alike():
    for code in ("zh", "ZH", " zh-CN", "zh_Hant"):
        assert (language_family(code), tokenizer_for(code), line_joiner(code)) == \
            ("cjk", "zh", "")
    for code in ("en", "EN", "en_US "):
        assert (language_family(code), tokenizer_for(code), line_joiner(code)) == \
            ("latin", "13a", " ")


@pytest.mark.parametrize("code", ["Chinese", "z", "zh-", "", "12", "en US", "klingon"])
def test_a_malformed_code_is_the_same_error_everywhere(code):
    message = f"unknown language code {code!r}: expected 2-3 letters"
    with pytest.raises(StepwiseError, match=message):
        language_family(code)
    with pytest.raises(ScoringError, match=message):
        tokenizer_for(code)
