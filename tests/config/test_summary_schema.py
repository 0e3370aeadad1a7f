"""``stockade validate``'s summary and ``stockade schema``'s JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from stockade.config import json_schema, load, summary
from stockade.config.yamldoc import build
from tests.config.helpers import write

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = ["stockade.yaml", "minimal/stockade.yaml", "full/stockade.yaml"]


def test_summary_names_everything_and_no_secret_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "db").write_text("file-secret-value\n")
    path = write(
        tmp_path,
        """
        tasks:
          build: {command: [make], timeout: 90s, secrets: [TOKEN, DB], sandbox: tight}
          hello: {run: echo hi, description: Say hi.}
        sandboxes:
          tight: {backend: bwrap, network: none, mounts: [{type: tmpfs, target: /tmp}]}
        secrets:
          TOKEN: {env: MY_TOKEN}
          DB: {file: db}
        """,
    )
    monkeypatch.setenv("MY_TOKEN", "env-secret-value")
    config = load(path)
    text = summary(config)
    assert "2 tasks" in text
    assert "build: command: make" in text
    assert "timeout 1m30s" in text
    assert "Say hi." in text
    assert "1 sandbox profile" in text
    assert "tight: backend bwrap, 1 mount, network none" in text
    assert "2 secrets" in text
    assert "TOKEN: from env MY_TOKEN" in text
    assert f"DB: from file {tmp_path / 'db'}" in text
    assert "env-secret-value" not in text
    assert "file-secret-value" not in text


def test_summary_of_an_empty_config(tmp_path: Path) -> None:
    text = summary(load(write(tmp_path, "version: 1\n")))
    assert "0 tasks" in text
    assert "0 secrets" in text


def test_schema_is_a_valid_json_schema() -> None:
    schema = json_schema()
    json.dumps(schema)  # plain JSON
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    expected = {"version", "defaults", "tasks", "sandboxes", "secrets", "pipelines"}
    assert expected <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("relative", EXAMPLE_FILES)
def test_examples_match_the_schema(relative: str) -> None:
    data = build((EXAMPLES / relative).read_text(), {}).data
    validator = jsonschema.Draft202012Validator(json_schema())
    assert [error.message for error in validator.iter_errors(data)] == []


@pytest.mark.parametrize(
    "data",
    [
        {"tasks": {"a": {"run": "x", "timout": 5}}},
        {"tasks": {"a": {"run": "x", "timeout": "10 minutes"}}},
        {"tasks": {"a": {"run": "x", "max_output": "12 bananas"}}},
        {"tasks": {"a": {"run": "x", "exit_codes": {"success": [256]}}}},
        {"secrets": {"A": {"value": "literal"}}},
        {"sandboxes": {"s": {"backend": "docker"}}},
    ],
)
def test_schema_rejects_what_the_loader_rejects(data: dict[str, object]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(data))


def test_schema_accepts_human_forms() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    data = {
        "x-anchors": {"anything": True},
        "tasks": {
            "a": {
                "run": "x",
                "timeout": "1h30m",
                "idle_timeout": 30,
                "max_output": "64KiB",
                "stop_signal": "TERM",
                "env": {"PORT": 8080, "DEBUG": True},
            }
        },
    }
    assert [error.message for error in validator.iter_errors(data)] == []
