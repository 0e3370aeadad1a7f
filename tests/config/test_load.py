"""Loading real files: every kind of problem, located, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.config import ConfigValidationError, find_config, load
from stockade.errors import ConfigError
from tests.config.helpers import located, problems, write

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    "relative", ["stockade.yaml", "minimal/stockade.yaml", "full/stockade.yaml"]
)
def test_examples_load(relative: str) -> None:
    config = load(EXAMPLES / relative, env={})
    assert config.tasks
    assert config.source == EXAMPLES / relative


def test_hello_example_is_what_make_run_needs() -> None:
    config = load(EXAMPLES / "stockade.yaml", env={})
    hello = config.task("hello")
    assert hello.input_format == "env"
    assert hello.run is not None and "$INPUT_NAME" in hello.run
    assert "$STOCKADE_OUTPUT" in hello.run


def test_full_example_uses_every_format() -> None:
    config = load(EXAMPLES / "full" / "stockade.yaml", env={})
    tasks = config.tasks.values()
    assert {t.input_format for t in tasks} == {"env", "json_stdin", "json_file", "args", "none"}
    assert {t.output_format for t in tasks} == {
        "stdout",
        "json_stdout",
        "lines",
        "exit_code_only",
        "file",
    }
    assert config.secrets["API_TOKEN"].env == "API_TOKEN"
    other = load(EXAMPLES / "full" / "stockade.yaml", env={"STOCKADE_TOKEN_VAR": "CI_TOKEN"})
    assert other.secrets["API_TOKEN"].env == "CI_TOKEN"


def test_a_valid_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        tasks:
          build:
            command: [make, -j, 4]
            timeout: 10m
        """,
    )
    config = load(path)
    assert config.tasks["build"].command == ["make", "-j", "4"]
    assert config.tasks["build"].timeout == 600.0


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        tasks:
          build:
            run: make
            timout: 5m
            colour: red
        """,
    )
    found = problems(path)
    assert [(p.line, p.path) for p in found] == [
        (4, "tasks.build.timout"),
        (5, "tasks.build.colour"),
    ]
    assert found[0].message == "unknown key 'timout'; did you mean 'timeout'?"
    assert "valid keys here:" in found[1].message
    assert (
        str(found[0])
        == f"{path}:4: tasks.build.timout: unknown key 'timout'; did you mean 'timeout'?"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "taks:\n  a: {run: x}\n")
    (problem,) = problems(path)
    assert (problem.line, problem.path) == (1, "taks")
    assert "did you mean 'tasks'?" in problem.message


def test_wrong_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        tasks:
          a:
            run: x
            max_attempts: lots
            priority: [1]
            env: [A, B]
          b: just a string
        """,
    )
    found = problems(path)
    assert [(p.line, p.path, p.message) for p in found] == [
        (4, "tasks.a.max_attempts", "expected an integer, got 'lots'"),
        (5, "tasks.a.priority", "expected an integer, got a list"),
        (6, "tasks.a.env", "expected a mapping (key: value lines), got a list"),
        (7, "tasks.b", "expected a mapping (key: value lines), got 'just a string'"),
    ]


def test_bad_duration_and_size(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        tasks:
          a:
            run: x
            timeout: 10 minutes
            max_output: 12 bananas
        """,
    )
    found = problems(path)
    assert [(p.line, p.path) for p in found] == [(4, "tasks.a.timeout"), (5, "tasks.a.max_output")]
    assert found[0].message.startswith("bad duration '10 minutes'")
    assert "1h30m" in found[0].message
    assert found[1].message.startswith("bad size '12 bananas'")


def test_exit_code_out_of_range(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        tasks:
          a:
            run: x
            exit_codes:
              success:
                - 0
                - 256
              retry: [0]
        """,
    )
    found = problems(path)
    assert [(p.line, p.path) for p in found] == [(7, "tasks.a.exit_codes.success[1]")]
    assert "exit code 256 is out of range: exit codes are 0..255" in found[0].message


def test_overlapping_exit_codes(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks:\n  a:\n    run: x\n    exit_codes: {success: [0], retry: [0]}\n")
    (problem,) = problems(path)
    assert (problem.line, problem.path) == (4, "tasks.a.exit_codes")
    assert "exit code 0 is in both success and retry" in problem.message


def test_unknown_secret_and_sandbox(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        secrets:
          API_TOKEN: {env: API_TOKEN}
        sandboxes:
          isolated: {backend: bwrap}
        tasks:
          a:
            run: x
            secrets: [API_TOKEN, API_TOKN]
            sandbox: isolatd
          b:
            run: y
            sandbox: bwrap
        """,
    )
    found = problems(path)
    assert [(p.line, p.path) for p in found] == [
        (8, "tasks.a.secrets[1]"),
        (9, "tasks.a.sandbox"),
    ]
    assert "unknown secret 'API_TOKN'; did you mean 'API_TOKEN'?" in found[0].message
    assert "unknown sandbox 'isolatd'; did you mean 'isolated'?" in found[1].message


def test_missing_secret_source_and_literal_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        secrets:
          EMPTY: {}
          LITERAL:
            value: hunter2
          BOTH: {env: A, file: b}
        """,
    )
    found = problems(path)
    assert [(p.line, p.path) for p in found] == [
        (2, "secrets.EMPTY"),
        (4, "secrets.LITERAL.value"),
        (5, "secrets.BOTH"),
    ]
    assert "missing secret source" in found[0].message
    assert "secrets come from env or file" in found[1].message
    assert "hunter2" not in "\n".join(map(str, found))


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sandboxes:
          s:
            mounts:
              - type: tmpfs
        """,
    )
    found = problems(path)
    assert [(p.line, p.path, p.message) for p in found] == [
        (2, "sandboxes.s", "missing required key 'backend'"),
        (4, "sandboxes.s.mounts[0]", "missing required key 'target'"),
    ]


def test_bind_source_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = write(
        tmp_path,
        """
        sandboxes:
          s:
            backend: bwrap
            mounts:
              - {type: bind, source: data, target: /data}
              - {type: bind, source: missing, target: /missing}
        """,
    )
    (problem,) = problems(path)
    assert (problem.line, problem.path) == (6, "sandboxes.s.mounts[1].source")
    assert f"{tmp_path / 'missing'}" in problem.message
    assert "does not exist" in problem.message


def test_every_problem_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        defaults:
          timeout: soon
        tasks:
          one:
            run: echo one
            max_attempts: 0
            secrets: [NOPE]
          two:
            command: []
            input_format: yaml
          three:
            run: x
            command: [y]
            output_format: file
            output_path: /abs.json
        secrets:
          TOKEN: {value: abc}
        """,
    )
    assert located(path) == [
        (3, "defaults.timeout"),
        (7, "tasks.one.max_attempts"),
        (8, "tasks.one.secrets[0]"),
        (10, "tasks.two.command"),
        (11, "tasks.two.input_format"),
        (12, "tasks.three"),
        (16, "tasks.three.output_path"),
        (18, "secrets.TOKEN.value"),
    ]


def test_error_from_defaults_is_reported_once_at_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults:
          stop_signal: SIGNOPE
          max_output: 1 tonne
          exit_codes: {success: [999]}
          sandbox: nowhere
        tasks:
          a: {run: x}
          b: {run: y, exit_codes: {retry: [1]}}
          c: {run: z, max_output: 1MiB}
        """,
    )
    assert located(path) == [
        (2, "defaults.stop_signal"),
        (3, "defaults.max_output"),
        (4, "defaults.exit_codes.success[0]"),
        (5, "defaults.sandbox"),
    ]


def test_output_format_from_defaults_needs_a_path_in_the_task(tmp_path: Path) -> None:
    # Reported at the task that lacks the path, where the fix goes.
    path = write(
        tmp_path,
        """
        defaults:
          output_format: file
        tasks:
          with-path: {run: x, output_path: out.json}
          without: {run: y}
        """,
    )
    found = problems(path)
    assert [(p.line, p.path) for p in found] == [(5, "tasks.without.output_format")]
    assert "output_path is not set" in found[0].message


def test_malformed_yaml_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks:\n  a:\n    run: [unclosed\n  b: {run: x}\n")
    with pytest.raises(ConfigValidationError) as exc:
        load(path)
    (problem,) = exc.value.problems
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"{path}:")
    assert "malformed YAML" in problem.message
    assert problem.line is not None and problem.line >= 3


def test_tabs_and_multiple_documents(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "tasks:\n\ta: {run: x}\n"))
    assert (problem.line, problem.path) == (2, "")
    assert "malformed YAML" in problem.message
    (problem,) = problems(write(tmp_path, "tasks: {}\n---\ntasks: {}\n"))
    assert "single document" in problem.message


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "# nothing\n"))
    assert "the file is empty" in problem.message
    (problem,) = problems(write(tmp_path, "- a\n- b\n"))
    assert "top level must be a mapping" in problem.message


def test_duplicate_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks:\n  a: {run: x}\n  a: {run: y}\n")
    (problem,) = problems(path)
    assert (problem.line, problem.path) == (3, "tasks.a")
    assert "duplicate key 'a' (first on line 2)" in problem.message


def test_anchors_merges_and_extension_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        x-common: &common
          timeout: 30s
          env: {A: "1"}
        tasks:
          a:
            <<: *common
            run: x
          b:
            <<: *common
            run: y
            timeout: 1m
        """,
    )
    config = load(path)
    assert config.tasks["a"].timeout == 30.0
    assert config.tasks["b"].timeout == 60.0
    assert config.tasks["b"].env == {"A": "1"}


def test_keys_are_text_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks:\n  a:\n    run: x\n    env: {on: 1, 'yes': no}\n")
    assert load(path).tasks["a"].env == {"on": "1", "yes": "false"}


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "nope.yaml")
    binary = tmp_path / "stockade.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load(binary)


def test_find_config(tmp_path: Path) -> None:
    assert find_config(tmp_path) is None
    (tmp_path / "stockade.yml").write_text("tasks: {}\n")
    assert find_config(tmp_path) == tmp_path / "stockade.yml"
    (tmp_path / "stockade.yaml").write_text("tasks: {}\n")
    assert find_config(tmp_path) == tmp_path / "stockade.yaml"
    assert find_config(str(tmp_path)) == tmp_path / "stockade.yaml"


def test_validation_error_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks:\n  a: {run: x, timout: 1}\n  b: {run: y, retries: 2}\n")
    with pytest.raises(ConfigError) as exc:
        load(path)
    assert isinstance(exc.value, ConfigValidationError)
    assert str(exc.value).splitlines() == [str(p) for p in exc.value.problems]
    assert len(exc.value.problems) == 2
