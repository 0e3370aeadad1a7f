"""YAML to plain data, remembering the line of every key.

``yaml.safe_load`` throws positions away, but every error stockade reports
must say ``FILE:LINE``. So the document is *composed* (parsed to a node tree
that carries marks) and built into dicts and lists here, recording for each
key path the line it is written on, and applying ``${VAR}`` substitution to
string values on the way (so a substitution error has a line too).

Keys are always the text as written (``on:`` stays ``"on"`` rather than
YAML 1.1's ``True``); anchors, aliases and ``<<`` merges work as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from stockade.config.secretrefs import keeper
from stockade.config.substitute import substitute
from stockade.spec.checks import Loc

__all__ = ["Document", "MalformedYaml", "build"]

_MERGE = "tag:yaml.org,2002:merge"


class MalformedYaml(Exception):
    """The text is not YAML; ``line`` (from 1) and ``reason`` say why."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


@dataclass
class Document:
    """Plain data plus where each part of it was written.

    ``lines`` maps a key path (``("tasks", "build", "timeout")``; list items
    by index) to the line of its key or item. ``problems`` are the
    substitution and duplicate-key problems found while building; paths in
    ``substituted`` hold a value from the environment (never echoed in
    errors); paths in ``failed`` could not be substituted (their pydantic
    errors would only repeat the problem); ``references`` the secrets left
    as references (:mod:`stockade.config.secretrefs`).
    """

    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[tuple[Loc, int, str]] = field(default_factory=list)
    substituted: set[Loc] = field(default_factory=set)
    failed: set[Loc] = field(default_factory=set)
    #: Secret names kept as ``${NAME}`` references, by path (see secretrefs).
    references: dict[Loc, list[str]] = field(default_factory=dict)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _reason(exc: yaml.MarkedYAMLError) -> tuple[int | None, str]:
    mark = exc.problem_mark or exc.context_mark
    line = int(mark.line) + 1 if mark is not None else None
    reason = exc.problem or exc.context or "not valid YAML"
    if exc.context and exc.problem:
        reason = f"{exc.problem} ({exc.context})"
    return line, str(reason)


class _Builder:
    def __init__(self, env: Mapping[str, str], defined: frozenset[str] = frozenset()) -> None:
        self.env = env
        self.defined = defined
        self.loader = yaml.SafeLoader("")
        self.doc = Document(data=None)
        self.active: set[int] = set()

    def node(self, node: yaml.Node, path: Loc) -> Any:
        if id(node) in self.active:
            raise MalformedYaml(_line(node), "an alias refers to itself (recursive anchor)")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.item(item, (*path, i)) for i, item in enumerate(node.value)]
            return self.scalar(node, path)
        finally:
            self.active.discard(id(node))

    def item(self, node: yaml.Node, path: Loc) -> Any:
        self.doc.lines[path] = _line(node)
        return self.node(node, path)

    def mapping(self, node: yaml.MappingNode, path: Loc) -> dict[str, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            if key in seen:
                self.doc.problems.append(
                    (
                        (*path, key),
                        _line(key_node),
                        f"duplicate key {key!r} (first on line {seen[key]})",
                    )
                )
            seen.setdefault(key, _line(key_node))
        self.loader.flatten_mapping(node)  # `<<` merges: merged pairs first, own keys win
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise MalformedYaml(_line(key_node), "a key must be a plain string")
            key = str(key_node.value)
            sub = (*path, key)
            self.doc.lines[sub] = _line(key_node)
            out[key] = self.node(value_node, sub)
        return out

    def scalar(self, node: yaml.Node, path: Loc) -> Any:
        value = self.loader.construct_object(node, deep=True)
        if not isinstance(value, str) or "${" not in value:
            return value
        kept: list[str] = []
        result, errors = substitute(value, self.env, keeper(path, self.defined), kept)
        if kept:
            self.doc.references[path] = kept
        if errors:
            self.doc.failed.add(path)
            line = self._line_in(node, value)
            self.doc.problems.extend((path, line, error) for error in errors)
        elif result != value.replace("$${", "${"):
            self.doc.substituted.add(path)
        return result

    @staticmethod
    def _line_in(node: yaml.Node, value: str) -> int:
        """The line of the first ``${`` in a literal block (``|``), where
        lines map one to one; otherwise the line the value starts on."""
        if isinstance(node, yaml.ScalarNode) and node.style == "|":
            return _line(node) + 1 + value[: value.index("${")].count("\n")
        return _line(node)


def build(text: str, env: Mapping[str, str]) -> Document:
    """Parse ``text`` as one YAML document into a :class:`Document`.

    Raises :class:`MalformedYaml` for text that is not YAML (with the line
    the parser stopped at), including a stream of several documents.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise MalformedYaml(*_reason(exc)) from exc
    except yaml.YAMLError as exc:
        raise MalformedYaml(None, str(exc).splitlines()[0]) from exc
    builder = _Builder(env, _defined_secrets(root))
    if root is None:
        return builder.doc
    try:
        builder.doc.data = builder.node(root, ())
    except yaml.MarkedYAMLError as exc:
        raise MalformedYaml(*_reason(exc)) from exc
    return builder.doc


def _defined_secrets(root: yaml.Node | None) -> frozenset[str]:
    """The names under the top-level ``secrets:`` (read before any task is built)."""
    if not isinstance(root, yaml.MappingNode):
        return frozenset()
    for key, value in root.value:
        named = isinstance(key, yaml.ScalarNode) and key.value == "secrets"
        if named and isinstance(value, yaml.MappingNode):
            return frozenset(str(k.value) for k, _ in value.value if isinstance(k, yaml.ScalarNode))
    return frozenset()
