"""Secret definitions: where a secret's value comes from, never the value.

A secret is named in ``stockade.yaml`` and sourced from an environment
variable (``env: VAR``) or a file (``file: PATH``) on the machine that runs
the job. A literal value in the file is rejected outright: config files get
committed, copied and pasted into issues, and a secret must never ride along.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from stockade.runplan.logic import read_secret
from stockade.spec.sandbox import resolve_path
from stockade.spec.types import EnvName, StrictModel

__all__ = ["LITERAL_SECRET_MESSAGE", "SecretSpec"]

LITERAL_SECRET_MESSAGE = (
    "secrets come from env or file, never from a literal value in the config: "
    "use `env: VARIABLE` or `file: /path/to/secret`"
)


class SecretSpec(StrictModel):
    """The source of one secret: exactly one of ``env`` and ``file``."""

    env: EnvName | None = Field(
        default=None, description="Read the secret from this environment variable."
    )
    file: str | None = Field(
        default=None,
        description="Read the secret from this file (relative to the config file); "
        "trailing newlines are removed.",
    )
    value: SkipJsonSchema[Any] = Field(default=None, exclude=True, repr=False)
    """Present only so that ``value:`` gets its own, precise error."""

    @field_validator("value")
    @classmethod
    def _no_literal(cls, value: Any) -> Any:
        raise ValueError(LITERAL_SECRET_MESSAGE)

    @field_validator("file")
    @classmethod
    def _absolute_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("file is empty: give the path of the file holding the secret")
        return str(resolve_path(value, info))

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSpec:
        if self.env is None and self.file is None:
            raise ValueError(
                "missing secret source: give `env: VARIABLE` or `file: PATH` "
                "(secrets come from env or file)"
            )
        if self.env is not None and self.file is not None:
            raise ValueError("give only one secret source: either env or file, not both")
        return self

    @property
    def kind(self) -> Literal["env", "file"]:
        """Where the value comes from: ``env`` or ``file``."""
        return "env" if self.env is not None else "file"

    def describe(self) -> str:
        """The source, for humans: ``env API_TOKEN`` or ``file /run/secrets/db``."""
        return f"env {self.env}" if self.env is not None else f"file {self.file}"

    def read(self, name: str) -> str:
        """Read the value now; raise :class:`SecretError` naming what is missing.

        An empty value is an error too: masking an empty string is
        meaningless and an empty credential is almost always a mistake.
        """
        return read_secret(name, self.env, self.file)
