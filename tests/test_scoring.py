"""Scores agree with sacrebleu, whether from text or from cached statistics; COMET's
worker protocol, entity and term measures, and ``stepwise eval`` as a user meets it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import stepwise.cli.score  # noqa: F401 -- registers ``eval`` on the shared app
from stepwise.cli.common import app
from stepwise.scoring import (
    CometScorer,
    IncrementalScorer,
    ScoringError,
    SegmentStats,
    corpus_bleu,
    corpus_chrf,
    document_bleu,
    entity_consistency,
    join_document,
    term_accuracy,
    tokenizer_for,
)

from .conftest import REPO, WMT_DOCS

DATA = WMT_DOCS
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"needs the WMT24++ lines in {DATA}")
runner = CliRunner()


def perturb(line: str, lang: str, seed: int) -> str:
    """A deterministic imperfect translation: every 7th unit dropped, one pair swapped."""
    units = list(line) if lang == "zh" else line.split()
    units = [u for i, u in enumerate(units) if (i + seed) % 7 != 6]
    if len(units) > 3 and seed % 3 == 0:
        j = seed % (len(units) - 1)
        units[j], units[j + 1] = units[j + 1], units[j]
    return ("" if lang == "zh" else " ").join(units)


def documents(lang: str) -> tuple[list[list[str]], list[list[str]]]:
    """(hypothesis documents, reference documents) from the corpus, in ``lang``."""
    refs = [f.read_text(encoding="utf-8").splitlines() for f in sorted(DATA.glob(f"doc*.{lang}"))]
    hyps = [[perturb(line, lang, i) for i, line in enumerate(doc)] for doc in refs]
    return hyps, refs


def pages_of(lines: list[str], size: int) -> list[list[str]]:
    return [lines[i:i + size] for i in range(0, len(lines), size)]


@needs_data
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_document_score_from_page_statistics_equals_sacrebleu(lang):
    hyp_docs, ref_docs = documents(lang)
    hyps = [line for doc in hyp_docs for line in doc]
    refs = [line for doc in ref_docs for line in doc]
    scorer = IncrementalScorer(lang)
    pages = [scorer.page_stats(h, r) for h, r in zip(pages_of(hyps, 9), pages_of(refs, 9))]
    score = scorer.document_score(pages)

    tokenize = "zh" if lang == "zh" else "13a"
    expected_bleu = sacrebleu.corpus_bleu(hyps, [refs], tokenize=tokenize).score
    expected_chrf = sacrebleu.corpus_chrf(hyps, [refs]).score
    assert 10 < expected_bleu < 95  # the perturbation leaves something to measure
    assert abs(score["bleu"] - expected_bleu) <= 1e-9
    assert abs(score["chrf"] - expected_chrf) <= 1e-9
    assert abs(corpus_bleu(hyps, refs, lang) - expected_bleu) <= 1e-9
    assert abs(corpus_chrf(hyps, refs) - expected_chrf) <= 1e-9


@needs_data
def test_rescoring_after_one_page_changes_recomputes_only_that_page():
    hyp_docs, ref_docs = documents("zh")
    hyp_pages, ref_pages = pages_of(hyp_docs[0], 5), pages_of(ref_docs[0], 5)
    scorer = IncrementalScorer("zh")
    before = [scorer.page_stats(h, r) for h, r in zip(hyp_pages, ref_pages)]
    hyp_pages[2] = list(ref_pages[2])  # page 2 now translated perfectly
    after = [scorer.page_stats(h, r) for h, r in zip(hyp_pages, ref_pages)]
    assert scorer.misses == len(before) + 1 and scorer.hits == len(before) - 1
    assert scorer.document_score(after)["bleu"] > scorer.document_score(before)["bleu"]
    flat = [line for page in hyp_pages for line in page]
    assert abs(scorer.document_score(after)["bleu"]
               - corpus_bleu(flat, ref_docs[0], "zh")) <= 1e-9


words = st.text(alphabet="abcde 的是了，。", min_size=0, max_size=30)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(words, words), min_size=0, max_size=4), min_size=1,
                max_size=5), st.sampled_from(["en", "zh"]))
def test_any_split_into_pages_gives_sacrebleus_corpus_score(pages, lang):
    hyps = [h for page in pages for h, _ in page]
    refs = [r for page in pages for _, r in page]
    if not hyps:
        return
    scorer = IncrementalScorer(lang)
    stats = [scorer.page_stats([h for h, _ in page], [r for _, r in page]) for page in pages]
    assert sum(stats).segments == len(hyps)
    score = scorer.document_score(reversed(stats))  # order of pages does not matter
    assert abs(score["bleu"] - corpus_bleu(hyps, refs, lang)) <= 1e-9
    assert abs(score["chrf"] - corpus_chrf(hyps, refs)) <= 1e-9


def test_segment_stats_add_up_and_a_page_must_be_aligned():
    scorer = IncrementalScorer("en")
    a = scorer.page_stats(["the cat sat"], ["the cat sat"])
    b = scorer.page_stats(["a dog"], ["the dog ran"])
    assert (a + b).segments == 2 and sum([a, b]) == a + b
    assert (a + SegmentStats.empty()) == a
    with pytest.raises(ScoringError, match="2 hypothesis lines but 1 reference"):
        scorer.page_stats(["x", "y"], ["x"])


def test_the_target_language_picks_the_tokenizer():
    assert [tokenizer_for(c) for c in ("zh", "zh-CN", "zh_Hant", "ja", "ko", "th", "en",
                                       "pt-BR", "yue")] == \
        ["zh", "zh", "zh", "char", "char", "char", "13a", "13a", "13a"]
    assert IncrementalScorer("zh").tokenize == "zh"
    # With 13a a Chinese sentence is one "word": scores differ from the zh tokenizer's.
    hyps, refs = ["我们今天去公园散步。"], ["我们今天去公园里散步了。"]
    assert corpus_bleu(hyps, refs, "zh") != corpus_bleu(hyps, refs, "en")


@pytest.mark.parametrize("code", ["Chinese", "z", "zh-", "", "12", "en US"])
def test_a_malformed_language_code_is_a_scoring_error(code):
    with pytest.raises(ScoringError, match="unknown language code"):
        tokenizer_for(code)


@needs_data
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_d_bleu_scores_joined_documents_not_lines(lang):
    hyp_docs, ref_docs = documents(lang)
    joiner = "" if lang == "zh" else " "
    expected = sacrebleu.corpus_bleu([joiner.join(d) for d in hyp_docs],
                                     [[joiner.join(d) for d in ref_docs]],
                                     tokenize="zh" if lang == "zh" else "13a").score
    d_bleu = document_bleu(hyp_docs, ref_docs, lang)
    assert abs(d_bleu - expected) <= 1e-9
    line_bleu = corpus_bleu([x for d in hyp_docs for x in d], [x for d in ref_docs for x in d],
                            lang)
    assert abs(d_bleu - line_bleu) > 0.01
    assert join_document(["你好。", " 再见。"], "zh-CN") == "你好。再见。"
    assert join_document(["Hello.", "Bye. "], "en") == "Hello. Bye."
    # documents need not have aligned lines
    assert document_bleu([hyp_docs[0][:-3]], [ref_docs[0]], lang) < 100


def test_entity_consistency_counts_later_mentions_against_the_first():
    result = entity_consistency([("Thassalin", "萨萨林"), ("Tenuk", "特努克"),
                                 ("Thassalin", "萨萨林"), ("Thassalin", "塔萨林"),
                                 ("Tenuk", "特努克"), ("Thraki", "斯拉克人")])
    assert (result.repeats, result.consistent) == (3, 2)
    assert result.score == pytest.approx(2 / 3)
    assert entity_consistency([]).score == 1.0 and entity_consistency([]).repeats == 0


def test_term_accuracy_counts_source_occurrences_per_line():
    src = ["Thassalin saw the dragon.", "The Dragon and the dragon flew.", "Dragons everywhere.",
           "No terms here."]
    hyp = ["萨萨林看到了龙。", "龙飞走了。", "到处都是龙。", "这里没有术语。"]
    result = term_accuracy(hyp, src, {"Thassalin": "萨萨林", "dragon": "龙"})
    # line 1: both found (2/2); line 2: dragon twice, 龙 once (1/2); "Dragons" is not "dragon"
    assert (result.occurrences, result.matched) == (4, 3)
    assert result.score == pytest.approx(0.75)
    assert term_accuracy(hyp, src, {}).score == 1.0
    with pytest.raises(ScoringError, match="aligned"):
        term_accuracy(hyp[:2], src, {"dragon": "龙"})


# --- COMET: the real client and worker script, with a stand-in ``comet`` package ---------

FAKE_COMET = '''
import os, sys


class Prediction(dict):
    __getattr__ = dict.__getitem__


class Model:
    def predict(self, samples, batch_size=16, gpus=1, progress_bar=True):
        print("lightning chatter on stdout")  # must not reach the protocol channel
        os.write(1, b"C library chatter on fd 1\\n")
        for sample in samples:
            if sample["mt"] == "CRASH":
                sys.stderr.write("RuntimeError: CUDA out of memory\\n")
                sys.stderr.flush()
                os._exit(3)
            if sample["mt"] == "RAISE":
                raise ValueError("cannot score this segment")
        scores = [len(s["mt"]) / (len(s["mt"]) + len(s.get("ref", "")) + 1) for s in samples]
        return Prediction(scores=scores, system_score=sum(scores) / len(scores))


def load_from_checkpoint(path):
    if open(path).read().startswith("BAD"):
        raise RuntimeError("not a COMET checkpoint")
    return Model()
'''


@pytest.fixture()
def comet_env(tmp_path, monkeypatch):
    """A checkpoint file, and this interpreter made able to ``import comet`` (a stand-in)."""
    package = tmp_path / "site" / "comet"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(FAKE_COMET))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_text("weights")
    return checkpoint


def test_comet_scorer_speaks_json_lines_with_its_worker(comet_env):
    with CometScorer(comet_env, sys.executable, gpus=0) as scorer:
        result = scorer.score(src=["Hello.", "Bye."], mt=["你好。", "再见啦"],
                              ref=["您好。", "再见"])
        assert result.scores == [pytest.approx(3 / 7), pytest.approx(3 / 6)]
        assert result.system_score == pytest.approx((3 / 7 + 3 / 6) / 2)
        with pytest.raises(ScoringError, match="COMET: ValueError: cannot score this segment"):
            scorer.score(src=["x"], mt=["RAISE"], ref=["y"])
        assert scorer.score(src=["x"], mt=["ok"]).scores == [pytest.approx(2 / 3)]  # still up
        with pytest.raises(ScoringError, match="aligned"):
            scorer.score(src=["x", "y"], mt=["z"], ref=["w"])


def test_a_crashing_worker_is_a_clear_error(comet_env):
    with CometScorer(comet_env, sys.executable, gpus=0) as scorer:
        with pytest.raises(ScoringError, match=r"exited \(code 3\): RuntimeError: CUDA out of"):
            scorer.score(src=["x"], mt=["CRASH"], ref=["y"])
        with pytest.raises(ScoringError, match="not running"):
            scorer.score(src=["x"], mt=["ok"], ref=["y"])


def test_a_checkpoint_comet_cannot_load_fails_at_start(comet_env):
    comet_env.write_text("BAD")
    with pytest.raises(ScoringError, match="cannot load COMET checkpoint .*not a COMET"):
        CometScorer(comet_env, sys.executable, gpus=0)


def test_comet_python_comes_from_the_environment_variable(comet_env, monkeypatch):
    monkeypatch.setenv("STEPWISE_COMET_PYTHON", sys.executable)
    with CometScorer(comet_env, gpus=0) as scorer:
        assert scorer.python == Path(sys.executable)


def test_comet_setup_mistakes_say_how_to_fix_them(tmp_path, monkeypatch):
    monkeypatch.delenv("STEPWISE_COMET_PYTHON", raising=False)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with pytest.raises(ScoringError, match="does not exist; download Unbabel/wmt22-comet-da"):
        CometScorer(tmp_path / "absent.ckpt", sys.executable)
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_text("weights")
    with pytest.raises(ScoringError, match="python .*nowhere/python does not exist.*venv"):
        CometScorer(checkpoint, tmp_path / "nowhere" / "python")
    with pytest.raises(ScoringError, match="none was given.*STEPWISE_COMET_PYTHON"):
        CometScorer(checkpoint)
    with pytest.raises(ScoringError, match=r"cannot import comet \(ModuleNotFoundError.*"
                                           r"python3 -m venv \.comet-venv"):
        CometScorer(checkpoint, sys.executable)


# --- stepwise eval -------------------------------------------------------------------------

def stepwise_eval(*args: str) -> subprocess.CompletedProcess:
    """``stepwise eval`` in a real process (registered here until stepwise.cli imports it)."""
    code = "import stepwise.cli.score; from stepwise.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, "eval", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def write_docs(folder: Path, docs: list[list[str]], suffix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, lines in enumerate(docs):
        (folder / f"doc{i}.{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@needs_data
def test_eval_on_folders_scores_lines_and_documents(tmp_path):
    hyp_docs, ref_docs = documents("zh")
    hyp = write_docs(tmp_path / "hyp", hyp_docs, "zh")
    ref = write_docs(tmp_path / "ref", ref_docs, "zh")
    done = stepwise_eval("--hyp", hyp, "--ref", ref, "--tgt-lang", "zh")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    hyps, refs = [x for d in hyp_docs for x in d], [x for d in ref_docs for x in d]
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh")
                                           .score, abs=1e-4)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-4)
    assert result["d_bleu"] == pytest.approx(document_bleu(hyp_docs, ref_docs, "zh"), abs=1e-4)
    assert (result["lines"], result["documents"], result["tokenize"]) == (len(hyps), 6, "zh")
    assert "warning" not in result and done.stderr == ""


@needs_data
def test_eval_on_one_file_treats_it_as_one_document(tmp_path):
    hyp_docs, ref_docs = documents("en")
    hyp = write_docs(tmp_path / "hyp", hyp_docs[:1], "en") / "doc0.en"
    ref = write_docs(tmp_path / "ref", ref_docs[:1], "en") / "doc0.en"
    result = runner.invoke(app, ["eval", "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang",
                                 "en"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["documents"] == 1 and row["tokenize"] == "13a"
    assert row["d_bleu"] == pytest.approx(document_bleu(hyp_docs[:1], ref_docs[:1], "en"),
                                          abs=1e-4)
    assert row["d_bleu"] != row["bleu"]


def test_mismatched_line_counts_leave_document_level_scores_with_a_warning(tmp_path):
    (tmp_path / "hyp.txt").write_text("the cat sat on the mat\nit was happy\n")
    (tmp_path / "ref.txt").write_text("the cat sat on the mat\nit was\nvery happy\n")
    done = stepwise_eval("--hyp", tmp_path / "hyp.txt", "--ref", tmp_path / "ref.txt",
                         "--tgt-lang", "en")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["bleu"] is None and result["chrf"] is None and result["d_bleu"] > 0
    assert "2 vs 3 lines" in result["warning"]
    assert done.stderr.startswith("warning:") and done.stderr.count("\n") == 1


def test_an_unknown_language_code_is_one_error_line_and_exit_2(tmp_path):
    (tmp_path / "h.txt").write_text("a\n")
    done = stepwise_eval("--hyp", tmp_path / "h.txt", "--ref", tmp_path / "h.txt",
                         "--tgt-lang", "Chinese")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: unknown language")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("files", "args", "message"), [
    ({"r.txt": "a\n"}, ["--hyp", "h.txt", "--ref", "r.txt"], "hypothesis not found"),
    ({"h.txt": "", "r.txt": "a\n"}, ["--hyp", "h.txt", "--ref", "r.txt"], "is empty"),
    ({"h.txt": "a\n"}, ["--hyp", "h.txt", "--ref", "r.txt"], "reference not found"),
    ({"h.txt": "\xff\n", "r.txt": "a\n"}, ["--hyp", "h.txt", "--ref", "r.txt"], "not UTF-8"),
    ({"d/a.txt": "a\n", "r.txt": "a\n"}, ["--hyp", "d", "--ref", "r.txt"],
     "hypothesis is a folder but the reference is a file"),
    ({"d/a.txt": "a\n", "e/b.txt": "a\n"}, ["--hyp", "d", "--ref", "e"], "no file named a.txt"),
    ({"h.txt": "a\n", "r.txt": "a\n"}, ["--hyp", "h.txt", "--ref", "r.txt", "--comet", "c"],
     "--comet needs --src"),
    ({"h.txt": "a\n", "r.txt": "a\n", "s.txt": "a\nb\n"},
     ["--hyp", "h.txt", "--ref", "r.txt", "--src", "s.txt"], "source and hypothesis lines"),
    ({"h.txt": "a\n", "r.txt": "a\n", "s.txt": "a\n"},
     ["--hyp", "h.txt", "--ref", "r.txt", "--src", "s.txt", "--comet", "absent.ckpt"],
     "COMET needs a local checkpoint"),
    ({"h.txt": "a\n", "r.txt": "a\n", "s.txt": "a\n", "g.json": "[1]"},
     ["--hyp", "h.txt", "--ref", "r.txt", "--src", "s.txt", "--glossary", "g.json"],
     "must be a JSON object"),
])
def test_bad_input_is_one_clear_error(tmp_path, monkeypatch, files, args, message):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(text.encode("latin-1" if "\xff" in text else "utf-8"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["eval", *args, "--tgt-lang", "en"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("error:") == 1


def test_eval_with_glossary_and_comet(tmp_path, comet_env):
    (tmp_path / "src.txt").write_text("The dragon flew.\nThassalin landed.\n")
    (tmp_path / "hyp.txt").write_text("龙飞走了。\n萨林降落了。\n")
    (tmp_path / "ref.txt").write_text("龙飞走了。\n萨萨林降落了。\n")
    (tmp_path / "terms.json").write_text(json.dumps({"dragon": "龙", "Thassalin": "萨萨林"}))
    result = runner.invoke(app, ["eval", "--hyp", str(tmp_path / "hyp.txt"), "--ref",
                                 str(tmp_path / "ref.txt"), "--src", str(tmp_path / "src.txt"),
                                 "--tgt-lang", "zh", "--glossary", str(tmp_path / "terms.json"),
                                 "--comet", str(comet_env), "--comet-python", sys.executable])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["term_accuracy"] == 0.5 and row["term_occurrences"] == 2
    assert row["comet"] == pytest.approx((5 / 11 + 6 / 14) / 2, abs=1e-4)
