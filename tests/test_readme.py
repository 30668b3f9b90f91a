"""The README's commands are the ones CI and users actually run."""

from __future__ import annotations

import re

from .conftest import REPO


def fenced_bash(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)]


def test_ci_runs_exactly_the_readme_test_command():
    readme = fenced_bash((REPO / "README.md").read_text())
    ci_lines = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert readme[1] in ci_lines
    assert readme[1].endswith("python -m pytest")
    # After it, only the real model's tests, which the default run leaves out.
    assert ci_lines[-1].endswith("python -m pytest -m real_model")


def test_torch_is_pinned_before_anything_that_needs_it():
    for command in fenced_bash((REPO / "README.md").read_text())[:2]:
        assert command.index("torch==2.13.0") < command.index(
            '-e ".[hf,train,embed,distributed,real,dev]"')


def test_the_think_agent_example_runs_as_written(tmp_path, monkeypatch):
    """The README's Python example, with a scripted model standing in for the server."""
    import stepwise.llm
    from stepwise.testing.scripted import ScriptedChatModel, ai

    text = (REPO / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if "ThinkAgent" in b]
    (prompt,) = re.findall(r"```markdown\n(.*?)```", text, re.DOTALL)
    (tmp_path / "critic.md").write_text(prompt)
    scripted = ScriptedChatModel(
        answers=[ai("", ("forecast", {"city": "Paris"})),
                 ai("", ("critic", {"request": "Take an umbrella."})),
                 ai("Yes: rain is forecast, 14°C.")],
        plain_answers=["It leaves out the temperature."])
    monkeypatch.setattr(stepwise.llm, "from_uri", lambda *a, **k: scripted)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 -- our own README
    run = scope["run"]
    assert run.answer.startswith("Yes: rain")
    assert run.thoughts[0]["tool"] == "critic"
    assert run.thoughts[0]["thought"] == "It leaves out the temperature."
    assert run.metrics.think_rate == 1 / 3
