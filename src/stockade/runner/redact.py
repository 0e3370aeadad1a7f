"""Secret masking: every occurrence of a secret value becomes ``***``.

Secrets reach a job as environment variables; they must never come back out
of it in logs, outputs, events, errors or the store (docs/architecture.md, "Secrets").
:class:`Masker` holds the values and masks bytes, text and JSON-like objects;
:class:`StreamMasker` masks a byte stream read in arbitrary pieces, so a
secret split across two reads is masked too.

What is masked, for each value given to :meth:`Masker.add`:

* the value itself, and the value without surrounding whitespace (a secret
  read from a file usually ends with a newline the job never prints);
* for a multi-line value, also each line on its own, stripped of whitespace
  and ``\\r``, when it has at least :data:`MIN_LINE_LENGTH` characters. Jobs
  print multi-line secrets (keys, certificates) line by line, and output is
  masked in chunks of lines; lines shorter than that (``}``, ``==``) carry
  almost nothing secret but would blank out common text everywhere;
* the JSON-escaped form of each of the above (as :func:`json.dumps` writes
  it inside a string, both with and without ``ensure_ascii``), so a secret
  with quotes, backslashes, newlines or non-ASCII characters is masked in
  JSON output too.
* the URL-encoded form of the value (``%XX`` escapes, and ``+`` for spaces
  as in form data), where it differs from the value;
* the value's base64 (standard and URL-safe alphabets) as it appears inside
  a longer base64 stream (``env | base64 -w0``, a ``user:password`` header):
  at each of the three byte alignments, the characters that encode whole
  3-byte groups of the value and nothing else, as the GitHub Actions runner
  does. The few characters at either end that also encode neighbouring
  bytes stay visible (they carry at most two bytes of the secret), and a
  fragment shorter than :data:`MIN_BASE64` characters is not masked (it
  would blank out ordinary text). Base64 wrapped across lines is not found.

Whitespace-only values are ignored. A single-line value is masked whatever
its length: it was declared secret, and masking too much is the safe error.

Where occurrences of different secrets overlap (the end of one is the start
of another), the whole overlapping run becomes one ``***``, so no part of any
secret is ever left visible. Masking is C-level ``find``/``replace`` per
secret; the slower run-merging path is only taken when a chunk actually holds
a secret from a set that can overlap. Where the optional C extension
:mod:`stockade.runner._maskscan` is built, bytes (a job's output, the hot
path) are masked against all values in one pass instead of one ``replace``
per value; the result is the same, which the tests check on random data.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any, AnyStr

__all__ = [
    "MASK",
    "MIN_BASE64",
    "MIN_LINE_LENGTH",
    "SECRET_NAME_SUFFIXES",
    "Masker",
    "StreamMasker",
    "is_secret_name",
    "one_pass",
    "secrets_from_env",
]

#: What every masked run becomes.
MASK = "***"
_MASK_BYTES = MASK.encode()

#: Shortest line of a multi-line secret that is also masked on its own.
MIN_LINE_LENGTH = 4

#: Shortest base64 fragment of a secret that is masked (6 bytes of it).
MIN_BASE64 = 8

#: Environment variables whose names end with one of these (in any case) are
#: secrets by default.
SECRET_NAME_SUFFIXES = ("_KEY", "_SECRET", "_TOKEN", "_PASSWORD", "_CREDENTIAL")


def _load_scanner() -> ModuleType | None:
    """The one-pass scanner, or ``None`` where it was not built (no C compiler)."""
    try:
        from stockade.runner import _maskscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _maskscan if hasattr(_maskscan, "mask") else None


_SCANNER = _load_scanner()


def one_pass() -> bool:
    """Whether output is masked in one pass (the C extension was built)."""
    return _SCANNER is not None


# The overlap analysis is quadratic in the number of values; past these sizes
# the general (always correct) path is used instead of chained replace().
_MAX_SIMPLE_COUNT = 64
_MAX_SIMPLE_TOTAL = 64 * 1024


def is_secret_name(name: str) -> bool:
    """Whether an environment variable with this name holds a secret by default.

    Only the suffixes count (``API_KEY``, ``db_password``), never a bare
    ``KEY`` or ``TOKEN``: those are too often ordinary settings.
    """
    return name.upper().endswith(SECRET_NAME_SUFFIXES)


def secrets_from_env(env: Mapping[str, str]) -> list[str]:
    """The values of secret-named variables in ``env`` (non-blank, no repeats)."""
    found: dict[str, None] = {}
    for name, value in env.items():
        if value.strip() and is_secret_name(name):
            found[value] = None
    return list(found)


def _forms(secret: str) -> set[str]:
    """Every text form of one secret value that is masked (see module doc)."""
    if not secret.strip():
        return set()
    forms = {secret, secret.strip()}
    if "\n" in secret or "\r" in secret:
        forms.add(secret.replace("\r\n", "\n"))
        lines = (raw.strip() for raw in secret.replace("\r", "\n").split("\n"))
        forms.update(line for line in lines if len(line) >= MIN_LINE_LENGTH)
    for form in list(forms):
        forms.add(json.dumps(form)[1:-1])
        forms.add(json.dumps(form, ensure_ascii=False)[1:-1])
    for form in {secret, secret.strip()}:
        raw = _encode(form)
        url = _url_encoded(raw)
        forms.update((url, url.replace("%20", "+")))
        forms.update(_base64_fragments(raw))
    forms.discard("")
    return forms


#: Bytes that URL encoding leaves as they are (RFC 3986 unreserved).
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _url_encoded(value: bytes) -> str:
    """``value`` percent-encoded, as ``urllib.parse.quote(value, safe="")``.

    Written out rather than imported: :mod:`urllib.parse` costs the
    ``stockade exec`` start-up more than the whole encoding."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in value)


def _base64_fragments(value: bytes) -> set[str]:
    """The base64 of ``value`` at each alignment in a longer stream: whole
    3-byte groups only, in the standard and the URL-safe alphabet."""
    found: set[str] = set()
    for skip in range(3):
        part = value[skip:]
        whole = len(part) - len(part) % 3
        if whole * 4 // 3 < MIN_BASE64:
            continue
        text = binascii.b2a_base64(part[:whole], newline=False).decode("ascii")
        found.add(text)
        found.add(text.replace("+", "-").replace("/", "_"))
    return found


def _has_border(pat: AnyStr) -> bool:
    """Whether two occurrences of ``pat`` can overlap (a proper suffix is a prefix).

    Very long values are assumed to (step 1 is always correct, just slower).
    """
    if len(pat) > _MAX_SIMPLE_TOTAL // 16:
        return True
    first = pat[:1]
    i = pat.find(first, 1)
    while i != -1:
        if pat.startswith(pat[i:]):
            return True
        i = pat.find(first, i + 1)
    return False


def _overlap_free(pats: Sequence[AnyStr], star: AnyStr) -> bool:
    """Whether chained ``replace`` (longest first) masks exactly like run merging.

    True when no value contains ``*`` (a ``***`` could then complete one) and
    no occurrence of one value can partially overlap an occurrence of another
    or of itself; containment is fine, longest-first handles it.
    """
    if len(pats) > _MAX_SIMPLE_COUNT or sum(map(len, pats)) > _MAX_SIMPLE_TOTAL:
        return False
    if any(star[:1] in x for x in pats):
        return False
    for x in pats:
        for y in pats:
            # y starting at i inside x and running past x's end: x[i:] is a
            # proper prefix of y. Only starts with fewer than len(y) bytes left.
            first = y[:1]
            i = x.find(first, max(1, len(x) - len(y) + 1))
            while i != -1:
                if y.startswith(x[i:]):
                    return False
                i = x.find(first, i + 1)
    return True


def _patterns(values: Iterable[AnyStr]) -> list[tuple[AnyStr, int]]:
    """``(value, step)`` longest first; ``step`` is how far ``find`` may skip
    after a hit: the whole length unless occurrences of the value can overlap."""
    ordered = sorted(values, key=lambda v: (-len(v), v))
    return [(v, 1 if _has_border(v) else len(v)) for v in ordered]


def _mask_span(
    data: AnyStr,
    pats: Sequence[tuple[AnyStr, int]],
    star: AnyStr,
    limit: int,
    end: int,
) -> tuple[list[AnyStr], int]:
    """Mask ``data[:limit]`` by merging overlapping occurrences into one mask.

    Only occurrences that *start* before ``limit`` are taken. ``end`` is where
    a masked run carried in from earlier data ends (relative to ``data``; not
    positive when there is none): bytes before it are swallowed and an
    occurrence starting before it extends that run instead of starting a new
    ``***``. Returns the output pieces and the carried run end relative to
    ``limit`` (which may reach past ``limit`` into the data held back).
    """
    hits: list[tuple[int, int]] = []
    for pat, step in pats:
        size = len(pat)
        i = data.find(pat)
        while 0 <= i < limit:
            hits.append((i, i + size))
            i = data.find(pat, i + step)
    if not hits and end <= 0:
        return [data[:limit]], end - limit
    hits.sort()
    pieces: list[AnyStr] = []
    end = max(end, 0)
    for start, stop in hits:
        if start < end:
            end = max(end, stop)
            continue
        if end < start:
            pieces.append(data[end:start])
        pieces.append(star)
        end = stop
    if end < limit:
        pieces.append(data[end:limit])
    return pieces, end - limit


class Masker:
    """The secret values of one job, and the masking of anything with them.

    Values can be added while the job runs (``add-mask``); :attr:`version`
    changes whenever the set of masked values grows, so a caller can cache
    work that depends on it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self.version = 0
        #: Length in bytes (UTF-8) of the longest masked value; 0 if none.
        self.max_len = 0
        self._built = -1
        self._text: list[tuple[str, int]] = []
        self._bytes: list[tuple[bytes, int]] = []
        self._text_simple = True
        self._bytes_simple = True
        #: The one-pass scan's arguments for the byte values, when it applies.
        self._scan: tuple[Any, tuple[bytes, ...], bytes, int] | None = None
        for secret in secrets:
            self.add(secret)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:
        # Never the values themselves: a repr ends up in logs.
        return f"<Masker {len(self._values)} values, version {self.version}>"

    def add(self, secret: str) -> None:
        """Mask ``secret`` (and its derived forms) from now on; blank values are ignored."""
        new = _forms(secret) - self._values
        if not new:
            return
        self._values |= new
        self.max_len = max(self.max_len, *(len(_encode(v)) for v in new))
        self.version += 1

    def _build(self) -> None:
        """(Re)compute the search tables after values were added."""
        self._text = _patterns(self._values)
        self._bytes = _patterns(_encode(v) for v in self._values)
        self._text_simple = _overlap_free([p for p, _ in self._text], MASK)
        self._bytes_simple = _overlap_free([p for p, _ in self._bytes], _MASK_BYTES)
        self._scan = None
        window = min((len(p) for p, _ in self._bytes), default=0)
        if _SCANNER is not None and self._bytes_simple and window >= 2:
            # The scan's window is capped at 256 (its shifts are bytes); a
            # shorter window than the shortest value is always safe.
            window = min(window, 256)
            pats = tuple(p for p, _ in self._bytes)
            self._scan = (_SCANNER.mask, pats, _SCANNER.table(pats, window), window)
        self._built = self.version

    def byte_patterns(self) -> list[tuple[bytes, int]]:
        """The byte values longest first, each with its safe ``find`` step."""
        if self._built != self.version:
            self._build()
        return self._bytes

    def mask_bytes(self, data: bytes) -> bytes:
        """``data`` with every occurrence of every value replaced by ``***``."""
        if not self._values:
            return data
        if self._built != self.version:
            self._build()
        if self._scan is not None:
            scan, pats, table, window = self._scan
            masked: bytes = scan(data, pats, table, window, _MASK_BYTES)
            return masked
        if self._bytes_simple:
            # replace() returns its input untouched when the value is absent,
            # at the cost of one search: no separate `in` check needed.
            for pat, _ in self._bytes:
                data = data.replace(pat, _MASK_BYTES)
            return data
        return b"".join(_mask_span(data, self._bytes, _MASK_BYTES, len(data), 0)[0])

    def mask_text(self, s: str) -> str:
        """As :meth:`mask_bytes`, for text."""
        if not self._values:
            return s
        if self._built != self.version:
            self._build()
        if self._text_simple:
            for pat, _ in self._text:
                s = s.replace(pat, MASK)
            return s
        return "".join(_mask_span(s, self._text, MASK, len(s), 0)[0])

    def mask_obj(self, obj: Any) -> Any:
        """Mask every string (and bytes) inside a JSON-like object.

        Dict keys and values, list, tuple (named tuples keep their type) and
        set items are masked recursively; other values are returned as they
        are. Dicts come back as plain dicts.
        """
        if not self._values:
            return obj
        if isinstance(obj, str):
            return self.mask_text(obj)
        if isinstance(obj, bytes):
            return self.mask_bytes(obj)
        if isinstance(obj, dict):
            return {self.mask_obj(k): self.mask_obj(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.mask_obj(v) for v in obj]
        if isinstance(obj, tuple):
            items = [self.mask_obj(v) for v in obj]
            return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
        if isinstance(obj, set | frozenset):
            return type(obj)(self.mask_obj(v) for v in obj)
        return obj


def _encode(value: str) -> bytes:
    # surrogatepass: a value decoded with surrogateescape still encodes.
    return value.encode("utf-8", "surrogatepass")


class StreamMasker:
    """Masks one byte stream that arrives in arbitrary pieces.

    ``b"".join(feed(c) for c in chunks) + flush()`` equals
    ``masker.mask_bytes(b"".join(chunks))`` for any split of the data, while
    holding back at most ``masker.max_len - 1`` bytes: a secret split across
    reads is masked, no prefix of a secret that completes later is ever
    emitted, and memory stays bounded even on output without newlines.

    A masked run that continues into held-back data is remembered as an
    offset, not kept as text, so a run of overlapping secrets of any length
    still costs no memory. Values added to the masker mid-stream apply to the
    data not yet emitted.
    """

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self._hold = b""
        # How many bytes at the start of _hold already belong to a masked
        # run whose ``***`` has been emitted (<= 0: none).
        self._carry = 0

    def feed(self, chunk: bytes) -> bytes:
        """Take the next piece; return the masked bytes that are now final."""
        data = self._hold + chunk if self._hold else chunk
        if not self.masker:
            self._hold = b""
            return data
        limit = len(data) - (self.masker.max_len - 1)
        if limit <= 0:
            self._hold = data
            return b""
        pieces, self._carry = _mask_span(
            data, self.masker.byte_patterns(), _MASK_BYTES, limit, self._carry
        )
        self._hold = data[limit:]
        return b"".join(pieces)

    def flush(self) -> bytes:
        """The stream ended: return the rest, masked."""
        data, self._hold = self._hold, b""
        carry, self._carry = self._carry, 0
        if not data or not self.masker:
            return data
        pieces, _ = _mask_span(data, self.masker.byte_patterns(), _MASK_BYTES, len(data), carry)
        return b"".join(pieces)
