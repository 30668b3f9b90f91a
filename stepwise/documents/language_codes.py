"""Language codes such as ``en``, ``zh-CN`` or ``pt_BR``: the one reading of them, for
sentence splitting, BLEU's tokenizer and the names prompts give languages.

A code is a language subtag of 2-3 letters, then optional script or region subtags joined
by ``-`` or ``_``. Case and surrounding spaces do not matter (BCP 47 ignores case, and
``EN`` typed on a command line means English); anything else is a malformed code.
"""

from __future__ import annotations

import re

from stepwise.errors import StepwiseError

_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*")


def base_language(code: str) -> str:
    """The lowercase language subtag of ``code`` ("zh" for "zh-CN" or " ZH_Hant "); a
    malformed code is a ``StepwiseError`` naming it."""
    text = code.strip().lower() if isinstance(code, str) else ""
    if not _LANGUAGE_CODE.fullmatch(text):
        raise StepwiseError(f"unknown language code {code!r}: expected 2-3 letters, optionally "
                            "with a region or script such as zh-CN or zh_Hant")
    return re.split(r"[-_]", text, maxsplit=1)[0]
