"""``did you mean …?`` for a mistyped name: an option, a command, a sandbox.

Standard library only (:mod:`difflib`): ``stockade exec`` uses it on its
fast path, and only when there is an error to explain.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` most likely misspells, or ``None``.

    Leading dashes are ignored when comparing, so ``--timout`` is judged by
    ``timout`` (the shared ``--`` would make every option look close)."""
    bare = {c.lstrip("-"): c for c in candidates}
    found = difflib.get_close_matches(word.lstrip("-"), list(bare), n=1, cutoff=0.6)
    return bare[found[0]] if found else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` did you mean 'x'?`` for the closest candidate, or ``""``."""
    found = closest(word, candidates)
    return f"; did you mean {found!r}?" if found else ""
