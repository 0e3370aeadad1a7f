"""``notify:``: what to tell the outside world when a job ends.

A notification names the ends it wants (``on:``: final states such as
``failed``, or :class:`~stockade.reasons.Reason` values such as ``oom``)
and one channel: an outgoing webhook (``url:``, signed with HMAC-SHA256
when it has a ``secret:``) or a command (``command:``, an argv list run
without a shell, the job's summary on its stdin). Deliveries are retried
with ``retry:`` (attempts and backoff, the job policy's own shape).

Notifications are frozen into each job at submit time, like the rest of
its task: the secret as its *source* (``env``/``file``), never its value.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from stockade.reasons import Reason
from stockade.spec.secrets import SecretSpec
from stockade.spec.types import STORE_INT_MAX, PositiveDuration, StrictModel, Text

__all__ = ["END_STATES", "MAX_TIMEOUT", "NotifyRetry", "NotifySpec", "wanted"]

#: The longest a try may take: a sender's claim outlasts it (see stockade.engine.notifier).
MAX_TIMEOUT = 60.0

#: The final job states a notification may ask for.
END_STATES = ("succeeded", "failed", "cancelled")
_ON = (*END_STATES, *(r.value for r in Reason if r.value not in END_STATES))


def wanted(on: list[str], state: str, reason: str | None) -> bool:
    """Whether a job that ended in ``state`` (with ``reason``) is one ``on`` names."""
    return state in on or (reason is not None and reason in on)


class NotifyRetry(StrictModel):
    """How a delivery that failed is tried again (the delay: ``initial *
    multiplier**(n-1)``, at most ``max``, jittered as job retries are)."""

    max_attempts: int = Field(
        default=5, ge=1, le=STORE_INT_MAX, description="Tries in all, the first included."
    )
    initial: PositiveDuration = Field(default=2.0, description="Delay before the second try.")
    multiplier: float = Field(default=2.0, ge=1.0, description="Growth factor per try.")
    max: PositiveDuration = Field(default=600.0, description="Longest delay.")


class NotifySpec(StrictModel):
    """One notification: the ends it wants and where it goes (``url`` or ``command``)."""

    on: list[str] = Field(
        default_factory=lambda: ["failed"],
        description="Job ends that send it: final states (succeeded, failed, cancelled) "
        "or reasons (oom, timeout, …); default [failed].",
    )
    url: str | None = Field(
        default=None, description="POST the job's summary (JSON) to this http(s) URL."
    )
    secret: SecretSpec | None = Field(
        default=None,
        description="Key of the X-Stockade-Signature-256 HMAC-SHA256 header (env or file).",
    )
    command: list[Text] | None = Field(
        default=None, description="Run this argv (no shell) with the job's summary on stdin."
    )
    timeout: PositiveDuration = Field(
        default=10.0, le=MAX_TIMEOUT, description="Time limit of one try (at most 60 s)."
    )
    retry: NotifyRetry = Field(default_factory=NotifyRetry, description="Tries and backoff.")

    @field_validator("on")
    @classmethod
    def _known_ends(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("on is empty: name the job ends to notify, e.g. [failed]")
        for item in value:
            if item not in _ON:
                raise ValueError(f"unknown job end {item!r} in on: use one of {', '.join(_ON)}")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url {value!r} is not an http(s) URL with a host")
        return value

    @field_validator("command")
    @classmethod
    def _argv(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("command is empty: give the program and its arguments")
        return value

    @model_validator(mode="after")
    def _one_channel(self) -> NotifySpec:
        if (self.url is None) == (self.command is None):
            raise ValueError("a notification has exactly one of url and command")
        if self.secret is not None and self.url is None:
            raise ValueError("secret signs a webhook: it needs url")
        return self

    @property
    def kind(self) -> str:
        """``webhook`` or ``command``."""
        return "webhook" if self.url is not None else "command"
