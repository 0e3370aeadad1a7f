"""Secrets are masked in everything stockade prints, stores or returns."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from tests.runner.helpers import run_spec, sh

SECRET = "hunter2-sekrit-value"


def _everything(result: object, sink: object) -> str:
    """All text stockade produced: events, result, log file."""
    events = [e.to_dict() | {"raw": (e.raw or b"").decode("latin-1")} for e in sink.events]  # type: ignore[attr-defined]
    log = Path(result.log_path).read_text()  # type: ignore[attr-defined]
    return json.dumps(events) + json.dumps(result.to_dict()) + log  # type: ignore[attr-defined]


def test_secret_masked_in_stdout_stderr_outputs_annotations_state() -> None:
    line = """
echo "token is $MY_S"
printf '%s' "$MY_S" >&2
echo "::set-output name=o::x${MY_S}y"
echo "::save-state name=s::$MY_S"
echo "::error file=$MY_S::bad $MY_S"
echo "k=$MY_S" >> "$STOCKADE_OUTPUT"
"""
    result, sink = run_spec(sh(line, secrets={"MY_S": SECRET}))
    assert result.outcome is Outcome.SUCCEEDED
    everything = _everything(result, sink)
    assert SECRET not in everything
    assert sink.text() == "token is ***\n"
    assert sink.text("stderr") == "***"
    assert result.outputs["o"] == "x***y"
    assert result.outputs["k"] == "***"
    assert result.state == {"s": "***"}
    assert result.annotations[0].message == "bad ***"
    assert result.annotations[0].file == "***"


def test_secret_split_across_reads_is_masked() -> None:
    half = len(SECRET) // 2
    line = 'printf "%s" "$A"; sleep 0.3; printf "%s tail\\n" "$B"'
    env = {"A": SECRET[:half], "B": SECRET[half:]}
    result, sink = run_spec(sh(line, secrets={"S": SECRET}, env=env))
    assert SECRET[:half] not in _everything(result, sink)
    assert sink.text() == "*** tail\n"


def test_secret_split_inside_long_line_without_newline() -> None:
    code = f"import os,time\nos.write(1, b'a' * 100000 + b'{SECRET[:5]}')\ntime.sleep(0.3)\nos.write(1, b'{SECRET[5:]}' + b'b' * 10)"
    _result, sink = run_spec(RunSpec(argv=["python3", "-c", code], secrets={"S": SECRET}))
    text = sink.text()
    assert SECRET[:5] + SECRET[5:8] not in text
    assert text == "a" * 100000 + "***" + "b" * 10


def test_add_mask_masks_later_output_and_is_never_echoed() -> None:
    line = 'echo "::add-mask::$V"; echo "see $V here"; echo "err $V" >&2'
    result, sink = run_spec(sh(line, env={"V": "runtime-value-9"}))
    everything = _everything(result, sink)
    assert "runtime-value-9" not in everything
    assert "add-mask" not in sink.text()
    assert sink.text() == "see *** here\n"
    assert sink.text("stderr") == "err ***\n"


def test_multiline_secret_masked_whole_and_by_line() -> None:
    secret = "line-one-abc\nline-two-def"
    line = 'printf "%s\\n" "$ML"; echo "just line-two-def here"'
    _result, sink = run_spec(sh(line, secrets={"ML": secret}))
    text = sink.text()
    assert "line-one-abc" not in text and "line-two-def" not in text
    assert text.endswith("just *** here\n")


@pytest.mark.parametrize(
    "name", ["API_KEY", "GH_TOKEN", "DB_PASSWORD", "APP_SECRET", "X_CREDENTIAL"]
)
def test_secret_named_env_vars_are_masked(name: str) -> None:
    _result, sink = run_spec(sh(f'echo "${name}"', env={name: "value-from-env-123"}))
    assert sink.text() == "***\n"


def test_masking_does_not_corrupt_surroundings() -> None:
    text = "αβγ-SECRETX-δ SECRETXSECRETX end"
    _result, sink = run_spec(sh(f"printf '%s' '{text}'", secrets={"S": "SECRETX"}))
    assert sink.text() == "αβγ-***-δ ****** end"


def test_secret_in_error_message_is_masked(tmp_path: Path) -> None:
    spec = RunSpec(argv=[f"/nonexistent/{SECRET}"], secrets={"S": SECRET})
    result, sink = run_spec(spec)
    assert result.error and "***" in result.error
    assert SECRET not in _everything(result, sink)


def test_secret_masked_in_start_event_argv() -> None:
    _result, sink = run_spec(RunSpec(argv=["echo", SECRET], secrets={"S": SECRET}))
    assert sink.events[0].data["argv"] == ["echo", "***"]


def test_short_values_of_secret_named_vars_do_not_blank_text() -> None:
    _, sink = run_spec(sh('echo "1 2 $USE_KEY"', env={"USE_KEY": "1"}))
    assert sink.text() == "1 2 1\n"
    _, sink = run_spec(sh('echo "x$S"', secrets={"S": "1"}))  # declared: masked at any length
    assert sink.text() == "x***\n"


def test_encoded_forms_of_a_secret_are_masked_in_a_real_job() -> None:
    secret = "p@ss/w0rd+with spaces-and-more"
    line = """
printf 'Authorization: Basic %s\\n' "$(printf 'ann:%s' "$MY_S" | base64 -w0)"
env | base64 -w0; echo
python3 -c 'import os, urllib.parse; print(urllib.parse.quote(os.environ["MY_S"], safe=""))'
"""
    result, sink = run_spec(sh(line, secrets={"MY_S": secret}))
    assert result.outcome is Outcome.SUCCEEDED, result
    header, dump, url = sink.text().splitlines()
    assert header.startswith("Authorization: Basic ") and "***" in header
    assert "***" in dump and url == "***"
    for visible in (header.split()[-1], dump):
        for piece in visible.split("***"):
            for start in range(4):
                body = piece[start:][: (len(piece) - start) // 4 * 4]
                try:
                    decoded = base64.b64decode(body)
                except ValueError:
                    continue
                assert secret[2:8].encode() not in decoded and secret[-8:].encode() not in decoded
