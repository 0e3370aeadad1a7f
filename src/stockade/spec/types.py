"""Value types shared by the spec models: durations, sizes, signals, names.

Each type is an ``Annotated`` alias that parses the human form (``30s``,
``64KiB``, ``TERM``) into the value the rest of stockade uses (seconds,
bytes, a canonical signal name), raises ``ValueError`` with a message that
says what *would* be accepted, and publishes a JSON Schema that editors can
check the human form against.
"""

from __future__ import annotations

import math
import re
import signal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from stockade.paths import workspace_path
from stockade.runplan.logic import signal_number
from stockade.storeints import STORE_INT_MAX, STORE_INT_MIN
from stockade.units import DURATION_HINT, SIZE_HINT, parse_duration, parse_size

__all__ = [
    "STORE_INT_MAX",
    "STORE_INT_MIN",
    "Duration",
    "EnvMap",
    "EnvName",
    "ExitCode",
    "Name",
    "PositiveDuration",
    "SignalName",
    "Size",
    "StrictModel",
    "Text",
    "signal_number",
    "workspace_path",
]

_DURATION_PATTERN = r"^\s*((\d+(\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*)+$|^\s*(\d+(\.\d+)?|\.\d+)\s*$"
_SIZE_PATTERN = r"^\s*(\d+(\.\d+)?|\.\d+)\s*([KkMmGgTt]([Ii][Bb]|[Bb])?|[Bb])?\s*$"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class StrictModel(BaseModel):
    """Base of every file-format model: unknown keys are errors, not ignored.

    A typo such as ``timout:`` must fail loudly instead of silently running a
    job without a timeout. Inputs are kept out of error texts because a
    value substituted from the environment may be a credential.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


def kind_of(value: object) -> str:
    """Name a YAML value's kind the way a config author thinks of it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"{value!r}" if len(value) <= 60 else "a long string"
    return type(value).__name__


def _to_seconds(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got a boolean; {DURATION_HINT}")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"a duration must be zero or more seconds, got {value!r}")
        return float(value)
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected a duration, got {kind_of(value)}; {DURATION_HINT}")


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be longer than 0s (leave it out for no limit)")
    return value


def _to_bytes(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got a boolean; {SIZE_HINT}")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"a size must be zero or more bytes, got {value!r}")
        return round(value)
    if isinstance(value, str):
        return parse_size(value)
    raise ValueError(f"expected a size, got {kind_of(value)}; {SIZE_HINT}")


def _to_signal_name(value: object) -> object:
    """Accept ``SIGTERM``, ``TERM``, ``term`` or ``15``; return ``SIGTERM``."""
    if isinstance(value, bool):
        raise ValueError("expected a signal name like SIGTERM or a number, got a boolean")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        try:
            return signal.Signals(value).name
        except ValueError:
            raise ValueError(f"{value} is not a signal number on this system") from None
    if isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in signal.Signals.__members__:
            return name
        raise ValueError(f"unknown signal {value!r}; use a name like SIGTERM, TERM or SIGINT")
    raise ValueError(f"expected a signal name like SIGTERM or a number, got {kind_of(value)}")


def _to_text(value: object) -> object:
    """Accept scalars where text is meant, so ``PORT: 8080`` works in ``env``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _exit_code(value: int) -> int:
    if not 0 <= value <= 255:
        raise ValueError(f"exit code {value} is out of range: exit codes are 0..255")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid environment variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit"
        )
    return value


_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": _DURATION_PATTERN},
    ],
    "description": "A duration: seconds, or text like 500ms, 30s, 10m, 1h30m.",
}
_SIZE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": _SIZE_PATTERN},
    ],
    "description": "A size: bytes, or text like 64KiB, 1MiB, 2GiB, 10KB, 5MB.",
}

Duration = Annotated[float, BeforeValidator(_to_seconds), WithJsonSchema(_DURATION_SCHEMA)]
"""Seconds, written as a number or as ``500ms``, ``30s``, ``10m``, ``1h30m``."""

PositiveDuration = Annotated[
    float,
    BeforeValidator(_to_seconds),
    AfterValidator(_positive),
    WithJsonSchema(_DURATION_SCHEMA),
]
"""A duration that must be longer than zero (timeouts)."""

Size = Annotated[int, BeforeValidator(_to_bytes), WithJsonSchema(_SIZE_SCHEMA)]
"""Bytes, written as a number or as ``64KiB``, ``1MiB``, ``10MB``."""

SignalName = Annotated[
    str,
    BeforeValidator(_to_signal_name),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1}],
            "description": "A signal: SIGTERM, TERM or its number.",
        }
    ),
]
"""A canonical signal name (``SIGTERM``), written as a name with or without
``SIG`` or as a number."""

Text = Annotated[
    str,
    BeforeValidator(_to_text),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
"""A string; numbers and booleans are accepted and turned into their text."""

ExitCode = Annotated[
    int,
    AfterValidator(_exit_code),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 255}),
]
"""A process exit code, 0..255."""

EnvName = Annotated[
    str,
    AfterValidator(_env_name),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}),
]
"""An environment variable name."""

Name = Annotated[
    str,
    AfterValidator(_name),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"}),
]
"""A task or sandbox profile name, safe on a command line and in a URL."""

EnvMap = dict[EnvName, Text]
"""Environment variables given to a job: name to value."""
