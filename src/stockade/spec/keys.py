"""A task's ``concurrency:`` and ``unique:`` keys, and their values for one job.

A key is text with ``${{ … }}`` expressions over the job's input (the
language of pipelines, :mod:`stockade.pipeline.expr`: no ``eval``), such as
``deploy-${{ input.env }}``. It is evaluated once, when the job is submitted,
and stored with the job; the store decides by the stored text alone
(:mod:`stockade.store.gates`). The double braces keep the key clear of the
``${VAR}`` environment substitution done when ``stockade.yaml`` is read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from stockade.errors import InputError
from stockade.pipeline.expr import ExprError, render, template_exprs, to_text
from stockade.spec.types import STORE_INT_MAX, StrictModel

__all__ = ["KEY_MAX", "Concurrency", "Unique", "key_value"]

#: The longest key the store keeps (its column's length).
KEY_MAX = 200


def _template(value: str) -> str:
    if not value.strip():
        raise ValueError("key is empty: give text, with ${{ input.FIELD }} for parts of the input")
    try:
        template_exprs(value)
    except ExprError as exc:
        raise ValueError(f"key {value!r}: {exc}") from None
    return value


class Concurrency(StrictModel):
    """At most ``limit`` jobs with the same key run at once, fleet-wide."""

    key: str = Field(description="The key: text with ${{ … }} expressions over the input.")
    limit: int = Field(default=1, ge=1, le=STORE_INT_MAX, description="Jobs of a key at once.")
    cancel_in_progress: bool = Field(
        default=False, description="A new job of the key cancels the older live ones."
    )

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return _template(value)


class Unique(StrictModel):
    """A submit whose key matches a live job returns that job instead."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)

    key: str = Field(description="The key: text with ${{ … }} expressions over the input.")
    while_: Literal["queued", "running"] = Field(
        default="queued",
        alias="while",
        description="queued: while the matching job waits; running: also while it runs.",
    )

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return _template(value)


def key_value(template: str, input: Any, what: str) -> str:
    """``template`` evaluated over ``input``; :class:`InputError` (one line,
    naming ``what``) when it cannot be, or gives an empty or too long key."""
    try:
        value = to_text(render(template, {"input": input}))
    except ExprError as exc:
        raise InputError(f"{what} key {template!r}: {exc}") from None
    if not value:
        raise InputError(f"{what} key {template!r} is empty for this input")
    if len(value) > KEY_MAX:
        raise InputError(f"{what} key is {len(value)} characters; at most {KEY_MAX}")
    return value
