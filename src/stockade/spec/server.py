"""The ``server:`` and ``webhooks:`` sections of ``stockade.yaml``.

``server`` holds what ``stockade serve`` needs beyond the command line: the
hashes of API tokens (never a token itself), a file of more hashes, the
largest request body accepted, and the health thresholds. ``webhooks`` maps
``POST /hooks/{name}`` to a task: how the delivery is authenticated (an
HMAC secret or a shared token, both *named*, read from the environment or a
file like any secret), which deliveries are wanted, and how the job's input
is built from the payload with JSON pointers.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from stockade.spec.secrets import SecretSpec
from stockade.spec.types import STORE_INT_MAX, STORE_INT_MIN, Duration, Size, StrictModel

__all__ = ["TOKEN_HASH", "ServerSpec", "WebhookSpec"]

#: A stored token: ``sha256:`` then 64 lower-case hex digits.
TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def _pointer_ok(value: str) -> bool:
    return value == "" or value.startswith("/")


class ServerSpec(StrictModel):
    """Settings of ``stockade serve``."""

    tokens: list[str] = Field(
        default_factory=list,
        description="Hashes of API tokens (`sha256:HEX`, as `stockade token create` prints).",
    )
    tokens_file: str | None = Field(
        default=None, description="A file with more token hashes, one a line (`#` comments)."
    )
    max_body: Size = Field(
        default=1024 * 1024, description="Largest request body accepted; larger ones get 413."
    )
    queue_age_degraded: Duration = Field(
        default=300.0,
        description="Health is degraded when the oldest runnable job has waited this long.",
    )

    @field_validator("tokens")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        for item in value:
            if not TOKEN_HASH.match(item):
                raise ValueError(
                    "tokens are stored as hashes (`sha256:` and 64 hex digits), never "
                    "as the token itself: use `stockade token create`"
                )
        return value


class WebhookSpec(StrictModel):
    """One webhook: ``POST /hooks/{name}`` starts a job of ``task``."""

    task: str = Field(description="The task each accepted delivery runs.")
    auth: Literal["hmac", "token"] = Field(
        default="hmac",
        description="`hmac`: GitHub-style X-Hub-Signature-256; `token`: a shared token "
        "in the X-Hook-Token header.",
    )
    secret: SecretSpec = Field(
        description="Where the HMAC key or shared token comes from (env or file)."
    )
    event_header: str = Field(
        default="X-GitHub-Event", description="The header naming the delivery's event type."
    )
    delivery_header: str = Field(
        default="X-GitHub-Delivery",
        description="The header with the delivery's unique id, used to drop duplicates.",
    )
    events: list[str] = Field(
        default_factory=list, description="Event types accepted (all when empty)."
    )
    filters: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON pointer -> value the payload must have there for a job to start.",
    )
    input: dict[str, Any] | None = Field(
        default=None,
        description="The job input: each value a JSON pointer (`/a/b`) into the payload, "
        "a template with `{/pointer}` parts, or a literal; the whole payload when absent.",
    )
    priority: int | None = Field(
        default=None, ge=STORE_INT_MIN, le=STORE_INT_MAX,
        description="Priority of the jobs it starts.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _pointers(self) -> WebhookSpec:
        for pointer in self.filters:
            if not _pointer_ok(pointer):
                raise ValueError(f"filter key {pointer!r} is not a JSON pointer (`/a/b`)")
        return self
