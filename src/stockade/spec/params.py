"""Pipeline parameters: typed values given on the command line.

A pipeline declares ``params:`` (name → type, default, description);
``stockade run PIPELINE --set NAME=VALUE`` gives one, checked against its
declaration, and the steps read them as ``${{ params.NAME }}``. They are
values, never shell syntax: a step passes them on through ``env:`` (or a
``command:`` argv entry), like any expression.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from stockade.spec.types import StrictModel

__all__ = ["ParamSpec", "resolve_params"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


class ParamSpec(StrictModel):
    """One pipeline parameter: its type and the value it has when not set."""

    type: Literal["string", "int", "bool"] = Field(
        default="string", description="string, int or bool (true/false, yes/no, 1/0)."
    )
    default: str | int | bool | None = Field(
        default=None, description="The value when not set; none: --set NAME=VALUE is required."
    )
    description: str = Field(default="", description="What it does, for humans.")

    @model_validator(mode="after")
    def _default_of_type(self) -> ParamSpec:
        if self.default is not None:
            self.default = self.convert(self.default)
        return self

    def convert(self, value: str | int | bool) -> str | int | bool:
        """``value`` as this parameter's type; ValueError saying what is expected."""
        if self.type == "string":
            return value if isinstance(value, str) else str(value).lower()
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError(f"{value!r} is not a bool (true or false)")
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not an int")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an int") from None


def resolve_params(
    declared: Mapping[str, ParamSpec], given: Iterable[str], pipeline: str
) -> dict[str, Any]:
    """Every declared parameter's value: ``given`` (``NAME=VALUE`` each) over
    the defaults. Raises ValueError with one line saying what to fix."""
    values: dict[str, Any] = {n: p.default for n, p in declared.items() if p.default is not None}
    for entry in given:
        name, sep, text = entry.partition("=")
        if not sep or not name:
            raise ValueError(f"--set {entry!r}: give NAME=VALUE")
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ValueError(
                f"--set {name}: pipeline {pipeline!r} has no param {name!r} (params: {known})"
            )
        try:
            values[name] = declared[name].convert(text)
        except ValueError as exc:
            raise ValueError(f"--set {name}: {exc}") from None
    missing = [n for n in declared if n not in values]
    if missing:
        raise ValueError(f"pipeline {pipeline!r} needs --set {missing[0]}=VALUE (no default)")
    return values
