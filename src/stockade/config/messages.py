"""Pydantic's errors, rewritten for someone editing a YAML file.

Pydantic says "Extra inputs are not permitted"; a config author needs
"unknown key 'timout'; did you mean 'timeout'?". This module turns each
pydantic error into a location and a message in the file's own words: YAML
kinds (mapping, list) instead of Python types, the accepted values of a
choice, and the valid keys of the mapping an unknown key sits in.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from stockade.spec.checks import Loc, did_you_mean
from stockade.spec.types import kind_of

__all__ = ["allowed_keys", "describe_error"]

_HIDDEN_KEYS = frozenset({"value"})  # SecretSpec.value exists only to reject literals

_EXPECTED = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list",
}
_PREFIXES = ("Value error, ", "Assertion failed, ")


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that has keys."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _descend(tp: Any, step: str | int) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(step) if isinstance(step, str) else None
        return field.annotation if field is not None else None
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin is list:
        return typing.get_args(tp)[0]
    return None


def allowed_keys(root: type[BaseModel], loc: Iterable[str | int]) -> list[str] | None:
    """The keys the model at ``loc`` (under ``root``) accepts, or ``None``
    when ``loc`` is not a model (a free-form mapping such as ``env``)."""
    tp: Any = root
    for step in loc:
        tp = _descend(tp, step)
        if tp is None:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        fields = tp.model_fields.items()
        return [field.alias or name for name, field in fields if name not in _HIDDEN_KEYS]
    return None


def _unknown_key(root: type[BaseModel], loc: Loc) -> str:
    key = str(loc[-1])
    allowed = allowed_keys(root, loc[:-1]) or []
    hint = did_you_mean(key, allowed)
    if hint:
        return f"unknown key {key!r}{hint}"
    return f"unknown key {key!r}; valid keys here: {', '.join(allowed)}"


def describe_error(
    root: type[BaseModel], error: ErrorDetails, *, show_input: bool
) -> tuple[Loc, str]:
    """Location and message for one pydantic error.

    ``show_input`` says whether the offending value may be quoted; it is
    false for values that came from the environment, which may be secret.
    A missing key is reported at the mapping that lacks it; a bad mapping
    key (``[key]`` in pydantic's location) at the key itself.
    """
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    got = f", got {kind_of(value)}" if show_input else ""
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    if kind == "extra_forbidden":
        return loc, _unknown_key(root, loc)
    if kind == "missing":
        return loc[:-1], f"missing required key {str(loc[-1])!r}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return loc, f"expected one of {expected}{got}"
    if kind in _EXPECTED:
        got = f", got {kind_of(value)}" if show_input or not isinstance(value, str) else ""
        return loc, f"{_EXPECTED[kind]}{got}"
    message = error["msg"]
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    if kind.startswith(("greater_than", "less_than")):
        message = message.replace("Input should be", "must be") + got
    return loc, message
