"""Bulk submission: one job per input, stored a chunk per transaction.

Each input is checked before its chunk is written (JSON, and text a job can
be given); a bad one stops the submission: its chunk is not stored at all,
the chunks before it stay stored (they were committed), and the error says
which input was bad and how many jobs were stored before it. Jobs of a
submission are a microsecond apart in age, so they run in input order among
jobs of equal priority.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from stockade.errors import BulkInputError
from stockade.jsontext import is_text, text_problem
from stockade.store import NewJob
from stockade.store.lite import Writer

__all__ = ["CHUNK", "BulkInputError", "parse_line", "submit_inputs"]

#: Jobs stored per transaction.
CHUNK = 1000


def parse_line(text: str) -> Any:
    """One line's input; :class:`ValueError` saying what is wrong with it."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply to be job input") from None
    # Only a line that holds a ``\\u`` escape or a lone surrogate itself (an
    # undecodable byte read with ``surrogateescape``) can decode to one.
    if "\\u" in text or not is_text(text):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def _inputs(lines: Iterable[str]) -> Iterator[tuple[int, Any | ValueError]]:
    """``(line number, input or its problem)`` of each line that is not blank."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, parse_line(line)
        except ValueError as exc:
            yield number, exc


def _with_input(template: NewJob, value: Any) -> NewJob:
    """A shallow copy of ``template`` with ``value`` as its input: the jobs of
    a submission share its spec, which the store then dumps once per chunk
    (``dataclasses.replace`` would run ``__init__`` again, per job)."""
    job: NewJob = object.__new__(NewJob)
    job.__dict__.update(template.__dict__)
    job.input = value
    return job


def submit_inputs(
    store: Writer,
    template: NewJob,
    lines: Iterable[str],
    *,
    chunk: int = CHUNK,
    stored: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Queue one job of ``template`` per JSON line of ``lines`` (blank lines
    skipped); the ids in order, each chunk's also given to ``stored`` once
    committed. Raises :class:`BulkInputError` at the first bad line, after
    storing the whole chunks before its own."""
    ids: list[str] = []
    batch: list[NewJob] = []
    first = 1  # the line the unstored chunk starts at

    def commit() -> None:
        new = store.jobs.submit(batch)
        ids.extend(new)
        batch.clear()
        if stored is not None:
            stored(new)

    for number, value in _inputs(lines):
        if isinstance(value, ValueError):
            raise BulkInputError(number, str(value), len(ids), first)
        if not batch:
            first = number
        batch.append(_with_input(template, value))
        if len(batch) >= chunk:
            commit()
    if batch:
        commit()
    return ids
