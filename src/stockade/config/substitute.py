"""``${VAR}`` substitution in string values, as in Compose files.

``${VAR}`` is the variable's value (an error when unset), ``${VAR:-default}``
the value or ``default`` when unset or empty, and ``$${`` a literal ``${``
(so a ``run:`` line can still say ``$${HOME}`` to mean the job's own
``${HOME}``). ``${{ … }}`` is a pipeline's runtime expression and is kept.
A bare ``$VAR`` is left alone: it is shell syntax for the job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["substitute"]

_TOKEN = re.compile(r"\$\{\{.*?\}\}|\$\$\{|\$\{([^}]*)\}|\$\{", re.DOTALL)
_EXPRESSION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def substitute(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ``text``; return the result and a message per problem.

    Problems do not stop the expansion: every one in the string is
    reported, and an unresolved expression is left as written.
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
        expression = _EXPRESSION.fullmatch(inner)
        if expression is None:
            errors.append(
                f"cannot substitute {token}: write ${{VAR}} or ${{VAR:-default}} "
                "(or $${ for a literal ${)"
            )
            return token
        name, default = expression.group(1), expression.group(2)
        value = env.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            errors.append(
                f"environment variable {name} is not set: set it, give a default "
                f"with ${{{name}:-default}}, or write $${{{name}}} for a literal ${{{name}}}"
            )
            return token
        return value

    return _TOKEN.sub(expand, text), errors
