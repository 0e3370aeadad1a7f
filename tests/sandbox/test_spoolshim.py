"""The spool shim's protocol, for both implementations (the C program and the
Python file), run for real as the worker would run it: its own session, the
job's command after the spool prefix."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.engine.spool import Spool
from stockade.sandbox import spoolshim

#: What the shim ignores and its job must not (bit N-1 for signal N).
IGNORED = sum(1 << (n - 1) for n in spoolshim.IGNORED_SIGNALS)


@pytest.fixture(params=[True, False], ids=["c", "python"])
def native(request: pytest.FixtureRequest) -> bool:
    if request.param and not os.access(spoolshim.NATIVE, os.X_OK):
        pytest.skip("the C shim is not built here (no C compiler at install)")
    return bool(request.param)


@pytest.fixture
def shim(native: bool, tmp_path: Path) -> Iterator[ShimRunner]:
    runner = ShimRunner(native, tmp_path / "spool" / "7-1")
    runner.prefix.parent.mkdir(mode=0o700)
    yield runner
    runner.cleanup()


class ShimRunner:
    """Starts the shim as the worker does and reads its spool files."""

    def __init__(self, native: bool, prefix: Path):
        self.native = native
        self.prefix = prefix
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *command: str, **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        argv = [*spoolshim.launcher(str(self.prefix), self.native), *command]
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc  # type: ignore[no-any-return]

    def run(self, *command: str) -> tuple[int, bytes, bytes]:
        proc = self.start(*command)
        out, err = proc.communicate(timeout=30)
        return proc.returncode, out, err

    def spooled(self, suffix: str) -> str:
        return Path(f"{self.prefix}{suffix}").read_text()

    def ended(self) -> str:
        """``CODE SIGNAL`` of the status line (the job's usage follows them)."""
        return " ".join(self.spooled(".status").split()[:2])

    def cleanup(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def test_launcher_picks_the_c_shim_when_built_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = os.access(spoolshim.NATIVE, os.X_OK)
    assert (spoolshim.launcher("P")[0] == spoolshim.NATIVE) is built
    monkeypatch.setenv("STOCKADE_NATIVE_SHIM", "0")
    assert spoolshim.launcher("P")[-2:] == [spoolshim.__file__, "P"]


def test_output_is_spooled_and_forwarded_and_the_end_recorded(shim: ShimRunner) -> None:
    code, out, err = shim.run("sh", "-c", "echo one; echo two >&2; echo three; exit 3")
    assert (code, out, err) == (3, b"one\nthree\n", b"two\n")
    assert shim.spooled(".out") == "one\nthree\n"
    assert shim.spooled(".err") == "two\n"
    assert shim.ended() == "3 0"
    for suffix in (".out", ".err", ".pid", ".status"):
        assert stat.S_IMODE(os.stat(f"{shim.prefix}{suffix}").st_mode) == 0o600
    assert sorted(p.name for p in shim.prefix.parent.iterdir()) == [
        "7-1.err", "7-1.out", "7-1.pid", "7-1.status"
    ]  # fmt: skip


def test_the_pid_file_names_the_shim_its_start_the_job_and_the_cgroup(shim: ShimRunner) -> None:
    proc = shim.start("sh", "-c", 'echo "$$"; exec sleep 30')
    assert proc.stdout is not None
    job = int(proc.stdout.readline())
    pid_file = Path(f"{shim.prefix}.pid")
    shim_pid, started, job_pid, cgroup = pid_file.read_text().rstrip("\n").split(" ", 3)
    assert (int(shim_pid), int(job_pid)) == (proc.pid, job)
    stat_fields = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()
    assert started == stat_fields[19]
    mine = Path("/proc/self/cgroup").read_text().splitlines()
    assert f"0::{cgroup}" in mine or not any(line.startswith("0::") for line in mine)


def test_the_job_gets_the_signals_the_shim_ignores_back_at_their_defaults(
    shim: ShimRunner,
) -> None:
    code, out, _ = shim.run("sh", "-c", "grep SigIgn /proc/$$/status")
    assert code == 0
    assert int(out.split()[1], 16) & IGNORED == 0
    # ...and the shim ignores them: a stop signal meant for the job leaves it
    # alive to record how the job took it.
    proc = shim.start("sh", "-c", 'trap "exit 9" TERM; echo up; while :; do sleep 0.05; done')
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        os.kill(proc.pid, signum)
    os.killpg(proc.pid, signal.SIGTERM)  # the session: the job too
    assert proc.wait(timeout=30) == 9
    assert shim.ended() == "9 0"


def test_the_shim_dies_the_way_its_command_died(shim: ShimRunner) -> None:
    code, _, _ = shim.run("sh", "-c", "kill -TERM $$")
    assert code == -signal.SIGTERM
    assert shim.ended() == "0 15"


def test_once_the_worker_is_gone_the_output_is_only_spooled(shim: ShimRunner) -> None:
    read, write = os.pipe()
    os.close(read)  # nobody reads: a write gets EPIPE (SIGPIPE is ignored)
    lines = "".join(f"line {i}\n" for i in range(1000))
    try:
        proc = shim.start("sh", "-c", "i=0; while [ $i -lt 1000 ]; do echo line $i; i=$((i+1)); done",
                          stdout=write, stderr=write)  # fmt: skip
    finally:
        os.close(write)
    assert proc.wait(timeout=30) == 0
    assert shim.spooled(".out") == lines
    assert shim.ended() == "0 0"


#: Touches 80 MiB (above either shim's own peak) and spends some CPU.
HUNGRY = "b = b'x' * (80 << 20); sum(range(3 * 10**6))"


def test_the_status_line_carries_the_jobs_rusage_for_a_restarted_worker(
    shim: ShimRunner,
) -> None:
    # The shim's spawner (the worker, here the test) peaks above the job: its
    # exec carries that into the shim's ru_maxrss, not into the job's.
    spawner_peak = b"x" * (160 << 20)
    del spawner_peak
    code, _, _ = shim.run(sys.executable, "-c", HUNGRY)
    assert code == 0
    line = shim.spooled(".status")
    # CODE SIGNAL UTIME STIME MAXRSS_KB INBLOCK OUBLOCK, the same in both shims.
    assert re.fullmatch(r"0 0 \d+\.\d{6} \d+\.\d{6} \d+ \d+ \d+\n", line), line
    usage = Spool(shim.prefix.parent, "7", 1).usage()
    assert usage is not None and usage.cpu is not None and usage.cpu > 0
    assert usage.max_rss is not None and usage.max_rss >= 80 << 20
    assert (usage.read_bytes, usage.write_bytes) == tuple(
        int(field) * 512 for field in line.split()[5:7]
    )


def test_a_status_line_without_usage_still_reads(tmp_path: Path) -> None:
    """An older shim's ``CODE SIGNAL`` (and a command that could not start)."""
    (tmp_path / "7-1.status").write_text("3 0\n")
    spool = Spool(tmp_path, "7", 1)
    assert (spool.status(), spool.usage()) == ((3, 0), None)


def test_a_command_that_cannot_be_run_ends_127_with_the_reason(shim: ShimRunner) -> None:
    code, out, err = shim.run("no-such-command-here", "x")
    assert (code, out) == (127, b"")
    assert err == b"cannot run 'no-such-command-here': No such file or directory\n"
    assert shim.spooled(".err") == err.decode()
    assert shim.spooled(".status") == "127 0\n"


def test_a_spool_that_is_a_symlink_is_refused(shim: ShimRunner, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    Path(f"{shim.prefix}.out").symlink_to(target)
    code, _, _ = shim.run("echo", "hi")
    assert code == 1
    assert target.read_text() == "untouched\n"
    assert not Path(f"{shim.prefix}.status").exists()


def test_the_end_is_recorded_when_the_job_leaves_a_daemon_holding_its_pipes(
    shim: ShimRunner,
) -> None:
    proc = shim.start("sh", "-c", "sleep 60 & echo done")
    assert proc.wait(timeout=30) == 0  # not the daemon's 60 s
    assert shim.spooled(".out") == "done\n"
    assert shim.ended() == "0 0"


@pytest.mark.parametrize("signum", [signal.SIGQUIT, signal.SIGUSR1], ids=["QUIT", "USR1"])
def test_a_signal_to_the_whole_job_reaches_the_job_not_the_shim(
    shim: ShimRunner, signum: int, tmp_path: Path
) -> None:
    """A dump signal (any signal a task names) goes to every process of the
    job's cgroup, the shim's too: the shim lives to record how the job took it."""
    ready = tmp_path / "ready"
    script = f"trap 'echo caught; exit 7' {signum}; touch {ready}; while :; do sleep 0.05; done"
    proc = shim.start("sh", "-c", script)
    while not ready.exists():
        assert proc.poll() is None
    os.killpg(proc.pid, signum)  # the shim leads the group, as it leads the session
    out, _ = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (7, b"caught\n")
    assert shim.ended() == "7 0"
