"""Pipeline parameters: typed values given on the command line.

A pipeline declares ``params:`` (name → type, default, description);
``stockade run PIPELINE --set NAME=VALUE`` gives one, checked against its
declaration, and the steps read them as ``${{ params.NAME }}``. They are
values, never shell syntax: a step passes them on through ``env:`` (or a
``command:`` argv entry), like any expression.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stockade.runplan.logic import convert_param, resolve_params
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
        return convert_param(self.type, value)
