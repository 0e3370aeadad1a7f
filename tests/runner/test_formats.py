"""Input and output formats exactly as docs/protocol.md and docs/config.md say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from tests.runner.helpers import run_spec, sh

INPUT = {
    "name": "Ada",
    "count": 3,
    "flag": True,
    "nested": {"a": [1, 2]},
    "none": None,
    "my-name": "v",
}


def test_env_input_format() -> None:
    line = 'printf "%s|%s|%s|%s|%s|%s" "$INPUT_NAME" "$INPUT_COUNT" "$INPUT_FLAG" "$INPUT_NESTED" "$INPUT_NONE" "$INPUT_MY_NAME"'
    result, _ = run_spec(sh(line), INPUT)
    assert result.outputs["stdout"] == 'Ada|3|true|{"a":[1,2]}||v'


def test_json_stdin_input_format_closes_stdin() -> None:
    result, _ = run_spec(RunSpec(argv=["cat"], input_format="json_stdin"), INPUT)
    assert json.loads(result.outputs["stdout"]) == INPUT


def test_json_stdin_large_input_does_not_block() -> None:
    big = {"blob": "x" * (4 * 1024 * 1024)}
    result, _ = run_spec(RunSpec(argv=["wc", "-c"], input_format="json_stdin"), big)
    assert int(result.outputs["stdout"]) == len(json.dumps(big))


def test_json_stdin_child_that_ignores_stdin_is_fine() -> None:
    result, _ = run_spec(
        RunSpec(argv=["true"], input_format="json_stdin"), {"blob": "x" * 1_000_000}
    )
    assert result.outcome is Outcome.SUCCEEDED


def test_json_file_input_format() -> None:
    result, _ = run_spec(sh('cat "$INPUT_FILE"', input_format="json_file"), INPUT)
    assert json.loads(result.outputs["stdout"]) == INPUT


def test_args_input_format_orders_by_field_name() -> None:
    result, _ = run_spec(
        RunSpec(argv=["printf", "%s\\n"], input_format="args"), {"b": "2", "a": "1", "c": [3]}
    )
    assert result.outputs["stdout"] == "1\n2\n[3]\n"


def test_none_input_format_passes_nothing() -> None:
    result, _ = run_spec(sh('env | grep -c "^INPUT_" || true', input_format="none"), INPUT)
    assert result.outputs["stdout"].strip() == "0"


def test_json_stdout_merges_set_output() -> None:
    line = """echo '::set-output name=extra::e'; echo '{"a": 1}'"""
    result, _ = run_spec(sh(line, output_format="json_stdout"))
    assert result.outputs == {"a": 1, "extra": "e"}


def test_json_stdout_not_json_is_a_clear_failure() -> None:
    result, _ = run_spec(sh("echo not json", output_format="json_stdout"))
    assert result.outcome is Outcome.FAILED
    assert result.reason == "output_error"
    assert "stdout is not valid JSON" in (result.error or "")


def test_lines_output_format() -> None:
    result, _ = run_spec(sh("printf 'a\\n\\nb\\n  \\nc'", output_format="lines"))
    assert result.outputs == {"lines": ["a", "b", "c"]}


def test_exit_code_only_output_format() -> None:
    assert run_spec(sh("echo x", output_format="exit_code_only"))[0].outputs == {"success": True}
    assert run_spec(sh("exit 1", output_format="exit_code_only"))[0].outputs == {"success": False}


def test_file_output_format(tmp_path: Path) -> None:
    spec = sh('echo \'{"built": "yes"}\' > out/result.json', output_format="file",
              output_path="out/result.json", workdir=str(tmp_path))  # fmt: skip
    (tmp_path / "out").mkdir()
    result, _ = run_spec(spec)
    assert result.outputs == {"built": "yes"}


@pytest.mark.parametrize("path", ["../escape.json", "/etc/passwd", "link/x.json"])
def test_file_output_that_escapes_workspace_is_rejected(tmp_path: Path, path: str) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "link").symlink_to(tmp_path)
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "escape.json").write_text("{}")
    spec = sh("true", output_format="file", output_path=path, workdir=str(tmp_path / "ws"))
    result, _ = run_spec(spec)
    assert result.outcome is Outcome.FAILED
    assert result.reason == "output_error"
    assert "workspace" in (result.error or "")


def test_secret_named_input_fields_are_masked() -> None:
    result, _sink = run_spec(sh('echo "$INPUT_API_KEY"'), {"api_key": "input-secret-value"})
    assert result.outputs["stdout"] == "***\n"
