"""The spec models used directly from Python (no YAML, no loader)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stockade.errors import SecretError, UsageError
from stockade.runner.spec import INPUT_FORMATS, OUTPUT_FORMATS, RunSpec
from stockade.spec import (
    Backoff,
    Config,
    ExitCodes,
    Mount,
    SandboxProfile,
    SecretSpec,
    TaskDefaults,
    TaskSpec,
    signal_number,
)
from stockade.spec.task import InputFormat, OutputFormat


def _messages(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [error["msg"] for error in exc.value.errors()]


def test_formats_match_the_runner() -> None:
    assert set(InputFormat.__args__) == set(INPUT_FORMATS)
    assert set(OutputFormat.__args__) == set(OUTPUT_FORMATS)


def test_task_defaults_are_the_runner_defaults() -> None:
    task = TaskSpec(run="true")
    spec = task.to_run_spec("t", secrets={})
    default = RunSpec(shell="true", task="t")
    for key in ("input_format", "output_format", "kill_grace", "stop_signal", "max_output"):
        assert getattr(spec, key) == getattr(default, key), key
    assert spec.success_codes == default.success_codes
    assert spec.retry_codes == default.retry_codes


def test_to_run_spec_converts_everything(tmp_path: Path) -> None:
    task = TaskSpec.model_validate(
        {
            "command": ["sleep", 5],
            "input_format": "json_file",
            "output_format": "file",
            "output_path": "out/result.json",
            "env": {"PORT": 8080, "DEBUG": True},
            "secrets": ["TOKEN"],
            "workdir": "sub",
            "timeout": "1h30m",
            "idle_timeout": "500ms",
            "kill_grace": 2,
            "stop_signal": "INT",
            "max_output": "64KiB",
            "exit_codes": {"success": [0, 3], "retry": [75, 111], "failure": [1]},
        }
    )
    spec = task.to_run_spec("build", secrets={"TOKEN": "s3cret", "OTHER": "x"}, data_dir=tmp_path)
    assert spec.argv == ["sleep", "5"]
    assert spec.shell is None
    assert spec.task == "build"
    assert spec.env == {"PORT": "8080", "DEBUG": "true"}
    assert spec.secrets == {"TOKEN": "s3cret"}  # only the task's own secrets
    assert spec.timeout == 5400.0
    assert spec.idle_timeout == 0.5
    assert spec.kill_grace == 2.0
    assert spec.stop_signal == int(signal.SIGINT)
    assert spec.max_output == 65536
    assert spec.success_codes == (0, 3)
    assert spec.retry_codes == (75, 111)
    assert spec.failure_codes == (1,)
    assert spec.output_path == "out/result.json"
    assert spec.workdir == "sub"
    assert spec.data_dir == str(tmp_path)


def test_to_run_spec_needs_the_task_secrets() -> None:
    task = TaskSpec(run="true", secrets=["TOKEN"])
    with pytest.raises(SecretError, match="TOKEN"):
        task.to_run_spec("t", secrets={})


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("SIGTERM", "SIGTERM"),
        ("TERM", "SIGTERM"),
        ("term", "SIGTERM"),
        (9, "SIGKILL"),
        ("2", "SIGINT"),
    ],
)
def test_stop_signal_forms(given: Any, name: str) -> None:
    task = TaskSpec.model_validate({"run": "x", "stop_signal": given})
    assert task.stop_signal == name
    assert signal_number(task.stop_signal) == int(signal.Signals[name])


@pytest.mark.parametrize("given", ["SIGFOO", 0, 9999, True])
def test_bad_stop_signal(given: Any) -> None:
    with pytest.raises(ValidationError, match="signal"):
        TaskSpec.model_validate({"run": "x", "stop_signal": given})


def test_run_xor_command() -> None:
    with pytest.raises(ValidationError, match="not both"):
        TaskSpec(run="a", command=["b"])
    with pytest.raises(ValidationError, match="nothing to run"):
        TaskSpec()
    with pytest.raises(ValidationError, match="command is empty"):
        TaskSpec(command=[])


@pytest.mark.parametrize(
    ("path", "words"),
    [("/etc/out.json", "absolute"), ("../out.json", "escapes"), ("a/../../b", "escapes")],
)
def test_output_path_stays_in_the_workspace(path: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        TaskSpec(run="x", output_format="file", output_path=path)


def test_output_path_and_format_go_together() -> None:
    with pytest.raises(ValidationError, match="output_path is not set"):
        TaskSpec(run="x", output_format="file")
    with pytest.raises(ValidationError, match="only used with output_format: file"):
        TaskSpec(run="x", output_path="a.json")


def test_exit_codes_defaults_give_way() -> None:
    codes = ExitCodes.model_validate({"success": [0, 75]})
    assert codes.retry == []
    codes = ExitCodes.model_validate({"failure": [0]})
    assert codes.success == []
    assert ExitCodes().success == [0]
    assert ExitCodes().retry == [75]


def test_exit_codes_range_and_disjoint() -> None:
    with pytest.raises(ValidationError, match=r"exit code 256 is out of range"):
        ExitCodes.model_validate({"success": [256]})
    with pytest.raises(ValidationError, match=r"exit code -1 is out of range"):
        ExitCodes.model_validate({"retry": [-1]})
    with pytest.raises(ValidationError, match="exit code 3 is in both success and failure"):
        ExitCodes.model_validate({"success": [0, 3], "failure": [3]})


def test_backoff() -> None:
    backoff = Backoff.model_validate({"initial": "1s", "multiplier": 3, "max": "10s"})
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 10.0]
    with pytest.raises(ValidationError, match="max is shorter than initial"):
        Backoff.model_validate({"initial": "1m", "max": "1s"})
    with pytest.raises(ValidationError):
        Backoff.model_validate({"multiplier": 0.5})


def test_limits_and_timeouts_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="longer than 0s"):
        TaskSpec.model_validate({"run": "x", "timeout": 0})
    with pytest.raises(ValidationError):
        TaskSpec.model_validate({"run": "x", "max_attempts": 0})
    with pytest.raises(ValidationError):
        SandboxProfile.model_validate({"backend": "bwrap", "limits": {"pids": 0}})


def test_bind_mount_source_must_exist(tmp_path: Path) -> None:
    mount = Mount.model_validate({"type": "bind", "source": str(tmp_path), "target": "/data"})
    assert mount.readonly is True  # bind mounts are read-only unless said otherwise
    with pytest.raises(ValidationError, match="does not exist"):
        Mount.model_validate({"type": "bind", "source": str(tmp_path / "nope"), "target": "/x"})


def test_bind_mount_source_is_relative_to_the_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    mount = Mount.model_validate(
        {"type": "bind", "source": "data", "target": "/data", "readonly": False},
        context={"stockade_base_dir": str(tmp_path)},
    )
    assert mount.source == str(tmp_path / "data")
    assert mount.readonly is False


def test_mount_shapes() -> None:
    tmpfs = Mount.model_validate({"type": "tmpfs", "target": "/tmp", "size": "64MiB"})
    assert (tmpfs.readonly, tmpfs.size) == (False, 64 * 1024**2)
    with pytest.raises(ValidationError, match="needs a source"):
        Mount.model_validate({"type": "bind", "target": "/x"})
    with pytest.raises(ValidationError, match="has no source"):
        Mount.model_validate({"type": "tmpfs", "source": "/tmp", "target": "/x"})
    with pytest.raises(ValidationError, match="absolute"):
        Mount.model_validate({"type": "tmpfs", "target": "tmp"})


def test_secret_literal_is_rejected_and_never_echoed() -> None:
    with pytest.raises(ValidationError) as exc:
        SecretSpec.model_validate({"value": "hunter2"})
    assert "secrets come from env or file" in str(exc.value)
    assert "hunter2" not in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        Config.model_validate({"secrets": {"TOKEN": {"env": "T", "value": "hunter2"}}})
    assert "hunter2" not in str(exc.value)


def test_secret_needs_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="missing secret source"):
        SecretSpec.model_validate({})
    with pytest.raises(ValidationError, match="only one"):
        SecretSpec.model_validate({"env": "A", "file": "/b"})


def test_resolve_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "db").write_text("pa55\n")
    config = Config.model_validate(
        {"secrets": {"TOKEN": {"env": "MY_TOKEN"}, "DB": {"file": "db"}}},
        context={"stockade_base_dir": str(tmp_path)},
    )
    monkeypatch.setenv("MY_TOKEN", "t0ken")
    assert config.resolve_secrets(["TOKEN", "DB"]) == {"TOKEN": "t0ken", "DB": "pa55"}

    monkeypatch.delenv("MY_TOKEN")
    (tmp_path / "db").unlink()
    with pytest.raises(SecretError) as exc:
        config.resolve_secrets(["TOKEN", "DB"])
    message = str(exc.value)
    assert "\n" not in message
    assert "secret TOKEN: environment variable MY_TOKEN is not set" in message
    assert f"secret DB: file {tmp_path / 'db'} does not exist" in message
    with pytest.raises(SecretError, match="NOPE is not defined"):
        config.resolve_secrets(["NOPE"])


def test_empty_secret_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config.model_validate({"secrets": {"T": {"env": "EMPTY_ONE"}}})
    monkeypatch.setenv("EMPTY_ONE", "")
    with pytest.raises(SecretError, match="is empty"):
        config.resolve_secrets(["T"])


def test_config_merges_defaults() -> None:
    config = Config.model_validate(
        {
            "defaults": {
                "timeout": "10m",
                "env": {"A": "1", "B": "2"},
                "exit_codes": {"retry": [9]},
            },
            "tasks": {
                "a": {"run": "x", "env": {"B": "3"}, "exit_codes": {"success": [0, 1]}},
                "b": {"run": "y", "timeout": None},
            },
        }
    )
    a, b = config.tasks["a"], config.tasks["b"]
    assert a.timeout == 600.0
    assert a.env == {"A": "1", "B": "3"}
    assert (a.exit_codes.success, a.exit_codes.retry) == ([0, 1], [9])
    assert b.timeout is None
    assert config.defaults.timeout == 600.0


def test_config_checks_references_from_python() -> None:
    with pytest.raises(ValidationError) as exc:
        Config.model_validate(
            {
                "tasks": {"a": {"run": "x", "secrets": ["NOPE"], "sandbox": "isolatd"}},
                "sandboxes": {"isolated": {"backend": "bwrap"}},
            }
        )
    text = str(exc.value)
    assert "unknown secret 'NOPE'" in text
    assert "unknown sandbox 'isolatd'; did you mean 'isolated'?" in text


def test_lookups() -> None:
    config = Config.model_validate(
        {
            "tasks": {"build": {"run": "make", "sandbox": "bwrap"}},
            "sandboxes": {"tight": {"backend": "bwrap", "network": "none"}},
        }
    )
    assert config.task("build").run == "make"
    with pytest.raises(UsageError, match="did you mean 'build'"):
        config.task("biuld")
    builtin = config.sandbox_profile("bwrap")
    assert builtin is not None and builtin.backend == "bwrap"
    tight = config.sandbox_profile("tight")
    assert tight is not None and tight.network == "none"
    assert config.sandbox_profile(None) is None
    assert config.run_spec("build").shell == "make"


def test_version() -> None:
    assert Config().version == 1
    with pytest.raises(ValidationError, match="unsupported version 2"):
        Config.model_validate({"version": 2})


def test_names_are_checked() -> None:
    with pytest.raises(ValidationError, match="not a valid name"):
        Config.model_validate({"tasks": {"bad name": {"run": "x"}}})
    with pytest.raises(ValidationError, match="not a valid environment variable name"):
        Config.model_validate({"secrets": {"1X": {"env": "A"}}})
    with pytest.raises(ValidationError, match="listed twice"):
        TaskDefaults.model_validate({"secrets": ["A", "A"]})


def test_defaults_merge_into_models_given_from_python() -> None:
    config = Config(
        defaults=TaskDefaults.model_validate({"timeout": "1m", "env": {"A": "1"}}),
        tasks={"a": TaskSpec.model_validate({"run": "x", "env": {"B": "2"}})},
    )
    assert config.tasks["a"].timeout == 60.0
    assert config.tasks["a"].env == {"A": "1", "B": "2"}
