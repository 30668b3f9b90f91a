"""A run folder resumes only with the settings it was started with.

Explore's run.json, the loop's loop.json and translate's finished documents each keep the
settings that made them; a command asked with other ones must not mix its results into
theirs. The check is here once, so every command refuses the same way and names the first
setting that differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stepwise.errors import StepwiseError
from stepwise.jsonl import read_json

MISSING = object()


def as_saved(settings: Any) -> Any:
    """``settings`` as a JSON file gives them back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(settings, ensure_ascii=False))


def first_difference(saved: dict[str, Any], asked: dict[str, Any],
                     prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first key (in sorted order, nested ones as ``a.b``) whose value differs, with
    the saved and the asked value (``MISSING`` where one side lacks it); None if none does."""
    for key in sorted(set(saved) | set(asked)):
        before, now = saved.get(key, MISSING), asked.get(key, MISSING)
        if isinstance(before, dict) and isinstance(now, dict):
            if (found := first_difference(before, now, f"{prefix}{key}.")) is not None:
                return found
        elif before != now:
            return f"{prefix}{key}", before, now
    return None


def shown(value: Any) -> str:
    return "nothing" if value is MISSING else json.dumps(value, ensure_ascii=False)


def check_same_settings(folder: Path, saved: dict[str, Any], asked: dict[str, Any], what: str) -> None:
    """Refuse, in one line naming the first differing key, a ``folder`` whose ``what``
    (a run, a loop, a translation) was made with settings other than ``asked``."""
    found = first_difference(as_saved(saved), as_saved(asked))
    if found is not None:
        key, before, now = found
        raise StepwiseError(f"{folder} holds a {what} with other settings ({key}: saved "
                            f"{shown(before)}, asked {shown(now)}); use another --out or the "
                            "same options")


def check_saved_settings(path: Path, asked: dict[str, Any], what: str) -> None:
    """``check_same_settings`` against the settings file ``path`` (in the run folder), when
    there is one; a file that holds no settings object is refused naming it."""
    if not path.is_file():
        return
    saved = read_json(path)
    if not isinstance(saved, dict):
        raise StepwiseError(f"{path}: not a {what}'s settings (a JSON object); use another "
                            "--out")
    check_same_settings(path.parent, saved, asked, what)
