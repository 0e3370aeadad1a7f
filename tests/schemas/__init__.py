"""Schemas the test suite checks stockade's files against."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import xmlschema

__all__ = ["JUNIT_XSD", "assert_valid_junit", "junit_schema"]

JUNIT_XSD = Path(__file__).with_name("junit.xsd")


@cache
def junit_schema() -> xmlschema.XMLSchema:
    """The JUnit schema CI systems check reports against (see junit.xsd)."""
    return xmlschema.XMLSchema(str(JUNIT_XSD))


def assert_valid_junit(source: Path | bytes) -> None:
    """Fail with the schema's reason unless ``source`` is a valid JUnit report."""
    text = source.read_bytes() if isinstance(source, Path) else source
    errors = list(junit_schema().iter_errors(text.decode("utf-8")))
    assert not errors, "\n".join(str(e.reason) for e in errors)
