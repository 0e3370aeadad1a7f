"""The stdout protocol through a real process: commands consumed, effects kept."""

from __future__ import annotations

from stockade.runner.result import Outcome
from tests.runner.helpers import run_spec, sh


def test_commands_are_consumed_and_applied() -> None:
    line = r"""
echo before
echo '::set-output name=answer::42'
echo '::save-state name=cursor::page%0A2'
echo '::error file=src/a.py,line=10,col=2,title=Bad::it%25 broke'
echo '::notice::fyi'
echo '::debug::details'
echo '::group::Build'
echo inside
echo '::endgroup::'
echo '::progress value=50::halfway'
echo after
"""
    result, sink = run_spec(sh(line))
    assert result.outcome is Outcome.SUCCEEDED
    assert sink.text() == "before\ninside\nafter\n"
    assert result.outputs["answer"] == "42"
    assert result.state == {"cursor": "page\n2"}
    error = result.annotations[0]
    assert (error.level, error.file, error.line, error.col, error.title, error.message) == (
        "error",
        "src/a.py",
        10,
        2,
        "Bad",
        "it% broke",
    )
    assert [a.level for a in result.annotations] == ["error", "notice"]
    progress = [e.data for e in sink.events if e.kind == "progress"]
    assert progress == [{"value": 50.0, "message": "halfway"}]
    names = [e.data["name"] for e in sink.events if e.kind == "command"]
    assert names == [
        "set-output",
        "save-state",
        "error",
        "notice",
        "debug",
        "group",
        "endgroup",
        "progress",
    ]


def test_stop_commands_pass_command_lines_through_verbatim() -> None:
    line = r"""
echo '::stop-commands::tok123'
echo '::set-output name=x::1'
echo '::tok123::'
echo '::set-output name=y::2'
"""
    result, sink = run_spec(sh(line))
    assert sink.text() == "::set-output name=x::1\n"
    assert result.outputs == {"stdout": "::set-output name=x::1\n", "y": "2"}


def test_unknown_and_malformed_commands_never_fail_the_job() -> None:
    line = "echo '::frobnicate::x'; echo '::frobnicate::y'; echo '::error file::'; echo '::'; echo '::progress value=abc::m'"
    result, sink = run_spec(sh(line))
    assert result.outcome is Outcome.SUCCEEDED
    assert "::frobnicate::x\n::frobnicate::y\n" in sink.text()
    warnings = [e.data["message"] for e in sink.events if e.kind == "warning"]
    assert sum("frobnicate" in w for w in warnings) == 1


def test_output_file_key_values_and_heredocs() -> None:
    line = r"""
echo "name=value with = sign" >> "$STOCKADE_OUTPUT"
printf 'notes<<EOF\nline one\nline two\nEOF\n' >> "$STOCKADE_OUTPUT"
echo '::set-output name=name::from-command'
"""
    result, _ = run_spec(sh(line))
    assert result.outputs["notes"] == "line one\nline two"
    assert result.outputs["name"] == "from-command"  # set-output wins over the file


def test_malformed_output_file_fails_a_successful_job_clearly() -> None:
    result, _ = run_spec(sh("printf 'k<<EOF\\nunterminated\\n' >> \"$STOCKADE_OUTPUT\""))
    assert result.outcome is Outcome.FAILED
    assert result.reason == "output_error"
    assert result.error


def test_indented_and_upper_case_commands_work_as_in_actions() -> None:
    # The Actions runner trims leading whitespace and matches names and keys
    # without regard to case; a job written for it must behave the same here.
    line = r"""
echo before
echo '  ::ERROR FILE=a.py,LINE=3::bad'
printf '\t::Set-Output Name=answer::42\n'
printf '    ::notice'; sleep 0.3; echo '::slow partial line'
echo '    indented text stays'
echo after
"""
    result, sink = run_spec(sh(line))
    assert result.outcome is Outcome.SUCCEEDED
    assert sink.text() == "before\n    indented text stays\nafter\n"
    assert result.outputs["answer"] == "42"
    error, notice = result.annotations
    assert (error.level, error.file, error.line, error.message) == ("error", "a.py", 3, "bad")
    assert (notice.level, notice.message) == ("notice", "slow partial line")
