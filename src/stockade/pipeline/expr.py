"""Runtime expressions: ``${{ … }}`` in pipeline steps, parsed without ``eval``.

The language is deliberately small (see ``docs/pipelines.md``):

* literals: ``'text'``, ``"text"``, numbers, ``true``, ``false``, ``null``;
* names and paths: ``item``, ``steps.build.outputs.binary``, ``item.name``,
  ``inputs['key']``, ``list[0]``;
* operators: ``==  !=  <  <=  >  >=  &&  ||  !`` and parentheses;
* functions from :data:`FUNCTIONS` (string helpers for names and paths)
  and the outcome tests ``success()``, ``failure()``, ``always()``,
  ``cancelled()`` for a step's ``if:``.

A string that is exactly one ``${{ expr }}`` keeps the value's type (a list
stays a list, so ``for_each`` can take an output list); text around or
between expressions makes the result a string.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FUNCTIONS",
    "OUTCOME_FUNCTIONS",
    "Expr",
    "ExprError",
    "evaluate",
    "parse",
    "render",
    "step_refs",
    "template_exprs",
    "to_text",
    "truthy",
]

_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>\d+(?:\.\d+)?)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
      | (?P<op>==|!=|<=|>=|&&|\|\||[<>!().,\[\]])
    )""",
    re.VERBOSE,
)
_MAX_DEPTH = 64


class ExprError(ValueError):
    """An expression that cannot be parsed or evaluated; the message says where."""


@dataclass(frozen=True, slots=True)
class Expr:
    """One parsed expression node: ``kind`` and its parts.

    Kinds: ``lit`` (value), ``name`` (identifier), ``attr`` (target, key),
    ``index`` (target, key expr), ``call`` (function name, args), ``not``
    (operand), ``bin`` (operator, left, right).
    """

    kind: str
    parts: tuple[Any, ...]


def _slug(text: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", to_text(text)).strip("-") or "_"


def _format(template: Any, *args: Any) -> str:
    out = to_text(template)
    for index, value in enumerate(args):
        out = out.replace("{" + str(index) + "}", to_text(value))
    return out


def _join(values: Any, sep: Any = ",") -> str:
    if isinstance(values, list | tuple):
        return to_text(sep).join(to_text(v) for v in values)
    return to_text(values)


def _split(text: Any, sep: Any = None) -> list[str]:
    return to_text(text).split(None if sep is None else to_text(sep))


_GO_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def _go_quote(text: str) -> str:
    """``text`` with the regexp metacharacters Go's ``regexp.QuoteMeta`` quotes."""
    return _GO_META.sub(r"\\\1", text)


def _go_test_run(tests: Any) -> str:
    """A ``go test -run`` pattern matching exactly ``tests`` (full names,
    ``TestA`` or ``TestA/sub``): one alternative per test, each level
    anchored and quoted (``^TestA$/^sub$``), the top-level ones grouped
    (``^(TestA|TestB)$``). A test listed with a subtest of its own is left to
    its subtests: running them runs its body. ``""`` for no tests."""
    names = [to_text(t) for t in tests] if isinstance(tests, list | tuple) else []
    names = [n for n in dict.fromkeys(names) if n]
    leaves = [n for n in names if not any(o.startswith(n + "/") for o in names)]
    top = [n for n in leaves if "/" not in n]
    nested = [n for n in leaves if "/" in n]
    parts = []
    if top:
        inner = "|".join(_go_quote(n) for n in top)
        parts.append(f"^({inner})$" if len(top) > 1 else f"^{inner}$")
    parts += ["/".join(f"^{_go_quote(level)}$" for level in n.split("/")) for n in nested]
    return "|".join(parts)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "basename": lambda p: posixpath.basename(to_text(p).rstrip("/")),
    "dirname": lambda p: posixpath.dirname(to_text(p).rstrip("/")),
    "join_path": lambda *p: posixpath.join(*(to_text(x) for x in p)),
    "lower": lambda s: to_text(s).lower(),
    "upper": lambda s: to_text(s).upper(),
    "trim": lambda s: to_text(s).strip(),
    "replace": lambda s, a, b: to_text(s).replace(to_text(a), to_text(b)),
    "slug": _slug,
    "format": _format,
    "join": _join,
    "split": _split,
    "lines": lambda s: [line for line in to_text(s).splitlines() if line.strip()],
    "contains": lambda a, b: (to_text(b) in a) if isinstance(a, list) else to_text(b) in to_text(a),
    "startsWith": lambda a, b: to_text(a).startswith(to_text(b)),
    "endsWith": lambda a, b: to_text(a).endswith(to_text(b)),
    "length": lambda v: len(v) if isinstance(v, list | dict | str) else len(to_text(v)),
    "toJSON": lambda v: json.dumps(v, sort_keys=True),
    "fromJSON": lambda s: json.loads(to_text(s)),
    "go_test_run": _go_test_run,
}
"""Pure helper functions available in every expression."""

OUTCOME_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
"""Functions answered from the context's ``outcome`` (for ``if:``)."""


def to_text(value: Any) -> str:
    """How a value is written into a string: JSON for lists and mappings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def truthy(value: Any) -> bool:
    """Falsy: ``null``, ``false``, ``0``, ``""`` and empty lists or mappings."""
    return bool(value)


class _Parser:
    """Recursive descent over the tokens of one expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None or match.lastgroup is None:
                raise ExprError(f"unexpected character {text[pos:].lstrip()[:1]!r} in {text!r}")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup), match.start()))
            pos = match.end()
        self.at = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        if self.at >= len(self.tokens):
            return None
        kind, value, _ = self.tokens[self.at]
        return kind, value

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ExprError(f"unexpected end of expression {self.text!r}")
        if value is not None and token[1] != value:
            raise ExprError(f"expected {value!r} but found {token[1]!r} in {self.text!r}")
        self.at += 1
        return token

    def parse(self) -> Expr:
        if not self.tokens:
            raise ExprError("empty expression")
        node = self.binary(0)
        if self.peek() is not None:
            raise ExprError(f"unexpected {self.take()[1]!r} in {self.text!r}")
        return node

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        ("==", "!="),
        ("<", "<=", ">", ">="),
    )

    def binary(self, level: int) -> Expr:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while (token := self.peek()) is not None and token == ("op", token[1]):
            if token[1] not in self._LEVELS[level]:
                break
            self.take()
            left = Expr("bin", (token[1], left, self.binary(level + 1)))
        return left

    def unary(self) -> Expr:
        if self.peek() == ("op", "!"):
            self.take()
            return Expr("not", (self.unary(),))
        return self.postfix(self.primary())

    def primary(self) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ExprError(f"expression nested too deeply: {self.text[:40]!r}")
        kind, value = self.take()
        if kind == "num":
            return Expr("lit", (float(value) if "." in value else int(value),))
        if kind == "str":
            return Expr("lit", (_unquote(value),))
        if kind == "name":
            if value in ("true", "false", "null"):
                return Expr("lit", ({"true": True, "false": False, "null": None}[value],))
            if self.peek() == ("op", "("):
                return self.call(value)
            return Expr("name", (value,))
        if value == "(":
            inner = self.binary(0)
            self.take(")")
            return inner
        raise ExprError(f"unexpected {value!r} in {self.text!r}")

    def call(self, name: str) -> Expr:
        if name not in FUNCTIONS and name not in OUTCOME_FUNCTIONS:
            raise ExprError(f"unknown function {name}() (known: {', '.join(sorted(FUNCTIONS))})")
        self.take("(")
        args: list[Expr] = []
        while self.peek() != ("op", ")"):
            args.append(self.binary(0))
            if self.peek() != ("op", ")"):
                self.take(",")
        self.take(")")
        return Expr("call", (name, tuple(args)))

    def postfix(self, node: Expr) -> Expr:
        while (token := self.peek()) in (("op", "."), ("op", "[")):
            self.take()
            if token == ("op", "."):
                kind, value = self.take()
                if kind != "name":
                    raise ExprError(f"expected a name after '.' in {self.text!r}")
                node = Expr("attr", (node, value))
            else:
                key = self.binary(0)
                self.take("]")
                node = Expr("index", (node, key))
        return node


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(text: str) -> Expr:
    """Parse one expression (the part between ``${{`` and ``}}``)."""
    return _Parser(text).parse()


def template_exprs(text: str) -> list[Expr]:
    """Every expression in a template string, parsed (raises on the first bad one)."""
    return [parse(match.group(1)) for match in _TEMPLATE.finditer(text)]


def step_refs(node: Expr, root: str = "steps") -> set[str]:
    """Names of the steps an expression reads (``steps.NAME…``); with
    ``root="params"``, of the params (``params.NAME``)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.kind == "attr" and current.parts[0] == Expr("name", (root,)):
            found.add(current.parts[1])
        stack.extend(part for part in _children(current))
    return found


def _children(node: Expr) -> list[Expr]:
    out: list[Expr] = []
    for part in node.parts:
        if isinstance(part, Expr):
            out.append(part)
        elif isinstance(part, tuple):
            out.extend(p for p in part if isinstance(p, Expr))
    return out


def evaluate(node: Expr, context: Mapping[str, Any]) -> Any:
    """The value of ``node`` with names looked up in ``context``.

    A missing key or index gives ``null`` (like a missing output); reading
    an unknown top-level name is an error.
    """
    kind, parts = node.kind, node.parts
    if kind == "lit":
        return parts[0]
    if kind == "name":
        if parts[0] not in context:
            raise ExprError(f"unknown name {parts[0]!r} (known: {', '.join(sorted(context))})")
        return context[parts[0]]
    if kind in ("attr", "index"):
        target = evaluate(parts[0], context)
        key = parts[1] if kind == "attr" else evaluate(parts[1], context)
        return _lookup(target, key)
    if kind == "not":
        return not truthy(evaluate(parts[0], context))
    if kind == "call":
        return _call(parts[0], [evaluate(arg, context) for arg in parts[1]], context)
    return _binary(parts[0], parts[1], parts[2], context)


def _lookup(target: Any, key: Any) -> Any:
    if isinstance(target, Mapping):
        return target.get(key if isinstance(key, str) else to_text(key))
    if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
        return target[key] if -len(target) <= key < len(target) else None
    return None


def _call(name: str, args: list[Any], context: Mapping[str, Any]) -> Any:
    if name in OUTCOME_FUNCTIONS:
        outcome = context.get("outcome", "success")
        return name in ("always", outcome)
    try:
        return FUNCTIONS[name](*args)
    except (TypeError, ValueError) as exc:
        raise ExprError(f"{name}(): {exc}") from None


def _binary(op: str, left_node: Expr, right_node: Expr, context: Mapping[str, Any]) -> Any:
    left = evaluate(left_node, context)
    if op == "&&":
        return evaluate(right_node, context) if truthy(left) else left
    if op == "||":
        return left if truthy(left) else evaluate(right_node, context)
    right = evaluate(right_node, context)
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    try:
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        raise ExprError(f"cannot compare {to_text(left)!r} {op} {to_text(right)!r}") from None


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """``value`` with every ``${{ … }}`` in its strings evaluated, recursively
    through lists and mappings. A string that is one whole expression keeps
    the expression's type."""
    if isinstance(value, str):
        matches = list(_TEMPLATE.finditer(value))
        if len(matches) == 1 and matches[0].group(0) == value.strip():
            return evaluate(parse(matches[0].group(1)), context)
        return _TEMPLATE.sub(lambda m: to_text(evaluate(parse(m.group(1)), context)), value)
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    return value
