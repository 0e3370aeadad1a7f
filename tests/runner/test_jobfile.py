"""Reading a file the job controls: every hostile thing at the path, on real files.

Each case runs twice: with ``openat2`` and with the component-wise walk
that stands in for it on kernels without it (``STOCKADE_OPENAT2=0``); both
must give the same answer.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from stockade.errors import JobFileError, JobFileProblem, OutputError
from stockade.runner import jobfile

LIMIT = 1 << 20


@pytest.fixture(params=["openat2", "walk"])
def ws(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with a file inside and a secret outside it."""
    if request.param == "walk":
        monkeypatch.setenv("STOCKADE_OPENAT2", "0")
    else:
        monkeypatch.delenv("STOCKADE_OPENAT2", raising=False)
    (tmp_path / "secret.json").write_text('{"token": "host-only"}')
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    (workspace / "sub" / "out.json").write_text('{"ok": 1}')
    return workspace


def _read(ws: Path, relative: str, limit: int = LIMIT) -> bytes:
    return bytes(jobfile.read(str(ws), relative, limit=limit, shown=f"file {relative!r}"))


def _refused(ws: Path, relative: str, limit: int = LIMIT) -> JobFileError:
    with pytest.raises(JobFileError) as caught:
        _read(ws, relative, limit)
    assert "host-only" not in caught.value.message
    return caught.value


def test_a_regular_file_and_symlinks_that_stay_inside_are_read(ws: Path) -> None:
    (ws / "rel").symlink_to("sub/out.json")
    (ws / "dir").symlink_to("sub")
    (ws / "here").symlink_to(".")
    for path in ("sub/out.json", "rel", "dir/out.json", "sub/../sub/out.json", "here/here/rel"):
        assert _read(ws, path) == b'{"ok": 1}', path


@pytest.mark.parametrize(
    ("make", "path"),
    [
        (lambda ws: None, "../secret.json"),
        (lambda ws: None, "/etc/hostname"),
        (lambda ws: (ws / "abs").symlink_to(ws.parent / "secret.json"), "abs"),
        (lambda ws: (ws / "up").symlink_to("../secret.json"), "up"),
        (lambda ws: (ws / "sub" / "up").symlink_to(".."), "sub/up/../secret.json"),
        (lambda ws: (ws / "out").symlink_to(ws.parent), "out/secret.json"),
        (lambda ws: (ws / "self").symlink_to("/proc/self/root/etc/hostname"), "self"),
    ],
    ids=[
        "dotdot",
        "absolute",
        "abs-symlink",
        "rel-symlink",
        "climbing",
        "dir-symlink",
        "proc-link",
    ],
)
def test_a_path_out_of_the_workspace_is_refused(ws: Path, make: object, path: str) -> None:
    make(ws)  # type: ignore[operator]
    error = _refused(ws, path)
    assert error.problem is JobFileProblem.ESCAPES
    assert "workspace" in error.message and isinstance(error, OutputError)


def test_no_symlink_at_all_where_none_is_followed(ws: Path) -> None:
    (ws / "rel").symlink_to("sub/out.json")
    with pytest.raises(JobFileError, match="through a symlink") as caught:
        jobfile.read(str(ws), "rel", limit=LIMIT, shown="$STOCKADE_OUTPUT", symlinks=False)
    assert caught.value.problem is JobFileProblem.SYMLINK


def test_a_fifo_without_a_writer_is_refused_at_once(ws: Path) -> None:
    os.mkfifo(ws / "out.json")
    outcome: list[object] = []
    reader = threading.Thread(target=lambda: outcome.append(_refused(ws, "out.json")), daemon=True)
    reader.start()
    reader.join(20)  # a blocking open would wait here for a writer that never comes
    if reader.is_alive():
        with open(ws / "out.json", "wb"):  # free the reader so the test process can end
            pass
        pytest.fail("the read of a FIFO blocked")
    (error,) = outcome
    assert isinstance(error, JobFileError) and error.problem is JobFileProblem.NOT_REGULAR
    assert "'out.json' is a FIFO, not a regular file" in error.message


def test_a_directory_a_socket_and_a_device_are_refused(ws: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(ws / "sock"))
    (ws / "dev").symlink_to("/dev/null")  # absolute: refused before it is opened
    (ws / "nested").mkdir()
    try:
        assert _refused(ws, "sock").problem is JobFileProblem.NOT_REGULAR
        assert _refused(ws, "nested").problem is JobFileProblem.NOT_REGULAR
        assert _refused(ws, ".").problem is JobFileProblem.NOT_REGULAR
        assert _refused(ws, "dev").problem is JobFileProblem.ESCAPES
    finally:
        server.close()


def test_a_missing_file_says_so(ws: Path) -> None:
    error = _refused(ws, "sub/none.json")
    assert error.problem is JobFileProblem.MISSING
    assert error.message == "file 'sub/none.json' was not written by the job"


def test_a_sparse_file_over_the_limit_is_refused_from_its_size(ws: Path) -> None:
    with open(ws / "big", "wb") as big:
        big.truncate(1 << 40)  # a terabyte of nothing: reading it would take hours
    began = time.monotonic()
    error = _refused(ws, "big")
    assert time.monotonic() - began < 10
    assert (error.problem, error.size, error.limit) == (JobFileProblem.TOO_LARGE, 1 << 40, LIMIT)
    assert error.message == (
        f"file 'big' is {1 << 40} bytes, over the limit of {LIMIT} bytes (1MiB); "
        "raise max_output (--max-output SIZE, or max_output: in the task) or write less"
    )


def test_exactly_the_limit_is_read_one_byte_more_is_not(ws: Path) -> None:
    (ws / "f").write_bytes(b"x" * 100)
    assert _read(ws, "f", limit=100) == b"x" * 100
    assert _refused(ws, "f", limit=99).problem is JobFileProblem.TOO_LARGE
    (ws / "empty").write_bytes(b"")
    assert _read(ws, "empty", limit=0) == b""


def test_a_file_that_grows_while_it_is_read_is_cut_at_the_limit(ws: Path) -> None:
    # The size is checked from an fstat taken before the file grew.
    path = ws / "grows"
    path.write_bytes(b"")
    fd, info = jobfile.open_regular(str(ws), "grows", shown="file 'grows'")
    try:
        path.write_bytes(b"y" * 5000)
        with pytest.raises(JobFileError, match="is more than 4096 bytes") as caught:
            jobfile.read_open(fd, info, limit=4096, shown="file 'grows'")
        assert caught.value.problem is JobFileProblem.TOO_LARGE
    finally:
        os.close(fd)


def test_a_workspace_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match=r"the workspace .*gone") as caught:
        jobfile.read(str(tmp_path / "gone"), "x", limit=LIMIT, shown="file 'x'")
    assert caught.value.problem is JobFileProblem.UNREADABLE


def test_chunks_read_the_whole_file_in_pieces_and_stop_past_the_limit(ws: Path) -> None:
    (ws / "f").write_bytes(bytes(range(256)) * 9000)  # 2.3 MB: three pieces
    fd, info = jobfile.open_regular(str(ws), "f", shown="file 'f'")
    try:
        pieces = list(jobfile.chunks(fd, info, limit=info.st_size, shown="file 'f'"))
        assert b"".join(pieces) == bytes(range(256)) * 9000 and len(pieces) == 3
        with pytest.raises(JobFileError, match="over the limit of 1000 bytes"):
            list(jobfile.chunks(fd, info, limit=1000, shown="file 'f'"))
    finally:
        os.close(fd)


def test_a_read_error_is_a_job_file_error(ws: Path) -> None:
    # A directory's fd with a forged regular-file stat: the read fails with
    # EISDIR, which must come back as the job's error, not an OSError.
    fd = os.open(ws, os.O_RDONLY)
    try:
        info = os.stat(ws / "sub" / "out.json")
        with pytest.raises(JobFileError, match="cannot be read: Is a directory") as caught:
            jobfile.read_open(fd, info, limit=LIMIT, shown="file 'x'")
        assert caught.value.problem is JobFileProblem.UNREADABLE
    finally:
        os.close(fd)
