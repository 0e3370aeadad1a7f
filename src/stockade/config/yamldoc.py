"""YAML to plain data, remembering the line of every key.

``yaml.safe_load`` throws positions away, but every error stockade reports
must say ``FILE:LINE``. So the document is *composed* (parsed to a node tree
that carries marks) and built into dicts and lists here, recording for each
key path the line it is written on, and applying ``${VAR}`` substitution to
string values on the way (so a substitution error has a line too).

Keys are always the text as written (``on:`` stays ``"on"`` rather than
YAML 1.1's ``True``); anchors, aliases and ``<<`` merges work as usual.

A config file is hostile input as much as a request is: a few hundred bytes
of nested aliases ("billion laughs") expand to billions of values, and
deep nesting exhausts Python's stack. So nesting stops at :data:`MAX_DEPTH`
levels and the built data at :data:`MAX_VALUES` values (an alias counts as
everything it expands to); past either the file is refused with its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from stockade.config.secretrefs import keeper
from stockade.config.substitute import substitute
from stockade.spec.checks import Loc

__all__ = ["MAX_DEPTH", "MAX_VALUES", "Document", "MalformedYaml", "build"]

_MERGE = "tag:yaml.org,2002:merge"

#: The deepest nesting of mappings and lists a config file may have.
MAX_DEPTH = 100
#: The most values (keys' values, list items, scalars) a file may build,
#: each alias counted as the values it expands to.
MAX_VALUES = 100_000


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
    #: Every ``${NAME}`` looked up: true when its value went into ``data``.
    lookups: dict[str, bool] = field(default_factory=dict)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _too_deep(line: int) -> MalformedYaml:
    return MalformedYaml(line, f"nested more than {MAX_DEPTH} levels deep")


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than :data:`MAX_DEPTH` while it
    composes (PyYAML's composer recurses once per level)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _too_deep(int(event.start_mark.line) + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


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
        self.flattening: set[int] = set()
        self.built = 0
        self.merged: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}

    def where(self, node: yaml.Node, path: Loc) -> int:
        """The line to blame for ``node`` at ``path``: its top-level key's, since
        an alias's contents are written elsewhere (at the anchor)."""
        return self.doc.lines.get(path[:1], _line(node))

    def spend(self, values: int, node: yaml.Node, path: Loc) -> None:
        """Count ``values`` more built values; refuse past :data:`MAX_VALUES`."""
        self.built += values
        if self.built > MAX_VALUES:
            raise MalformedYaml(
                self.where(node, path),
                f"the file expands to more than {MAX_VALUES} values "
                "(aliases count as everything they repeat)",
            )

    def node(self, node: yaml.Node, path: Loc) -> Any:
        if id(node) in self.active:
            raise MalformedYaml(_line(node), "an alias refers to itself (recursive anchor)")
        if len(path) > MAX_DEPTH:
            raise _too_deep(self.where(node, path))
        self.spend(1, node, path)
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
        out: dict[str, Any] = {}
        for key_node, value_node in self.pairs(node, path):
            key = str(key_node.value)
            sub = (*path, key)
            self.doc.lines[sub] = _line(key_node)
            out[key] = self.node(value_node, sub)
        return out

    def pairs(self, node: yaml.MappingNode, path: Loc) -> list[tuple[yaml.Node, yaml.Node]]:
        """The mapping's pairs with ``<<`` merges applied, one per key, as
        PyYAML merges: of the merged mappings the first to give a key wins
        (the earlier of a list, the earlier ``<<``), the mapping's own keys
        win over all.

        Done here rather than by PyYAML's ``flatten_mapping`` so that each
        mapping is flattened once and its pairs count towards
        :data:`MAX_VALUES` (PyYAML 6.0 and 6.0.1 copy merged pairs into every
        merging node, exponentially with nested merges), and a mapping that
        merges itself is an error rather than silently empty.
        """
        done = self.merged.get(id(node))
        if done is not None:
            return done
        if id(node) in self.flattening:
            raise MalformedYaml(_line(node), "a merge (<<) refers to itself")
        self.flattening.add(id(node))
        try:
            found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
            own: list[tuple[yaml.Node, yaml.Node]] = []
            for key_node, value_node in node.value:
                if key_node.tag != _MERGE:
                    own.append((key_node, value_node))
                    continue
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise MalformedYaml(
                            _line(source), "<< merges a mapping or a list of mappings"
                        )
                    for pair in self.pairs(source, path):
                        found.setdefault(str(pair[0].value), pair)
            for key_node, value_node in own:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise MalformedYaml(_line(key_node), "a key must be a plain string")
                found[str(key_node.value)] = (key_node, value_node)
        finally:
            self.flattening.discard(id(node))
        self.spend(len(found), node, path)
        self.merged[id(node)] = done = list(found.values())
        return done

    def scalar(self, node: yaml.Node, path: Loc) -> Any:
        value = self.loader.construct_object(node, deep=True)
        if not isinstance(value, str) or "${" not in value:
            return value
        kept: list[str] = []
        result, errors = substitute(
            value, self.env, keeper(path, self.defined), kept, self.doc.lookups
        )
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
        root = yaml.compose(text, Loader=_Loader)
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
