"""API tokens: made at random, stored only as hashes, compared in constant time.

A token is ``stk_`` and 43 URL-safe characters (256 bits). The server
keeps SHA-256 hashes (``sha256:HEX``) from ``server.tokens``,
``server.tokens_file`` and ``$STOCKADE_TOKEN`` (hashed on start), and a
presented token is hashed and compared with every known hash using
:func:`hmac.compare_digest`, so neither the comparison nor the number of
hashes tried depends on how much of a token was right.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from stockade.errors import ConfigError
from stockade.spec.server import TOKEN_HASH, ServerSpec

__all__ = ["TOKEN_ENV", "TokenSet", "hash_token", "new_token"]

TOKEN_ENV = "STOCKADE_TOKEN"


def new_token() -> str:
    """A fresh random API token."""
    return "stk_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of ``token``."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class TokenSet:
    """The hashes of every token the server accepts."""

    def __init__(self, hashes: Iterable[str]) -> None:
        self._hashes = [h.encode() for h in dict.fromkeys(hashes)]

    def __len__(self) -> int:
        return len(self._hashes)

    @classmethod
    def load(
        cls, spec: ServerSpec, base: Path | None, env: dict[str, str] | None = None
    ) -> TokenSet:
        """Tokens from the config, its tokens file and ``$STOCKADE_TOKEN``."""
        hashes = list(spec.tokens)
        if spec.tokens_file:
            path = Path(spec.tokens_file)
            if not path.is_absolute() and base is not None:
                path = base / path
            hashes += _read_file(path)
        plain = (os.environ if env is None else env).get(TOKEN_ENV, "")
        if plain:
            hashes.append(hash_token(plain))
        return cls(hashes)

    def accepts(self, token: str | None) -> bool:
        """Whether ``token`` is one of ours (constant time per known hash)."""
        presented = hash_token(token or "").encode()
        ok = False
        for known in self._hashes:
            ok |= hmac.compare_digest(presented, known)
        return ok and bool(token)


def _read_file(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read tokens file {str(path)!r}: {exc.strerror}") from exc
    hashes = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not TOKEN_HASH.match(line):
            raise ConfigError(f"{path}:{number}: not a token hash (`sha256:` and 64 hex digits)")
        hashes.append(line)
    return hashes
