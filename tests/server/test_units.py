"""The pure parts of the service: JSON pointers, input mapping, filters, tokens."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stockade.server.auth import TokenSet, hash_token, new_token
from stockade.server.hooks import map_input, matches, pointer
from stockade.spec import Config
from stockade.spec.server import ServerSpec, WebhookSpec

PAYLOAD = {"ref": "refs/heads/main", "repo": {"name": "w", "a/b": 1, "tags": ["x", "y"]}}


def test_pointers_and_templates() -> None:
    assert pointer(PAYLOAD, "/repo/name") == "w"
    assert pointer(PAYLOAD, "/repo/a~1b") == 1
    assert pointer(PAYLOAD, "/repo/tags/1") == "y"
    mapped = map_input(PAYLOAD, {"n": "/repo/name", "t": "{/repo/name}@{/ref}", "lit": 3,
                                 "gone": "/nope"})  # fmt: skip
    assert mapped == {"n": "w", "t": "w@refs/heads/main", "lit": 3, "gone": None}
    assert map_input(PAYLOAD, None) is PAYLOAD


def test_filters() -> None:
    hook = WebhookSpec.model_validate(
        {"task": "t", "secret": {"env": "S"}, "events": ["push"], "filters": {"/repo/name": "w"}}
    )
    assert matches(hook, "push", PAYLOAD) is None
    assert matches(hook, "issues", PAYLOAD) == "event not wanted"
    assert matches(hook, "push", {"repo": {"name": "z"}}) is not None


def test_tokens_are_hashes_compared_whole() -> None:
    token = new_token()
    tokens = TokenSet([hash_token(token)])
    assert tokens.accepts(token)
    assert not tokens.accepts(token[:-1]) and not tokens.accepts("") and not tokens.accepts(None)
    with pytest.raises(ValidationError):
        ServerSpec.model_validate({"tokens": [token]})
    env = TokenSet.load(ServerSpec(), None, {"STOCKADE_TOKEN": "plain"})
    assert env.accepts("plain") and len(TokenSet.load(ServerSpec(), None, {})) == 0


def test_webhook_must_name_a_known_task() -> None:
    with pytest.raises(ValidationError, match="unknown task 'nope'"):
        Config.model_validate(
            {"tasks": {"t": {"run": "true"}},
             "webhooks": {"h": {"task": "nope", "secret": {"env": "S"}}}}
        )  # fmt: skip
