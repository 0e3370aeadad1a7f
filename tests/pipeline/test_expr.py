"""The ``${{ }}`` expression language: parsing, evaluation, templates, safety."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.pipeline.expr import ExprError, evaluate, parse, render, step_refs, template_exprs

CONTEXT = {
    "item": "pkg/net",
    "steps": {"discover": {"outputs": {"packages": ["a", "b"], "n": 2}, "outcome": "succeeded"}},
    "env": {"HOME": "/root"},
    "outcome": "success",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("item", "pkg/net"),
        ("steps.discover.outputs.packages", ["a", "b"]),
        ("steps.discover.outputs.packages[1]", "b"),
        ("steps['discover'].outputs['n']", 2),
        ("steps.discover.outputs.missing", None),
        ("steps.discover.outputs.packages[9]", None),
        ("basename(item)", "net"),
        ("dirname(item)", "pkg"),
        ("slug(item)", "pkg-net"),
        ("replace(item, '/', '_')", "pkg_net"),
        ("format('{0}-{1}.test', basename(item), 3)", "net-3.test"),
        ("join(steps.discover.outputs.packages, ' ')", "a b"),
        ("contains(steps.discover.outputs.packages, 'a')", True),
        ("startsWith(item, 'pkg') && !endsWith(item, 'x')", True),
        ("item == 'pkg/net' || false", True),
        ("steps.discover.outputs.n >= 2", True),
        ("steps.discover.outcome != 'failed'", True),
        ("null || 'fallback'", "fallback"),
        ("success()", True),
        ("failure()", False),
        ("always()", True),
        ("(1 < 2) == true", True),
        ("length(steps.discover.outputs.packages)", 2),
        ('"quo\\"ted"', 'quo"ted'),
        ("env.HOME", "/root"),
    ],
)
def test_evaluate(text: str, expected: object) -> None:
    assert evaluate(parse(text), CONTEXT) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "item ==",
        "item +",
        "(item",
        "item]",
        "__import__('os')",
        "item.__class__()",
        "1 2",
        "'open",
    ],
)
def test_bad_expressions_are_errors(text: str) -> None:
    with pytest.raises(ExprError):
        evaluate(parse(text), CONTEXT)


def test_unknown_name_and_bad_comparison() -> None:
    with pytest.raises(ExprError, match="unknown name 'nope'"):
        evaluate(parse("nope"), CONTEXT)
    with pytest.raises(ExprError, match="cannot compare"):
        evaluate(parse("item < 3"), CONTEXT)


def test_render_keeps_type_of_a_whole_expression() -> None:
    assert render("${{ steps.discover.outputs.packages }}", CONTEXT) == ["a", "b"]
    assert render("go test ${{ item }} -n ${{ steps.discover.outputs.n }}", CONTEXT) == (
        "go test pkg/net -n 2"
    )
    assert render("${{ item }}-${{ item }}", CONTEXT) == "pkg/net-pkg/net"
    assert render({"a": ["${{ basename(item) }}", 3]}, CONTEXT) == {"a": ["net", 3]}
    assert render("no expressions $HOME ${VAR}", CONTEXT) == "no expressions $HOME ${VAR}"


def test_step_refs() -> None:
    (expr,) = template_exprs("x ${{ join(steps.a.outputs.x, steps['b'].y) || steps.c }}")
    assert step_refs(expr) == {"a", "c"}  # a computed key is not a static reference


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ExprError, match="nested too deeply"):
        parse("(" * 200 + "1" + ")" * 200)


@given(st.text(max_size=40))
def test_parser_never_raises_anything_but_exprerror(text: str) -> None:
    try:
        node = parse(text)
    except ExprError:
        return
    with contextlib.suppress(ExprError):
        evaluate(node, CONTEXT)


@given(st.text(alphabet=st.characters(blacklist_characters="'\\"), max_size=30))
def test_string_literals_round_trip(text: str) -> None:
    assert evaluate(parse(f"'{text}'"), {}) == text


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_comparisons_agree_with_python(a: int, b: int) -> None:
    python = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}
    for op, expected in python.items():
        assert evaluate(parse(f"{a} {op} {b}"), {}) == expected
