"""A task's routing keys: the queue its jobs wait in and the labels they require.

A worker serves queues (``stockade worker --queue``) and offers labels
(``--label k=v``); it claims a job only if it serves the job's queue and
offers every label the job requires with the same value. Names and values
are short and plain (letters, digits, ``_ . : -``), safe on a command line,
in a URL and in the store's JSON.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from stockade.routenames import check_key, check_value, parse_label, parse_queues
from stockade.spec.types import StrictModel, Text

__all__ = ["LabelKey", "LabelValue", "QueueName", "Requires", "parse_label", "parse_queues"]

QueueName = Annotated[
    str,
    AfterValidator(check_key),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"}),
]
"""A queue's name."""

LabelKey = QueueName
"""A label's name (the same form as a queue's)."""

LabelValue = Annotated[
    Text,
    AfterValidator(check_value),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
"""A label's value; numbers and booleans are taken as their text (``gpu: 1``)."""


def _no_null(value: object) -> object:
    return {} if value is None else value


class Requires(StrictModel):
    """What a worker must offer to claim the task's jobs."""

    labels: Annotated[dict[LabelKey, LabelValue], BeforeValidator(_no_null)] = Field(
        default_factory=dict,
        description="Labels the worker must offer, each with this value (--label k=v).",
    )
