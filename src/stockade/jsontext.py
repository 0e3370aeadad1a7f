"""Strings in JSON data that are not Unicode text: find them, or repair them.

JSON's ``\\uD800`` escape decodes to a lone UTF-16 surrogate, which Python
keeps in a ``str`` but which cannot be encoded as UTF-8: a response, a log
line or a child's environment holding one fails when it is written. Job
input is refused at the edge when it holds one (:func:`text_problem`), and
data already stored is shown with each such character replaced by U+FFFD
(:func:`repaired`).

Standard library only: ``stockade exec`` checks its ``--input`` with this.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REPLACEMENT", "is_text", "repaired", "text_problem"]

#: What a lone surrogate is shown as.
REPLACEMENT = "\ufffd"

#: In a Python ``str`` a surrogate is always a lone one (a pair decodes to one
#: code point).
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHY = "holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape not in a pair), which is not text"


def is_text(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8 (holds no lone surrogate)."""
    return value.isascii() or _SURROGATE.search(value) is None


def text_problem(value: Any, where: str = "input") -> str | None:
    """Why ``value`` (decoded JSON) cannot be used as text, or ``None``:
    the path of the first key or string holding a lone surrogate."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not is_text(item):
                return f"{path} {_WHY}"
        elif isinstance(item, dict):
            for key, sub in reversed(item.items()):
                if not is_text(key):
                    return f"a key of {path} {_WHY}"
                stack.append((f"{path}.{key}", sub))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", sub) for i, sub in reversed(list(enumerate(item))))
    return None


def repaired(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings and keys replaced by
    U+FFFD; ``value`` itself when it has none (the common case: no copy)."""
    if text_problem(value) is None:
        return value
    return _replaced(value)


def _replaced(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_replaced(k): _replaced(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v) for v in value]
    return value
