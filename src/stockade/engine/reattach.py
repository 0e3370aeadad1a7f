"""Reattach: a restarted worker takes over the jobs its previous process left running.

In reattach mode (``stockade worker --reattach``) every job is started by
the spool shim (:mod:`stockade.sandbox.spoolshim`), which keeps its output
and exit status in the attempt's spool (:mod:`~stockade.engine.spool`), and
the worker's fence listens on ``DATA_DIR/spool/NAME/fence.sock``: when the
worker dies, the fence kills what is not reattachable and keeps the rest
until their deadlines (the lease bound: nothing outlives it).

A worker restarted under the same ``--name`` (:func:`take_over`):

1. lists the attempts the store says it holds (``running``);
2. keeps those whose shim still lives or whose status file is there, renews
   their leases at once, and becomes the owner of the old fence, which then
   kills the kept jobs it was not asked to keep (or starts a fence of its
   own that guards the adopted jobs' cgroups, if the old one is gone);
3. recovers the rest ``lost`` as before (``worker_restarted``).

Each adopted attempt is then followed (:func:`follow`): its recorded log is
dropped and its whole output recorded again from the spool (so every line
is in the store exactly once, masked, within the task's head and tail
budget, progress and ``set-output`` commands applied), then tailed until the
status file appears, and the end recorded once, as the same attempt. Its
limits and a cancel are enforced meanwhile, by the runner's stop ladder
(:mod:`~stockade.engine.adoptstop`), and its result is the runner's: outputs
(with the ``$STOCKADE_OUTPUT`` file in the spool), artifacts, classification,
its usage from the rusage the shim wrote with the status. A task's own
``workspace:`` is found by the attempt's part of its name, read like the
task's workdir, then removed or kept per its ``keep``/``ttl`` as the runner
would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stockade.engine.adoptstop import Ladder, due
from stockade.engine.execute import log_writer, progress_writer, record
from stockade.engine.host import JobHost
from stockade.engine.jobspec import log_budget, run_spec_for
from stockade.engine.jobstate import Phase, Running
from stockade.engine.logfields import job_fields
from stockade.engine.logsink import StoreLogSink
from stockade.engine.progresssink import StoreProgressSink
from stockade.engine.spool import Spool, spool_root
from stockade.errors import OutputError, StockadeError
from stockade.private import private_dir
from stockade.reasons import Reason
from stockade.runner.artifacts import keep_artifacts
from stockade.runner.attempt import data_dir_for
from stockade.runner.commands import CommandEffects
from stockade.runner.events import Event, Sink
from stockade.runner.hostenv import named_secret
from stockade.runner.outputs import job_outputs, read_output_file
from stockade.runner.protocol import ProtocolParser
from stockade.runner.redact import Masker
from stockade.runner.result import Outcome, Result, classify, ended_because
from stockade.runner.runtime import read_output
from stockade.runner.spec import RunSpec
from stockade.runner.stream import OutputKeeper, StreamPipe
from stockade.sandbox import fence
from stockade.store import Claim

if TYPE_CHECKING:
    from stockade.runner.workspace import Workspace

__all__ = ["Adopted", "dismiss", "follow", "take_over"]

log = logging.getLogger("stockade.worker")

#: How often a followed job's spool is read for new output and its end.
POLL = 0.1
SOCKET = "fence.sock"


@dataclass
class Adopted:
    """An attempt a restarted worker took over, and its spool."""

    claim: Claim
    spool: Spool


def dismiss(data_dir: str | None, name: str) -> None:
    """A worker not in reattach mode: have a fence a reattach-mode process of
    ``name`` left behind kill the jobs it keeps, now (they are recovered ``lost``)."""
    path = spool_root(data_dir, name) / SOCKET
    if not path.exists():
        return
    old = fence.attach(str(path))
    if old is None:
        return
    old.sync([])
    old.close()
    fence.forget()


async def take_over(worker: JobHost) -> list[Adopted]:
    """Start (or become the owner of) the worker's fence and take over the
    attempts a previous process of its name left running; the adopted ones."""
    loop = asyncio.get_running_loop()
    root = spool_root(worker.options.data_dir, worker.id)
    private_dir(root)
    store = worker.astore.store
    claims = await worker.astore.once(store.jobs.held, worker.id)
    old = await loop.run_in_executor(None, fence.attach, str(root / SOCKET))
    found = [Adopted(claim, Spool(root, claim.job_id, claim.run)) for claim in claims]
    # Without the old fence nothing bounded a job that still runs: only the
    # ended ones (their status waits in the spool) are taken over then.
    live = [
        a for a in found
        if a.spool.status() is not None or (old is not None and a.spool.shim_alive())
    ]  # fmt: skip
    sent = time.monotonic()
    renewed = await worker.astore.once(
        store.jobs.renew, worker.id, worker.options.lease, [a.claim.job_id for a in live]
    )
    adopted = [a for a in live if renewed.get(a.claim.job_id, (0,))[0] == a.claim.run]
    ids = [a.claim.job_id for a in adopted]
    guard = None
    if old is not None and await loop.run_in_executor(None, old.sync, ids):
        guard = old
    if guard is None:
        if old is not None:
            old.close()
            fence.forget()
        guard = fence.start(listen=str(root / SOCKET))
        for one in adopted:
            path = one.spool.cgroup()
            if path is not None:
                guard.born_in(one.claim.job_id, path)
            guard.keep(one.claim.job_id)
    from stockade.sandbox.cgroup import hold_by

    hold_by(guard.pid)
    worker.lease_fence.fence = guard
    worker.lease_fence.held(ids, sent)
    for one in found:  # neither adopted nor alive: nothing of them may run on
        if one not in adopted:
            await loop.run_in_executor(None, _kill, one.spool, True)
            one.spool.remove()
    if adopted:
        log.warning("reattached %d job(s) this worker ran before it restarted", len(adopted))
    return adopted


def _kill(spool: Spool, remove: bool) -> None:
    path = spool.cgroup()
    if path is not None:
        with contextlib.suppress(OSError):
            fence.kill_cgroup(path, remove=remove)


def _masker(spec: RunSpec) -> Masker:
    masker = Masker(spec.secrets.values())
    for name, value in spec.env.items():
        if named_secret(name, value):
            masker.add(value)
    return masker


async def follow(worker: JobHost, job: Running, spool: Spool) -> None:
    """Record an adopted attempt's output from its spool and its end, once."""
    claim = job.claim
    try:
        spec = run_spec_for(claim, worker.options.data_dir)
    except StockadeError as exc:
        log.warning("job %s: cannot follow it after the restart: %s", claim.job_id, exc.message)
        await asyncio.to_thread(_kill, spool, False)
        return  # its lease is not renewed any more: recovered lost
    journal = worker.astore.store.journal
    await worker.astore.once(journal.drop_logs, claim.job_id, claim.run)
    head, tail = log_budget(claim)
    sinks: list[Sink] = [
        StoreLogSink(log_writer(worker), claim.job_id, claim.run, head=head, tail=tail),
        StoreProgressSink(progress_writer(worker), claim.job_id, claim.run),
    ]

    def emit(event: Event) -> None:
        for sink in sinks:
            sink.emit(event)

    masker = _masker(spec)
    effects = CommandEffects(claim.job_id, masker, emit)
    limit = spec.max_output
    pipes = {
        "stdout": StreamPipe(
            "stdout", claim.job_id, masker, OutputKeeper(limit), emit, None,
            ProtocolParser(), effects.handle,
        ),
        "stderr": StreamPipe("stderr", claim.job_id, masker, OutputKeeper(limit), emit, None),
    }  # fmt: skip
    ended, stop = await _tail(spool, pipes, job, spec, claim.started_at)
    for pipe in pipes.values():
        pipe.close()
    try:
        if ended is None and stop is None:
            # Killed by someone else (the fence, at a deadline this worker
            # could not extend in time): recovery records it lost.
            worker.counters.count("fenced")
            log.warning("job %s: gone without an end after the restart", claim.job_id)
            return
        result = await asyncio.to_thread(
            _result, claim, spec, ended, stop, pipes, effects, masker, spool
        )
    finally:
        for sink in sinks:
            await sink.aclose()
        await asyncio.to_thread(_kill, spool, True)
        path = spool.cgroup()
        if path is not None and worker.lease_fence.fence is not None:
            worker.lease_fence.fence.removed(path)
    made = _made(spec, claim)
    if made is not None:  # as the runner does: its processes are gone, what it held read
        await asyncio.to_thread(made.finish, result.outcome is Outcome.SUCCEEDED)
    job.advance(Phase.RECORDING)
    if job.interrupt == "shutdown" and result.outcome is Outcome.CANCELLED:
        await record(worker, job, "release", reason=Reason.WORKER_SHUTDOWN)
    else:
        if result.outcome is Outcome.TIMED_OUT:
            worker.counters.count("timed_out")
        await record(worker, job, "finish", result=result)
    spool.remove()
    log.info(
        "job %s: attempt %d followed to its end after the restart", claim.job_id, claim.run,
        extra=job_fields(worker.id, claim),
    )  # fmt: skip


class _Reader:
    """Feeds what the job wrote to its spool to ``pipes``, from the start."""

    def __init__(self, spool: Spool, pipes: dict[str, StreamPipe], started: float) -> None:
        self.spool = spool
        self.pipes = pipes
        self.read_to = dict.fromkeys(pipes, 0)
        #: When the job last wrote (wall time; its start if it has not yet).
        self.last = spool.last_output() or started

    def _read(self) -> list[tuple[str, bytes]]:
        chunks = []
        for stream in self.pipes:
            while data := self.spool.read(stream, self.read_to[stream]):
                self.read_to[stream] += len(data)
                chunks.append((stream, data))
        return chunks

    async def pump(self) -> None:
        """Read off the event loop, feed on it (the sinks are its)."""
        chunks = await asyncio.to_thread(self._read)
        for stream, data in chunks:
            self.pipes[stream].feed(data)
        if chunks:
            self.last = self.spool.last_output() or time.time()

    def offsets(self) -> dict[str, int]:
        """How far each stream has been seen (where a dump begins)."""
        return {stream: pipe.stats.bytes_seen for stream, pipe in self.pipes.items()}


async def _tail(
    spool: Spool, pipes: dict[str, StreamPipe], job: Running, spec: RunSpec, started: float
) -> tuple[tuple[int, int] | None, Ladder | None]:
    """Feed the spool to ``pipes`` until the job ends; its status (``None``:
    it died without one) and the stop this worker made, if any (its limits
    and a cancel: :mod:`~stockade.engine.adoptstop`)."""
    reader = _Reader(spool, pipes, started)
    stop: Ladder | None = None
    stopping: asyncio.Task[None] | None = None
    try:
        while True:
            ended = spool.status()
            await reader.pump()
            if ended is not None:
                return ended, stop
            if not spool.shim_alive():
                ended = spool.status()
                await reader.pump()
                if stopping is not None:
                    await stopping  # its SIGKILL: nothing of the job is left
                return ended, stop
            if stop is None and (why := due(spec, job.cancel, started, reader.last)) is not None:
                stop = Ladder(spool, spec, job.cancel, why, reader.offsets)
                stopping = asyncio.create_task(stop.run())
            await asyncio.sleep(POLL)
    finally:
        if stopping is not None and not stopping.done():
            stopping.cancel()


def _workspace(spec: RunSpec, claim: Claim) -> str:
    """The adopted attempt's workspace, as the runner chose it: the task's
    workdir, or the attempt's own ``workspace:``, found by the end of its name
    (``PID-START-JOB.ATTEMPT``: the rest names the dead process that made it).
    Raises :class:`OutputError` when that workspace is gone."""
    if spec.workspace is None:
        return os.path.abspath(spec.workdir or os.getcwd())
    made = _made(spec, claim)
    if made is None:
        raise OutputError(f"the workspace of attempt {claim.run} is gone")
    return str(made.path)


def _made(spec: RunSpec, claim: Claim) -> Workspace | None:
    """The workspace the runner made for the adopted attempt (the task has a
    ``workspace:``), if it is still there."""
    from stockade.runner.workspace import Plan, Workspace, workspaces_dir

    if spec.workspace is None:
        return None
    base = workspaces_dir(data_dir_for(spec))
    wanted = f"{claim.job_id}.{claim.run}"
    try:
        names = os.listdir(base)
    except OSError:
        return None
    for name in names:
        if name.split("-", 2)[-1] != wanted:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(base / name).st_mode):
                return Workspace(base / name, Plan.from_dict(spec.workspace))
    return None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _result(
    claim: Claim,
    spec: RunSpec,
    ended: tuple[int, int] | None,
    ladder: Ladder | None,
    pipes: dict[str, StreamPipe],
    effects: CommandEffects,
    masker: Masker,
    spool: Spool,
) -> Result:
    """The attempt's result as the runner would give it (blocking: the
    output files are read, as the runner reads them)."""
    code, signum = ended if ended is not None else (0, int(signal.SIGKILL))
    exit_code = None if signum else code
    stop = None if ladder is None else ladder.reason
    outcome = classify(
        exit_code=exit_code, signal=signum or None, success_codes=spec.success_codes,
        retry_codes=spec.retry_codes, failure_codes=spec.failure_codes,
        timed_out=stop in (Reason.TIMEOUT, Reason.IDLE_TIMEOUT),
        cancelled=stop is Reason.CANCELLED,
    )  # fmt: skip
    reason = ended_because(stop, outcome, oom=False, signal=signum or None)
    result = Result(claim.job_id, claim.task, claim.run, outcome, reason=reason)
    result.exit_code, result.signal = exit_code, signum or None
    if ladder is not None:
        result.kill_method, result.killed = "cgroup", ladder.killed
        if ladder.dump is not None:
            result.dump = {**ladder.dump, "log": None}
    out = pipes["stdout"]
    outputs: dict[str, Any] = {}
    succeeded = outcome is Outcome.SUCCEEDED
    try:
        file_text = None
        if spec.output_format == "file":
            file_text = read_output_file(spec, _workspace(spec, claim))
        env_text = read_output(spool.runtime, spec.max_output)
        outputs = job_outputs(
            spec, out.keeper.text(), out.keeper.truncated, succeeded, file_text, env_text
        )
    except (OutputError, ValueError) as exc:
        if succeeded:
            result.outcome, result.reason, result.error = (
                Outcome.FAILED,
                Reason.OUTPUT_ERROR,
                str(exc),
            )
    outputs.update(effects.outputs)
    result.outputs = masker.mask_obj(outputs)
    if spec.artifacts:
        try:
            workspace = _workspace(spec, claim)
        except OutputError as exc:
            if result.outcome is Outcome.SUCCEEDED:
                result.outcome, result.reason = Outcome.FAILED, Reason.OUTPUT_ERROR
            result.error = result.error or f"artifacts not kept: {exc}"
        else:
            keep_artifacts(
                result, workspace, spec.artifacts, spec.artifact_limits, data_dir_for(spec)
            )
    result.state = masker.mask_obj({**spec.state, **effects.state})
    result.annotations = effects.annotations
    result.streams = {stream: pipe.stats for stream, pipe in pipes.items()}
    finished = time.time()
    result.started_at, result.finished_at = _iso(claim.started_at), _iso(finished)
    result.duration = round(finished - claim.started_at, 6)
    usage = spool.usage()
    if usage is not None:
        result.usage = usage.with_figures(wall=result.duration).to_dict()
    return result
