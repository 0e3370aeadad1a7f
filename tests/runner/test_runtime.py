"""Runtime directories used again by a later attempt, and only when clean.

Real files on the real filesystem of ``tmp_path``; each way a job can leave
its directory changed (an extra file, a symlink, a hard link elsewhere, a
new mode, a renamed-over file, a subdirectory) must make stockade remove
the directory instead of handing it to the next attempt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stockade.errors import OutputError
from stockade.runner.runtime import Runtime, RuntimePool


@pytest.fixture
def base(tmp_path: Path) -> Path:
    folder = tmp_path / "base"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def pool(base: Path) -> Iterator[RuntimePool]:
    """A pool of its own that puts every data directory's attempts in ``base``."""
    mine = RuntimePool(place=lambda _: base)
    yield mine
    mine.drain()


def test_a_clean_directory_is_used_again_with_empty_output_and_new_state(
    pool: RuntimePool, base: Path, tmp_path: Path
) -> None:
    first = pool.acquire(tmp_path)
    first.write_state(b'{"page": "12345"}')
    with open(first.output, "a") as out:  # what a job does: append outputs
        out.write("version=1.4\n")
    (first.path / "input.json").write_text("{}")  # the input file stockade wrote
    assert first.read_output() == "version=1.4\n"
    first.recycle()
    assert pool.kept(base) == [first]
    assert sorted(os.listdir(first.path)) == ["output.env", "state.json"]
    again = pool.acquire(tmp_path)
    assert again is first and pool.kept(base) == []
    assert Path(again.output).read_text() == ""
    again.write_state(b"{}")
    assert Path(again.state).read_text() == "{}"  # shorter than before: truncated


def _extra_file(rt: Runtime) -> None:
    (rt.path / "left-behind").write_text("a secret of the last job")


def _symlinked_output(rt: Runtime) -> None:
    os.unlink(rt.output)
    os.symlink("/etc/hostname", rt.output)


def _output_linked_elsewhere(rt: Runtime) -> None:
    os.link(rt.output, rt.path.parent.parent / "spy")  # to read the next job's outputs


def _output_removed(rt: Runtime) -> None:
    os.unlink(rt.output)


def _state_renamed_over(rt: Runtime) -> None:
    Path(f"{rt.path}/new").write_text('{"forged": true}')
    os.rename(f"{rt.path}/new", rt.state)


def _output_made_writable_by_all(rt: Runtime) -> None:
    os.chmod(rt.output, 0o777)


def _directory_re_moded(rt: Runtime) -> None:
    os.chmod(rt.path, 0o777)


def _subdirectory(rt: Runtime) -> None:
    (rt.path / "sub").mkdir()


def _input_file_as_symlink(rt: Runtime) -> None:
    os.symlink("/etc/hostname", rt.path / "input.json")


@pytest.mark.parametrize(
    "tamper",
    [
        _extra_file, _symlinked_output, _output_linked_elsewhere, _output_removed,
        _state_renamed_over, _output_made_writable_by_all, _directory_re_moded,
        _subdirectory, _input_file_as_symlink,
    ],
)  # fmt: skip
def test_a_directory_the_job_changed_is_removed_not_reused(
    pool: RuntimePool, base: Path, tamper: Callable[[Runtime], None]
) -> None:
    rt = pool.acquire(base)
    tamper(rt)
    rt.recycle()
    assert pool.kept(base) == []
    assert not rt.path.exists() and not rt.path.is_symlink()
    assert os.path.exists("/etc/hostname")  # a symlink's target is left alone


def test_the_output_file_is_read_only_as_a_regular_file(base: Path) -> None:
    rt = Runtime.create(base / "attempt")
    try:
        _symlinked_output(rt)
        with pytest.raises(OutputError, match="a symlink"):
            rt.read_output()
        os.unlink(rt.output)
        os.mkfifo(rt.output)  # no writer: a blocking open would hang the worker
        began = time.monotonic()
        with pytest.raises(OutputError, match="not a regular file"):
            rt.read_output()
        assert time.monotonic() - began < 1
        os.unlink(rt.output)
        assert rt.read_output() == ""  # removed by the job: no outputs
    finally:
        rt.remove()
    assert not rt.path.exists()


def test_drain_removes_the_kept_directories(pool: RuntimePool, base: Path) -> None:
    kept = [pool.acquire(base) for _ in range(3)]
    for rt in kept:
        rt.recycle()
    assert len(pool.kept(base)) == 3
    pool.drain()
    assert pool.kept(base) == [] and not any(rt.path.exists() for rt in kept)


def test_at_most_keep_directories_are_kept_the_rest_removed(base: Path) -> None:
    pool = RuntimePool(keep=2, place=lambda _: base)
    made = [pool.acquire(base) for _ in range(3)]
    for rt in made:
        rt.recycle()
    assert pool.kept(base) == made[:2] and not made[2].path.exists()
    pool.drain()


def test_a_job_cannot_have_stockade_read_a_file_through_its_output_symlink(
    tmp_path: Path,
) -> None:
    from tests.runner.helpers import run_spec, sh

    secret = tmp_path / "only-for-stockade"
    secret.write_text("token=s3cr3t-of-the-host\n")
    result, _ = run_spec(sh(f'rm "$STOCKADE_OUTPUT"; ln -s {secret} "$STOCKADE_OUTPUT"'))
    assert (result.outcome.value, result.reason) == ("failed", "output_error")
    assert "symlink" in (result.error or "")
    assert "s3cr3t" not in repr(result.to_dict())


def test_the_output_file_in_place_is_read_from_its_start_and_bounded(
    pool: RuntimePool, tmp_path: Path
) -> None:
    rt = pool.acquire(tmp_path)
    with open(rt.output, "a") as out:
        out.write("first=1\n")
    assert rt.output_in_place() == "first=1\n"
    rt.recycle()
    again = pool.acquire(tmp_path)
    assert again is rt and again.output_in_place() == ""
    with open(again.output, "a") as out:
        out.write("second=2\n")
    assert again.output_in_place() == "second=2\n"  # not from where the last read ended
    os.truncate(again.output, 1 << 30)  # sparse, in place
    with pytest.raises(OutputError, match=f"is {1 << 30} bytes, over the limit of 1024 bytes"):
        again.output_in_place(limit=1024)
    os.unlink(again.output)
    os.mkfifo(again.output)
    assert again.output_in_place() is None  # not the file stockade made: read in a thread
    with pytest.raises(OutputError, match="is a FIFO"):
        again.read_output()
    again.remove()
