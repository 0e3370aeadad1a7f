"""The stdout protocol: workflow commands a job writes on its own output.

A job talks to stockade by printing lines in the syntax of GitHub Actions
workflow commands, so scripts written for Actions work unchanged::

    ::name key=value,key=value::message

The message is *data*, escaped as ``%25`` (``%``), ``%0D`` (CR) and ``%0A``
(LF); property values are escaped the same way plus ``%3A`` (``:``) and
``%2C`` (``,``). This module only says what a line *means*: it turns lines
into :class:`Command` values and never acts on them (that is
:mod:`stockade.runner.commands`). It also reads the ``$STOCKADE_OUTPUT`` file
(:func:`parse_output_file`). The user-facing reference is
``docs/protocol.md``.

As in the Actions runner, a command may follow leading whitespace (ASCII
spaces and tabs here) and command names and property keys are matched
without regard to case (``::ERROR FILE=a.py::`` is ``error`` with ``file``).
"Could this chunk hold a command?" stays a C-level search
(:func:`might_contain_command`): most output has no ``::`` at all.

Everything here is pure and stdlib-only; the parser never raises on any input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "KNOWN_COMMANDS",
    "LEADING",
    "Command",
    "ProtocolParser",
    "escape_data",
    "escape_property",
    "format_command",
    "might_contain_command",
    "parse_output_file",
    "unescape_data",
    "unescape_property",
]

#: Every command name stockade consumes. ``echo`` is accepted and ignored:
#: stockade never echoes command lines into the output, so there is nothing
#: to switch. ``resume-commands`` is not a name a job writes; it is the name of
#: the :class:`Command` returned for the ``::TOKEN::`` line that ends
#: ``stop-commands``.
KNOWN_COMMANDS: frozenset[str] = frozenset(
    {
        "set-output",
        "save-state",
        "add-mask",
        "error",
        "warning",
        "notice",
        "debug",
        "group",
        "endgroup",
        "progress",
        "stop-commands",
        "echo",
    }
)

# A command name (and a property key) is a word; anything else after "::" is
# ordinary text that happens to start with colons (C++ "::std", IPv6 "::1").
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Command:
    """One protocol command, with its properties and message already unescaped.

    For ``stop-commands`` and ``resume-commands`` the message is the token,
    exactly as written (tokens are compared literally, never unescaped).
    """

    name: str
    props: dict[str, str] = field(default_factory=dict)
    message: str = ""


# --------------------------------------------------------------------------- escaping


def escape_data(s: str) -> str:
    """Escape a command message: ``%`` first, then CR and LF."""
    if "%" not in s and "\r" not in s and "\n" not in s:
        return s
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    """Escape a property value: as :func:`escape_data`, plus ``:`` and ``,``."""
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def unescape_data(s: str) -> str:
    """Undo :func:`escape_data`.

    ``%25`` is replaced last so that an escaped ``%`` followed by ``0A``
    (written ``%250A``) stays the literal text ``%0A``. Unknown ``%`` sequences
    are left as they are, as GitHub Actions does.
    """
    if "%" not in s:
        return s
    return s.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(s: str) -> str:
    """Undo :func:`escape_property` (``%25`` last, as in :func:`unescape_data`)."""
    if "%" not in s:
        return s
    return (
        s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


def format_command(name: str, props: Mapping[str, str] | None = None, message: str = "") -> str:
    """Write one command line (without newline); the inverse of parsing it.

    Raises :class:`ValueError` for a name or property key that the parser
    would not read back as such.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad command name {name!r}: use letters, digits, '-' and '_'")
    head = name
    if props:
        for key in props:
            if not _KEY.fullmatch(key):
                raise ValueError(f"bad property name {key!r}: use letters, digits, '-' and '_'")
        head += " " + ",".join(f"{k}={escape_property(v)}" for k, v in props.items())
    return f"::{head}::{escape_data(message)}"


#: What may come before a command on its line (the Actions runner trims
#: leading whitespace; stockade trims the ASCII kinds a line can hold).
LEADING = " \t\f\v\r"
#: ``::`` anywhere: a compiled pattern, not ``b"::" in chunk``, as the regex
#: engine finds its first byte with ``memchr`` (``:`` is rare in most output)
#: while the substring search is several times slower on 1 MiB chunks.
_COLONS = re.compile(rb"::")
#: A line start (a newline, or the chunk's start) then ``::``, maybe indented.
_LINE_START = re.compile(rb"\n[ \t\f\v\r]*::")
_CHUNK_START = re.compile(rb"[ \t\f\v\r]*::")


def might_contain_command(chunk: bytes | memoryview) -> bool:
    """Whether a chunk of complete lines can hold any command line.

    A command line starts with ``::`` after optional whitespace, so a chunk
    without ``::`` holds none (one search, the common case), nor does one
    where no line starts that way. This is the hot-path filter: most output
    never reaches :meth:`ProtocolParser.feed_line`. It may say True for a
    chunk that holds no command (the parser then decides per line); it never
    says False for one that does, whatever the parser's state.
    """
    if _COLONS.search(chunk) is None:
        return False
    return _CHUNK_START.match(chunk) is not None or _LINE_START.search(chunk) is not None


# --------------------------------------------------------------------------- parser


class ProtocolParser:
    """Reads one attempt's stdout lines and picks out the commands.

    Stateful because of ``stop-commands``: after ``::stop-commands::TOKEN``
    no line is a command until the line ``::TOKEN::``. Unknown and malformed
    commands are kept as output and reported once per command name in
    :attr:`warnings`, which the caller drains with :meth:`take_warnings`.
    """

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self._warned: set[tuple[str, str]] = set()
        self._token: str | None = None
        self._resume_line = ""
        self._resume_pattern: re.Pattern[bytes] | None = None

    @property
    def stopped(self) -> bool:
        """True between ``stop-commands`` and its resume line."""
        return self._token is not None

    def take_warnings(self) -> list[str]:
        """Return the warnings gathered so far and forget them."""
        taken, self.warnings = self.warnings, []
        return taken

    def might_contain_command(self, chunk: bytes | memoryview) -> bool:
        """As the module function, but sharper while commands are stopped.

        While stopped, only the resume line ``::TOKEN::`` matters, so a chunk
        that lacks it cannot hold a command even if it has many ``::`` lines.
        """
        if self._resume_pattern is not None:
            return self._resume_pattern.search(chunk) is not None
        return might_contain_command(chunk)

    def feed_line(self, line: str) -> Command | None:
        """Classify one stdout line given without its newline.

        Returns the :class:`Command` when the line is a known command (the
        caller consumes it and does not show it as output), or None when the
        line is plain output. Leading whitespace (:data:`LEADING`) and one
        trailing ``\\r`` are ignored; the name and property keys are read in
        lower case. Never raises.
        """
        if line.endswith("\r"):
            line = line[:-1]
        line = line.lstrip(LEADING)
        if self._token is not None:
            if line.lower() != self._resume_line:
                return None
            token, self._token, self._resume_pattern = self._token, None, None
            return Command("resume-commands", {}, token)
        if not line.startswith("::"):
            return None
        end = line.find("::", 2)
        if end < 0:
            return None
        info = line[2:end]
        space = info.find(" ")
        name = info if space < 0 else info[:space]
        if not _NAME.fullmatch(name):
            return None
        name = name.lower()
        if name not in KNOWN_COMMANDS:
            self._warn("unknown", name, f"unknown command {name!r} kept as output")
            return None
        props: dict[str, str] = {}
        if space >= 0:
            problem = _parse_props(info[space + 1 :], props)
            if problem:
                self._warn(
                    "malformed", name, f"malformed command {name!r} kept as output: {problem}"
                )
                return None
        raw = line[end + 2 :]
        if name == "stop-commands":
            return self._stop(props, raw)
        return Command(name, props, unescape_data(raw))

    def _stop(self, props: dict[str, str], token: str) -> Command | None:
        if not token or token.strip() != token or token.lower() in KNOWN_COMMANDS:
            self._warn(
                "malformed",
                "stop-commands",
                "malformed command 'stop-commands' kept as output: the token must be a "
                "non-empty word that is not a command name (use a random string)",
            )
            return None
        self._token = token
        # As the runner, which matches the token like a command name: in any case.
        self._resume_line = f"::{token}::".lower()
        # The byte filter is exact only when the token's bytes are what the
        # caller decoded; for non-ASCII tokens keep the generic filter.
        self._resume_pattern = (
            re.compile(re.escape(self._resume_line.encode()), re.IGNORECASE)
            if token.isascii()
            else None
        )
        return Command("stop-commands", props, token)

    def _warn(self, kind: str, name: str, message: str) -> None:
        if (kind, name) not in self._warned:
            self._warned.add((kind, name))
            self.warnings.append(message)


def _parse_props(text: str, into: dict[str, str]) -> str:
    """Fill ``into`` from ``key=value,key=value``; return a problem or ``""``.

    Empty entries (``a=1,,b=2``) are skipped and a repeated key keeps its last
    value, as in GitHub Actions. Problems never quote the text itself: a
    malformed ``add-mask`` may carry a secret.
    """
    for entry in text.split(","):
        if not entry.strip():
            continue
        key, eq, value = entry.partition("=")
        if not eq:
            return "a property has no '=' (write key=value, separated by commas)"
        key = key.strip()
        if not _KEY.fullmatch(key):
            return "a property name is empty or not a word (write key=value)"
        into[key.lower()] = unescape_property(value)
    return ""


# --------------------------------------------------------------------------- $STOCKADE_OUTPUT


def parse_output_file(text: str) -> dict[str, str]:
    """Read the ``$STOCKADE_OUTPUT`` file: ``key=value`` lines and heredocs.

    A heredoc is ``key<<DELIM``, then the value's lines, then a line that is
    exactly ``DELIM``; its value is those lines joined by ``\\n``. Whichever of
    ``=`` and ``<<`` comes first on a line decides its form, so
    ``url=http://x/?a<<b`` is a plain value. Blank lines between entries are
    ignored, CRLF line ends read as LF, and a later value for a key replaces an
    earlier one. Raises :class:`ValueError` naming the line for anything else.
    """
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        eq = line.find("=")
        heredoc = line.find("<<")
        if eq >= 0 and (heredoc < 0 or eq < heredoc):
            key, value = line[:eq], line[eq + 1 :]
            _check_output_key(key, i)
            outputs[key] = value
        elif heredoc >= 0:
            key, delim = line[:heredoc], line[heredoc + 2 :]
            _check_output_key(key, i)
            if not delim.strip():
                raise ValueError(f"$STOCKADE_OUTPUT line {i}: heredoc {key}<< has no delimiter")
            start = i
            while i < len(lines) and lines[i] != delim:
                i += 1
            if i == len(lines):
                raise ValueError(
                    f"$STOCKADE_OUTPUT line {start}: heredoc {key!r} is never closed "
                    f"(add a line that is exactly {delim!r})"
                )
            outputs[key] = "\n".join(lines[start:i])
            i += 1
        else:
            raise ValueError(
                f"$STOCKADE_OUTPUT line {i}: expected key=value or key<<DELIMITER, "
                f"got a line with neither"
            )
    return outputs


def _check_output_key(key: str, lineno: int) -> None:
    if not key or any(c.isspace() for c in key):
        raise ValueError(
            f"$STOCKADE_OUTPUT line {lineno}: output name {key!r} is empty or has whitespace"
        )
