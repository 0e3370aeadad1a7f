"""The config file as bytes: where it is, its text, the ``${VAR}`` it names.

Kept apart from :mod:`stockade.config` (the loader, which imports yaml and
pydantic): a run from a cached plan (:mod:`stockade.runplan`) reads the
file and the names of its variables, and never loads it.
"""

from __future__ import annotations

import re
from pathlib import Path

from stockade.errors import ConfigError

__all__ = ["CONFIG_NAMES", "EXPRESSION", "TOKEN", "find_config", "names_in", "read_config"]

CONFIG_NAMES = ("stockade.yaml", "stockade.yml")
#: What substitution looks at: ``${{ … }}`` (kept), ``$${``, ``${…}``, a lone ``${``.
TOKEN = re.compile(r"\$\{\{.*?\}\}|\$\$\{|\$\{([^}]*)\}|\$\{", re.DOTALL)
#: The inside of ``${NAME}`` or ``${NAME:-default}``.
EXPRESSION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def find_config(cwd: str | Path | None = None) -> Path | None:
    """The ``stockade.yaml`` (or ``stockade.yml``) in ``cwd``, if there is one."""
    directory = Path(cwd) if cwd is not None else Path.cwd()
    for name in CONFIG_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def read_config(file: Path) -> str:
    """The text of the config file ``file``; :class:`ConfigError` saying why not."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not a text file (it is not valid UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc


def names_in(text: str) -> set[str]:
    """The names of every ``${NAME}`` and ``${NAME:-default}`` in ``text``
    (raw file text: a superset of what substitution looks up in it)."""
    names: set[str] = set()
    for match in TOKEN.finditer(text):
        inner = match.group(1)
        expression = EXPRESSION.fullmatch(inner) if inner is not None else None
        if expression is not None:
            names.add(expression.group(1))
    return names
