"""``${VAR}`` substitution in string values, as in Compose files.

``${VAR}`` is the variable's value (an error when unset), ``${VAR:-default}``
the value or ``default`` when unset or empty, and ``$${`` a literal ``${``
(so a ``run:`` line can still say ``$${HOME}`` to mean the job's own
``${HOME}``). ``${{ … }}`` is a pipeline's runtime expression and is kept.
A bare ``$VAR`` is left alone: it is shell syntax for the job.

A name ``keep`` accepts (a secret's: see :mod:`stockade.config.secretrefs`)
is not expanded: ``${NAME}`` stays a reference, resolved when an attempt
starts, so the value never enters a job's stored spec. ``${NAME:-default}``
keeps the reference when ``NAME`` is set and gives the default otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from stockade.configfile import EXPRESSION, TOKEN

__all__ = ["substitute"]


def substitute(
    text: str,
    env: Mapping[str, str],
    keep: Callable[[str], bool] | None = None,
    kept: list[str] | None = None,
    lookups: dict[str, bool] | None = None,
) -> tuple[str, list[str]]:
    """Expand ``text``; return the result and a message per problem.

    Problems do not stop the expansion: every one in the string is
    reported, and an unresolved expression is left as written. Names that
    ``keep`` accepts stay ``${NAME}`` and are appended to ``kept``.
    ``lookups`` gets every name looked up, true when its value from ``env``
    went into the result (the run plan is not cached then).
    """
    errors: list[str] = []

    def expand(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        if token.startswith("${{"):
            return token  # a pipeline's runtime expression, evaluated when the step runs
        inner = match.group(1)
        if inner is None:
            errors.append("unclosed '${': write ${VAR} or ${VAR:-default}, or $${ for a literal ${")
            return token
        expression = EXPRESSION.fullmatch(inner)
        if expression is None:
            errors.append(
                f"cannot substitute {token}: write ${{VAR}} or ${{VAR:-default}} "
                "(or $${ for a literal ${)"
            )
            return token
        name, default = expression.group(1), expression.group(2)
        value = env.get(name)
        if keep is not None and keep(name) and (default is None or value):
            if kept is not None:
                kept.append(name)
            _note(lookups, name, False)
            return "${" + name + "}"
        _note(lookups, name, bool(value) if default is not None else value is not None)
        if default is not None:
            return value if value else default
        if value is None:
            errors.append(
                f"environment variable {name} is not set: set it, give a default "
                f"with ${{{name}:-default}}, or write $${{{name}}} for a literal ${{{name}}}"
            )
            return token
        return value

    return TOKEN.sub(expand, text), errors


def _note(lookups: dict[str, bool] | None, name: str, from_env: bool) -> None:
    if lookups is not None:
        lookups[name] = lookups.get(name, False) or from_env
