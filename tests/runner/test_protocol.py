"""The stdout protocol: escaping, the line parser, stop-commands, $STOCKADE_OUTPUT."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.runner.protocol import (
    KNOWN_COMMANDS,
    Command,
    ProtocolParser,
    escape_data,
    escape_property,
    format_command,
    might_contain_command,
    parse_output_file,
    unescape_data,
    unescape_property,
)

# --------------------------------------------------------------------------- escaping


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("100%", "100%25"),
        ("a\nb", "a%0Ab"),
        ("a\r\nb", "a%0D%0Ab"),
        ("%0A", "%250A"),
        ("a:b,c", "a:b,c"),
    ],
)
def test_escape_data(raw: str, escaped: str) -> None:
    assert escape_data(raw) == escaped
    assert unescape_data(escaped) == raw


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("C:\\x", "C%3A\\x"),
        ("a,b", "a%2Cb"),
        ("50%: a,\nb", "50%25%3A a%2C%0Ab"),
        ("%3A", "%253A"),
        ("k=v", "k=v"),
    ],
)
def test_escape_property(raw: str, escaped: str) -> None:
    assert escape_property(raw) == escaped
    assert unescape_property(escaped) == raw


def test_unescape_leaves_unknown_sequences() -> None:
    assert unescape_data("%41 %zz %") == "%41 %zz %"
    assert unescape_data("%3A%2C") == "%3A%2C"  # property escapes are not data escapes
    assert unescape_property("%3A%2C%41") == ":,%41"


@given(st.text())
def test_data_escaping_round_trips(s: str) -> None:
    escaped = escape_data(s)
    assert "\n" not in escaped and "\r" not in escaped
    assert unescape_data(escaped) == s


@given(st.text())
def test_property_escaping_round_trips(s: str) -> None:
    escaped = escape_property(s)
    assert not set(escaped) & set("\r\n:,")
    assert unescape_property(escaped) == s


# --------------------------------------------------------------------------- format_command


def test_format_command() -> None:
    assert format_command("debug", {}, "hi") == "::debug::hi"
    assert format_command("endgroup") == "::endgroup::"
    assert (
        format_command("error", {"file": "a.py", "line": "3", "title": "x:y"}, "bad\nthing")
        == "::error file=a.py,line=3,title=x%3Ay::bad%0Athing"
    )


@pytest.mark.parametrize("name", ["", "has space", "a::b", "1abc", "é"])
def test_format_command_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="command name"):
        format_command(name, {}, "x")


@pytest.mark.parametrize("key", ["", "a b", "a=b", "a,b", "a:b"])
def test_format_command_rejects_bad_keys(key: str) -> None:
    with pytest.raises(ValueError, match="property name"):
        format_command("error", {key: "v"}, "x")


# Names whose round trip has no side effect on the parser.
_STATELESS = sorted(KNOWN_COMMANDS - {"stop-commands"})
_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)


@given(
    st.sampled_from(_STATELESS),
    st.dictionaries(_keys, st.text(), max_size=4),
    st.text(),
)
def test_format_then_parse_round_trips(name: str, props: dict[str, str], message: str) -> None:
    parser = ProtocolParser()
    line = format_command(name, props, message)
    assert "\n" not in line
    keys = {k.lower(): v for k, v in props.items()}  # keys are read in lower case
    assert parser.feed_line(line) == Command(name, keys, message)
    assert parser.warnings == []


# --------------------------------------------------------------------------- feed_line


def feed(line: str) -> tuple[Command | None, list[str]]:
    parser = ProtocolParser()
    return parser.feed_line(line), parser.take_warnings()


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("::set-output name=result::42", Command("set-output", {"name": "result"}, "42")),
        ("::save-state name=cursor::page 3", Command("save-state", {"name": "cursor"}, "page 3")),
        ("::add-mask::s3cr3t", Command("add-mask", {}, "s3cr3t")),
        (
            "::error file=app.py,line=10,col=5,title=Bad%3A thing::it broke",
            Command(
                "error",
                {"file": "app.py", "line": "10", "col": "5", "title": "Bad: thing"},
                "it broke",
            ),
        ),
        ("::warning::careful", Command("warning", {}, "careful")),
        ("::notice title=FYI::done", Command("notice", {"title": "FYI"}, "done")),
        ("::debug::x=1", Command("debug", {}, "x=1")),
        ("::group::Build", Command("group", {}, "Build")),
        ("::endgroup::", Command("endgroup", {}, "")),
        ("::progress value=42.5::halfway", Command("progress", {"value": "42.5"}, "halfway")),
        ("::echo::on", Command("echo", {}, "on")),
        ("::error::multi%0Aline 100%25", Command("error", {}, "multi\nline 100%")),
        ("::error::a::b", Command("error", {}, "a::b")),
        ("::error ::msg", Command("error", {}, "msg")),
        ("::error  file=a ,, line=2 ::m", Command("error", {"file": "a ", "line": "2 "}, "m")),
        ("::error file=a,file=b::m", Command("error", {"file": "b"}, "m")),
        ("::error title=a=b::m", Command("error", {"title": "a=b"}, "m")),
        ("::error title=::m", Command("error", {"title": ""}, "m")),
        ("::debug::ends with cr\r", Command("debug", {}, "ends with cr")),
        ("::debug::two crs\r\r", Command("debug", {}, "two crs\r")),
        # As the Actions runner: leading whitespace, names and keys in any case.
        (" ::error::x", Command("error", {}, "x")),
        ("\t  ::notice::y", Command("notice", {}, "y")),
        ("::ERROR FILE=a.py,LINE=3::m", Command("error", {"file": "a.py", "line": "3"}, "m")),
        ("  ::Set-Output Name=v::1", Command("set-output", {"name": "v"}, "1")),
        ("::group::Keeps Title Case", Command("group", {}, "Keeps Title Case")),
    ],
)
def test_known_commands(line: str, command: Command) -> None:
    assert feed(line) == (command, [])


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello",
        "a ::error::x",
        "\u00a0::error::x",  # only ASCII whitespace may come before a command
        "::",
        "::::",
        "::error",  # no second '::'
        "::1",  # IPv6 loopback
        "::ffff:10.0.0.1",
        "::1::",  # not a command name
        ":::x::y",
        ":: error::x",
        ":error::x",
    ],
)
def test_plain_lines(line: str) -> None:
    assert feed(line) == (None, [])


def test_unknown_command_is_output_and_warned_once() -> None:
    parser = ProtocolParser()
    assert parser.feed_line("::set-env name=A::1") is None
    assert parser.feed_line("::set-env name=B::2") is None
    assert parser.feed_line("::frobnicate::x") is None
    assert parser.take_warnings() == [
        "unknown command 'set-env' kept as output",
        "unknown command 'frobnicate' kept as output",
    ]
    assert parser.take_warnings() == []
    assert parser.feed_line("::set-env::again") is None
    assert parser.warnings == []  # still once per name after a drain


def test_unknown_names_warn_in_lower_case() -> None:
    assert feed("  ::FROB::x") == (None, ["unknown command 'frob' kept as output"])


@pytest.mark.parametrize(
    "line",
    [
        "::error file::x",
        "::error file=a,line::x",
        "::error =a::x",
        "::error a b=c::x",
        "::error é=c::x",
    ],
)
def test_malformed_command_is_output_and_warned(line: str) -> None:
    command, warnings = feed(line)
    assert command is None
    assert len(warnings) == 1
    assert warnings[0].startswith("malformed command 'error' kept as output: ")


def test_malformed_warning_never_quotes_the_line() -> None:
    command, warnings = feed("::add-mask hunter2::x")
    assert command is None
    assert "hunter2" not in warnings[0]


def test_malformed_is_warned_once_per_name() -> None:
    parser = ProtocolParser()
    parser.feed_line("::error a::x")
    parser.feed_line("::error b::x")
    parser.feed_line("::warning c::x")
    assert len(parser.take_warnings()) == 2


# --------------------------------------------------------------------------- stop-commands


def test_stop_commands_and_resume() -> None:
    parser = ProtocolParser()
    assert parser.feed_line("::stop-commands::tok123") == Command("stop-commands", {}, "tok123")
    assert parser.stopped
    assert parser.feed_line("::error::not now") is None
    assert parser.feed_line("::unknown::not warned either") is None
    assert parser.feed_line("::tok123::extra") is None
    assert parser.feed_line("::tok12::") is None
    assert parser.feed_line(" ::TOK123::\r") == Command("resume-commands", {}, "tok123")
    assert not parser.stopped
    assert parser.feed_line("::error::now") == Command("error", {}, "now")
    assert parser.warnings == []


def test_stop_token_is_compared_literally() -> None:
    parser = ProtocolParser()
    assert parser.feed_line("::stop-commands::a%3Ab") == Command("stop-commands", {}, "a%3Ab")
    assert parser.feed_line("::a:b::") is None
    assert parser.feed_line("::a%3Ab::") == Command("resume-commands", {}, "a%3Ab")


def test_stop_commands_can_nest_only_by_resuming() -> None:
    parser = ProtocolParser()
    parser.feed_line("::stop-commands::one")
    assert parser.feed_line("::stop-commands::two") is None
    assert parser.feed_line("::two::") is None
    assert parser.feed_line("::one::") == Command("resume-commands", {}, "one")


@pytest.mark.parametrize(
    "line", ["::stop-commands::", "::stop-commands:: tok", "::stop-commands::error"]
)
def test_bad_stop_token_is_output_and_warned(line: str) -> None:
    parser = ProtocolParser()
    assert parser.feed_line(line) is None
    assert not parser.stopped
    (warning,) = parser.take_warnings()
    assert "stop-commands" in warning
    assert parser.feed_line("::debug::still on") == Command("debug", {}, "still on")


# --------------------------------------------------------------------------- might_contain_command


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        (b"", False),
        (b"hello\nworld\n", False),
        (b"a::b\n", False),
        (b"::error::x\n", True),
        (b"out\n::debug::x\n", True),
        (b"out\r\n::debug::x\r\n", True),
        (b"out\n ::debug::x\n", True),
        (b"out\n\t \f::debug::x\n", True),
        (b"  ::error::x\n", True),
        (b"out\nx ::debug::x\n", False),
        (b"::1\n", True),  # may say yes for a line that is no command
    ],
)
def test_might_contain_command(chunk: bytes, expected: bool) -> None:
    assert might_contain_command(chunk) is expected
    assert ProtocolParser().might_contain_command(chunk) is expected


def test_might_contain_command_while_stopped() -> None:
    parser = ProtocolParser()
    parser.feed_line("::stop-commands::tok")
    assert not parser.might_contain_command(b"::error::x\n::tik::\n")
    assert parser.might_contain_command(b"x\n::tok::\n")
    assert parser.might_contain_command(b"x\n  ::TOK::\n")
    parser.feed_line("::tok::")
    assert parser.might_contain_command(b"::error::x\n")


def test_might_contain_command_non_ascii_token_falls_back() -> None:
    parser = ProtocolParser()
    parser.feed_line("::stop-commands::jeton-é")
    assert parser.might_contain_command(b"x\n::jeton-\xff::\n")  # the caller may decode lossily
    assert not parser.might_contain_command(b"x\ny\n")


def _split(text: str) -> list[str]:
    return text.split("\n")


_lines = st.lists(
    st.one_of(
        st.text(),
        st.builds(lambda a, b: f"::{a}::{b}", st.text(), st.text()),
        st.builds(
            lambda n, p, m: f"::{n} {p}::{m}",
            st.sampled_from([*KNOWN_COMMANDS, "x"]),
            st.text(alphabet="ab=,% :\r"),
            st.text(),
        ),
        st.sampled_from(["::stop-commands::t", "::t::", "::stop-commands::", "::endgroup::"]),
    ).flatmap(
        lambda line: st.sampled_from(["", " ", "\t ", "\f", "\u00a0"]).map(lambda w: w + line)
    ),
    max_size=20,
)


@given(_lines)
def test_parser_never_raises_and_filter_never_misses(lines: list[str]) -> None:
    parser = ProtocolParser()
    for line in lines:
        for part in _split(line):
            might = parser.might_contain_command(part.encode("utf-8", "surrogatepass") + b"\n")
            command = parser.feed_line(part)
            assert command is None or might
            assert command is None or isinstance(command, Command)
        for warning in parser.take_warnings():
            assert isinstance(warning, str)


# --------------------------------------------------------------------------- $STOCKADE_OUTPUT


def test_output_file_simple_and_heredoc() -> None:
    text = (
        "a=1\n"
        "\n"
        "url=http://x/?q=1<<2\n"
        "multi<<EOF\n"
        "line one\n"
        "\n"
        "key=not a key\n"
        "EOF\n"
        "empty=\n"
        "a=2\n"
        "blank<<END\n"
        "END\n"
    )
    assert parse_output_file(text) == {
        "a": "2",
        "url": "http://x/?q=1<<2",
        "multi": "line one\n\nkey=not a key",
        "empty": "",
        "blank": "",
    }


def test_output_file_crlf_and_no_final_newline() -> None:
    assert parse_output_file("a=1\r\nm<<E\r\nx\r\ny\r\nE") == {"a": "1", "m": "x\ny"}


def test_output_file_heredoc_before_equals() -> None:
    assert parse_output_file("k<<D=1\nv\nD=1\n") == {"k": "v"}


def test_output_file_empty() -> None:
    assert parse_output_file("") == {}
    assert parse_output_file("\n  \n") == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a=1\njust text\n", "line 2: expected key=value"),
        ("=1\n", "line 1: output name ''"),
        ("a b=1\n", "line 1: output name 'a b'"),
        ("x=1\nm<<EOF\nvalue\n", "line 2: heredoc 'm' is never closed .*'EOF'"),
        ("m<<\nx\n", "line 1: heredoc m<< has no delimiter"),
        ("<<EOF\nx\nEOF\n", "line 1: output name ''"),
        ("m<<EOF\nx\n EOF\n", "never closed"),
    ],
)
def test_output_file_errors(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_output_file(text)


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,10}", fullmatch=True)


@given(st.dictionaries(_names, st.text(alphabet=st.characters(exclude_characters="\r"))))
def test_output_file_heredocs_round_trip(outputs: dict[str, str]) -> None:
    delim = "STOCKADE_EOF_7f3a"
    text = "".join(f"{k}<<{delim}\n{v}\n{delim}\n" for k, v in outputs.items())
    assert parse_output_file(text) == outputs
