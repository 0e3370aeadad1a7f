"""What a failed load reports: one :class:`Problem` per thing to fix."""

from __future__ import annotations

from dataclasses import dataclass

from stockade.errors import ConfigError

__all__ = ["ConfigValidationError", "Problem"]


@dataclass(frozen=True)
class Problem:
    """One problem in a config file, located as precisely as the YAML allows.

    ``line`` counts from 1 and is ``None`` when no position is known (a
    file that could not be read); ``path`` is the dotted key path such as
    ``tasks.build.timeout`` or ``""`` for the file as a whole.
    """

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigValidationError(ConfigError):
    """The configuration file is not valid.

    ``problems`` lists every problem found, in file order; ``str()`` is one
    ``FILE:LINE: key.path: message`` line per problem, ready to print.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))
