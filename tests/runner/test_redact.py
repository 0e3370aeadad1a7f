"""Secret masking: values, derived forms, overlaps, objects and split streams."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
from collections import namedtuple
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockade.runner import redact
from stockade.runner.redact import (
    MIN_LINE_LENGTH,
    SECRET_NAME_SUFFIXES,
    Masker,
    StreamMasker,
    is_secret_name,
    secrets_from_env,
)

# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    ["API_KEY", "api_key", "Aws_Secret", "GH_TOKEN", "DB_PASSWORD", "GCP_CREDENTIAL", "_KEY"],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["KEY", "TOKEN", "PASSWORD", "KEYS", "API_KEY_ID", "MONKEY", "TOKENS", "PATH", ""]
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_suffixes_are_the_documented_ones() -> None:
    assert SECRET_NAME_SUFFIXES == ("_KEY", "_SECRET", "_TOKEN", "_PASSWORD", "_CREDENTIAL")


def test_secrets_from_env() -> None:
    env = {
        "PATH": "/bin",
        "API_KEY": "k1",
        "EMPTY_TOKEN": "",
        "BLANK_SECRET": "  ",
        "DB_PASSWORD": "pw",
        "OTHER_TOKEN": "k1",
    }
    assert secrets_from_env(env) == ["k1", "pw"]


# --------------------------------------------------------------------------- Masker basics


def test_empty_masker_passes_everything_through() -> None:
    masker = Masker()
    assert not masker
    assert masker.max_len == 0
    data = b"hello secret"
    assert masker.mask_bytes(data) is data
    assert masker.mask_text("x") == "x"
    obj = {"a": ["b"]}
    assert masker.mask_obj(obj) is obj


def test_masks_every_occurrence() -> None:
    masker = Masker(["hunter2"])
    assert masker
    assert masker.mask_bytes(b"pw=hunter2; again hunter2!") == b"pw=***; again ***!"
    assert masker.mask_text("hunter2hunter2") == "******"
    assert masker.mask_bytes(b"hunter") == b"hunter"


def test_blank_values_are_ignored() -> None:
    masker = Masker(["", "   ", "\n\t"])
    assert not masker
    assert masker.version == 0


def test_version_changes_only_when_values_grow() -> None:
    masker = Masker()
    masker.add("alpha")
    version = masker.version
    masker.add("alpha")
    masker.add("")
    assert masker.version == version
    masker.add("beta")
    assert masker.version > version


def test_max_len_is_in_bytes() -> None:
    # The longest forms are the JSON (ASCII) and URL-encoded ones, in bytes.
    assert Masker(["hé"]).max_len == len("h\\u00e9") == len("h%C3%A9")
    assert Masker(["h€ll"]).max_len == len("h%E2%82%ACll")
    assert Masker(['a"b']).max_len == len("a%22b")
    assert Masker(["€€"]).max_len == len("%E2%82%AC%E2%82%AC") > len("€€".encode())


def test_values_added_later_apply() -> None:
    masker = Masker()
    masker.add("late-secret")
    assert masker.mask_text("is late-secret") == "is ***"


def test_surrounding_whitespace_is_not_needed() -> None:
    masker = Masker(["tok-123\n"])
    assert masker.mask_text("token: tok-123.") == "token: ***."


def test_short_single_line_secret_is_still_masked() -> None:
    assert Masker(["x"]).mask_text("xyz") == "***yz"


def test_repr_does_not_leak() -> None:
    assert "hunter2" not in repr(Masker(["hunter2"]))


def test_longest_first_hides_a_secret_containing_another() -> None:
    masker = Masker(["abc", "xxabcxx"])
    assert masker.mask_text("1 xxabcxx 2 abc") == "1 *** 2 ***"


@pytest.mark.parametrize(
    ("secrets", "text", "masked"),
    [
        (["abcd", "cdef"], "__abcdef__", "__***__"),  # partial overlap: one run
        (["aa"], "aaa", "***"),  # a value overlapping itself
        (["aba"], "ababa", "***"),
        (["ab", "ba"], "abab ba", "*** ***"),
        (["abc"], "abcabc", "******"),  # adjacent, not overlapping: two masks
        (["a*b"], "xa*by", "x***y"),
        (["**"], "a**b", "a***b"),
    ],
)
def test_overlapping_secrets_leave_nothing_visible(
    secrets: list[str], text: str, masked: str
) -> None:
    masker = Masker(secrets)
    assert masker.mask_text(text) == masked
    assert masker.mask_bytes(text.encode()) == masked.encode()


def test_non_ascii_secret_in_bytes() -> None:
    masker = Masker(["pässwörd"])
    assert masker.mask_bytes("x pässwörd y".encode()) == b"x *** y"


# --------------------------------------------------------------------------- derived forms

KEY = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nab\n-----END KEY-----\n"


def test_multi_line_secret_is_masked_whole_and_line_by_line() -> None:
    masker = Masker([KEY])
    assert masker.mask_text("x" + KEY + "y") == "x***y"
    assert masker.mask_text("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n") == "line: ***\n"
    # A line shorter than MIN_LINE_LENGTH is not masked on its own.
    assert len("ab") < MIN_LINE_LENGTH
    assert masker.mask_text("ab cd") == "ab cd"


def test_multi_line_secret_with_crlf() -> None:
    masker = Masker(["first-line\r\nsecond-line"])
    assert masker.mask_text("a first-line b") == "a *** b"
    assert masker.mask_text("second-line\r\n") == "***\r\n"
    assert masker.mask_text("first-line\nsecond-line") == "***"  # LF form of the whole
    assert masker.mask_text("first-line\r\nsecond-line") == "***"


def test_multi_line_secret_lines_are_stripped() -> None:
    masker = Masker(["  indented-line  \nother-line"])
    assert masker.mask_text("[indented-line]") == "[***]"


@pytest.mark.parametrize("secret", ['pa"ss', "back\\slash", "new\nline", "tab\tbed", "naïve-€"])
def test_json_escaped_form_is_masked(secret: str) -> None:
    masker = Masker([secret])
    for ensure_ascii in (True, False):
        encoded = json.dumps({"value": secret, "list": [secret]}, ensure_ascii=ensure_ascii)
        masked = masker.mask_text(encoded)
        assert json.loads(masked) == {"value": "***", "list": ["***"]}


# --------------------------------------------------------------------------- mask_obj


def test_mask_obj_recurses() -> None:
    Point = namedtuple("Point", "x y")
    masker = Masker(["s3cr3t"])
    obj = {
        "s3cr3t": ["a s3cr3t", ("s3cr3t", 1), {"nested": b"s3cr3t!"}],
        "n": 5,
        "f": 1.5,
        "none": None,
        "flag": True,
        "point": Point("s3cr3t", 2),
        "set": {"s3cr3t"},
        "frozen": frozenset({"s3cr3t"}),
    }
    assert masker.mask_obj(obj) == {
        "***": ["a ***", ("***", 1), {"nested": b"***!"}],
        "n": 5,
        "f": 1.5,
        "none": None,
        "flag": True,
        "point": Point("***", 2),
        "set": {"***"},
        "frozen": frozenset({"***"}),
    }
    assert type(masker.mask_obj(Point("a", "b"))) is Point


def test_mask_obj_leaves_other_types() -> None:
    class Thing:
        def __str__(self) -> str:
            return "s3cr3t"

    thing = Thing()
    assert Masker(["s3cr3t"]).mask_obj(thing) is thing


@pytest.mark.parametrize("secret", ["p@ss w/rd+1&x=y", "tøken-ü 42"])
def test_url_encoded_forms_are_masked(secret: str) -> None:
    masker = Masker([secret])
    for form in (quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)):
        if form != secret and "/" not in form:  # quote() keeps "/" (covered by safe="")
            assert masker.mask_text(f"?q={form}&z=1") == "?q=***&z=1", form


SECRET_B64 = "s3cr3t-t0ken-0f-24-bytes"


def _revealed(visible: str, urlsafe: bool) -> bytes:
    """Every byte any 4-character-aligned stretch of ``visible`` decodes to."""
    decode = base64.urlsafe_b64decode if urlsafe else base64.b64decode
    found = b""
    for piece in visible.split("\n"):
        for start in range(4):
            body = piece[start:]
            body = body[: len(body) - len(body) % 4]
            with contextlib.suppress(ValueError):
                found += decode(body) + b"|"
    return found


@pytest.mark.parametrize("prefix", range(6))
@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_inside_a_longer_stream_is_masked_at_every_alignment(
    prefix: int, urlsafe: bool
) -> None:
    raw = b"u" * prefix + b"user:" + SECRET_B64.encode() + b"\nMORE=stuff\n"
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    stream = "HOME=/root\n" + encode(raw).decode()
    assert SECRET_B64[3:9].encode() in _revealed(stream, urlsafe)  # the test sees it unmasked
    masked = Masker([SECRET_B64]).mask_text(stream)
    assert "***" in masked
    # What stays visible at either end of the mask encodes at most 2 bytes of the secret.
    revealed = b"".join(_revealed(piece, urlsafe) for piece in masked.split("***"))
    secret = SECRET_B64.encode()
    assert not any(secret[i : i + 3] in revealed for i in range(len(secret) - 2))


def test_a_standalone_base64_of_a_secret_is_masked() -> None:
    encoded = base64.b64encode(SECRET_B64.encode() + b"\n").decode()  # echo "$S" | base64
    assert Masker([SECRET_B64]).mask_text(encoded).startswith("***")


def test_short_secrets_get_no_base64_forms() -> None:
    # A fragment needs 6 bytes of the secret (8 characters) at its alignment.
    assert masked_forms(Masker(["abcde"])) == [b"abcde"]
    assert masked_forms(Masker(["abcdef"])) == [b"YWJjZGVm", b"abcdef"]  # aligned only
    assert len(masked_forms(Masker(["abcdefgh"]))) == 4  # every alignment


# --------------------------------------------------------------------------- properties


def reference_mask(data: bytes, secrets: list[bytes]) -> bytes:
    """The definition, written the slow, obvious way: find every occurrence
    at every position, merge occurrences that share a byte into runs, and
    write each run as one ``***``."""
    hits = sorted(
        (i, i + len(secret))
        for secret in secrets
        for i in range(len(data) - len(secret) + 1)
        if data[i : i + len(secret)] == secret
    )
    runs: list[list[int]] = []
    for start, stop in hits:
        if runs and start < runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], stop)
        else:
            runs.append([start, stop])
    out, pos = b"", 0
    for start, stop in runs:
        out += data[pos:start] + b"***"
        pos = stop
    return out + data[pos:]


def masked_forms(masker: Masker) -> list[bytes]:
    return [pattern for pattern, _ in masker.byte_patterns()]


_alphabet = "ab*\n"
_secret = st.text(alphabet=_alphabet, min_size=1, max_size=5).filter(lambda s: s.strip())
_data = st.text(alphabet=_alphabet + "c", max_size=60)


@given(st.lists(_secret, min_size=1, max_size=4), _data)
def test_mask_matches_the_definition(secrets: list[str], text: str) -> None:
    masker = Masker(secrets)
    expected = reference_mask(text.encode(), masked_forms(masker))
    assert masker.mask_bytes(text.encode()) == expected
    assert masker.mask_text(text) == expected.decode()


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3), st.text(max_size=80))
def test_mask_never_leaves_a_secret(secrets: list[str], text: str) -> None:
    masker = Masker(secrets)
    for secret in secrets:
        text_with = text[: len(text) // 2] + secret + text[len(text) // 2 :]
        masked = masker.mask_text(text_with)
        for value in secrets:
            if value.strip() and "*" not in value:
                assert value.strip() not in masked


_plain_secret = st.text(alphabet="abcx", min_size=2, max_size=12)


@settings(max_examples=300)
@given(st.lists(_plain_secret, min_size=1, max_size=6), st.text(alphabet="abcxy\n", max_size=200))
def test_one_pass_mask_matches_the_definition(secrets: list[str], text: str) -> None:
    """Sets without ``*`` whose occurrences cannot partly overlap take the one-pass scan."""
    masker = Masker(secrets)
    data = (text + secrets[0] + text[::-1] + secrets[-1]).encode()
    assert masker.mask_bytes(data) == reference_mask(data, masked_forms(masker))


def test_one_pass_mask_is_built() -> None:
    # `make test` builds the optional C extension (gcc is a test dependency),
    # so the suite checks the fast path, not only the fallback.
    assert redact.one_pass(), "stockade.runner._maskscan missing: reinstall with gcc"


@pytest.mark.parametrize("size", [300, 5000])
def test_one_pass_mask_handles_long_values_and_many_secrets(size: int) -> None:
    long = "".join(chr(ord("a") + (i * 7) % 26) for i in range(size))
    secrets = [long, *(f"tok-{i:03d}-{i * 7919 % 1000:03d}" for i in range(40))]
    masker = Masker(secrets)
    filler = b"lorem ipsum dolor sit amet " * 50
    data = filler + long.encode() + filler + b"tok-017-" + b"tok-017-623 tok-039-" + filler
    assert masker.mask_bytes(data) == reference_mask(data, masked_forms(masker))
    assert masker.mask_bytes(filler) is filler  # nothing found: the chunk itself
    alone = Masker([long])  # every value longer than the scan's 256-byte window
    assert alone.mask_bytes(data) == reference_mask(data, masked_forms(alone))


def chunks_of(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=300)
@given(
    st.lists(_secret, max_size=4),
    _data,
    st.lists(st.integers(min_value=0, max_value=1000), max_size=12),
)
def test_stream_equals_whole(secrets: list[str], text: str, cuts: list[int]) -> None:
    masker = Masker(secrets)
    data = text.encode()
    stream = StreamMasker(masker)
    out = []
    for chunk in chunks_of(data, cuts):
        out.append(stream.feed(chunk))
        assert len(stream._hold) <= max(masker.max_len - 1, 0)
    out.append(stream.flush())
    assert b"".join(out) == masker.mask_bytes(data)


@given(
    st.lists(st.text(min_size=1, max_size=12).filter(lambda s: s.strip()), min_size=1, max_size=3),
    st.text(max_size=100),
    st.lists(st.integers(min_value=0, max_value=1000), max_size=12),
)
def test_stream_equals_whole_on_any_text(secrets: list[str], text: str, cuts: list[int]) -> None:
    masker = Masker(secrets)
    data = (text + secrets[0] + text).encode("utf-8", "surrogatepass")
    stream = StreamMasker(masker)
    out = [stream.feed(chunk) for chunk in chunks_of(data, cuts)]
    out.append(stream.flush())
    assert b"".join(out) == masker.mask_bytes(data)


# --------------------------------------------------------------------------- StreamMasker


def test_stream_masks_a_secret_split_across_reads() -> None:
    stream = StreamMasker(Masker(["hunter2"]))
    out = [stream.feed(b"pw=hun"), stream.feed(b"te"), stream.feed(b"r2 ok"), stream.flush()]
    assert b"".join(out) == b"pw=*** ok"
    assert b"hun" not in b"".join(out[:2])


def test_stream_holds_back_at_most_max_len_minus_one() -> None:
    masker = Masker(["0123456789"])
    stream = StreamMasker(masker)
    emitted = stream.feed(b"x" * 100)
    assert emitted == b"x" * (100 - (masker.max_len - 1))
    assert stream.flush() == b"x" * (masker.max_len - 1)


def test_stream_without_secrets_passes_through() -> None:
    stream = StreamMasker(Masker())
    assert stream.feed(b"abc") == b"abc"
    assert stream.flush() == b""


def test_stream_overlapping_run_is_bounded() -> None:
    masker = Masker(["aa"])
    stream = StreamMasker(masker)
    out = [stream.feed(b"x" + b"a" * 1000)]
    for _ in range(1000):
        out.append(stream.feed(b"a" * 1000))
        assert len(stream._hold) <= 1
    out.append(stream.feed(b"y"))
    out.append(stream.flush())
    assert b"".join(out) == b"x***y"


def test_stream_picks_up_values_added_mid_stream() -> None:
    masker = Masker(["first"])
    stream = StreamMasker(masker)
    head = stream.feed(b"first sec")
    masker.add("second")
    rest = stream.feed(b"ond!") + stream.flush()
    assert head + rest == b"*** ***!"


def test_stream_flush_twice() -> None:
    stream = StreamMasker(Masker(["abc"]))
    assert stream.feed(b"xab") == b"x"
    assert stream.flush() == b"ab"
    assert stream.flush() == b""
