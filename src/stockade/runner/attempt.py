"""One attempt, from input to outcome: the runner's public entry point.

:func:`run` prepares the input, launches the command in a sandbox, streams
and masks its output, enforces the wall-clock and idle limits, stops the
whole process tree on timeout or cancel (stop signal, grace, SIGKILL to
everything left), classifies the end, collects outputs and state, and
returns the :class:`~stockade.runner.result.Result`. It never touches a
database: the engine records what it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from stockade.errors import (
    LaunchError,
    OutputError,
    UsageError,
    WorkspaceError,
)
from stockade.private import private_dir, private_opener
from stockade.reasons import Reason
from stockade.runner.cancel import Cancel
from stockade.runner.commands import CommandEffects
from stockade.runner.events import Event, Sink, dropped_output, wants
from stockade.runner.hostenv import NAMED_SECRET_MIN, base_env, inherited, named_secret
from stockade.runner.inputs import prepare
from stockade.runner.isotime import iso_utc
from stockade.runner.outputs import job_outputs, read_output_file
from stockade.runner.protocol import ProtocolParser
from stockade.runner.redact import Masker
from stockade.runner.result import Outcome, Result, classify, ended_because
from stockade.runner.runtime import Runtime, acquire
from stockade.runner.secretinput import secret_values
from stockade.runner.spec import RunSpec
from stockade.runner.stream import LogWriter, OutputKeeper, StreamPipe
from stockade.runner.supervise import Report, Supervisor
from stockade.runner.turn import Turn
from stockade.sandbox.base import LaunchRequest, ProcessHandle, Sandbox
from stockade.sandbox.usage import Usage, oom_error

if TYPE_CHECKING:  # imported when a task has a workspace: kept off exec's start-up
    from concurrent.futures import ThreadPoolExecutor

    from stockade.runner.workspace import Plan, Workspace

__all__ = ["NAMED_SECRET_MIN", "data_dir_for", "new_job_id", "run"]

_T = TypeVar("_T")


def new_job_id() -> str:
    """A time-ordered, unique job id (millisecond clock + 32 random bits)."""
    return f"{int(time.time() * 1000):011x}{os.urandom(4).hex()}"


def data_dir_for(spec: RunSpec) -> Path:
    """``spec.data_dir``, else ``$STOCKADE_DATA_DIR``, else ``./.stockade``."""
    name = spec.data_dir or os.environ.get("STOCKADE_DATA_DIR") or ".stockade"
    if not name.startswith("/"):
        return Path(name).absolute()  # relative to the working directory of the moment
    path = _absolute_dirs.get(name)
    if path is None:
        if len(_absolute_dirs) > 64:
            _absolute_dirs.clear()
        path = _absolute_dirs[name] = Path(name)
    return path


#: Absolute data directories as paths: a worker asks for the same one per attempt.
_absolute_dirs: dict[str, Path] = {}


_workspace_threads: ThreadPoolExecutor | None = None


async def _in_workspace_thread(func: Callable[..., _T], *args: Any) -> _T:
    """Run ``func`` in the workspaces' own threads: a git checkout waiting on
    a fetch must not take the threads the rest of a worker needs (its lease
    renewals, its store calls) from the loop's default executor."""
    global _workspace_threads  # noqa: PLW0603 (made on first use only)
    if _workspace_threads is None:
        from concurrent.futures import ThreadPoolExecutor  # only a job with a workspace

        _workspace_threads = ThreadPoolExecutor(8, thread_name_prefix="stockade-workspace")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_workspace_threads, functools.partial(func, *args))


async def run(
    spec: RunSpec,
    input: Any = None,
    *,
    sinks: Sequence[Sink] = (),
    sandbox: Sandbox | None = None,
    cancel: Cancel = None,
    log_file: bool = True,
    released: Callable[[], None] | None = None,
    turn: Turn | None = None,
) -> Result:
    """Run one attempt of ``spec`` with ``input`` and return its result.

    ``sinks`` receive every event (already masked). ``log_file=False`` skips
    the attempt's log file (``DATA_DIR/logs/JOB_ID.N.jsonl``) for a caller
    whose sink keeps the log durably elsewhere (the worker's store sink):
    creating a file is a millisecond per attempt on a disk. ``sandbox`` is a set-up
    sandbox of the caller's slot; without one, a ``local`` sandbox is set up
    and cleaned up around this attempt. Setting ``cancel`` (an event; or a
    future, done: it is watched by a callback instead of a task) stops the
    job (outcome ``cancelled``); cancelling the calling task does the same
    and then re-raises once no process of the job is left. A
    :class:`~stockade.runner.cancel.Stop` stops it the same way when
    requested and, once forced, kills all of it at once, even in the middle
    of the grace.

    Raises :class:`~stockade.errors.UsageError` (or its subclasses) for input
    that cannot be used; anything that goes wrong once the job is accepted
    is reported in the result, never raised.

    ``released`` is called once the attempt no longer needs its sandbox or
    workspace (its processes are gone and its outputs read), before the
    rest of its bookkeeping: a caller can start its slot's next job while
    this one's result is finished. This call then lets that job start
    before it goes on.

    With ``turn`` (see :mod:`~stockade.runner.turn`), the attempt is
    prepared at once but launched only when the caller's ``turn.go()`` says
    the slot is free; its clock starts then. Cancelled before that, it ends
    ``cancelled`` without having started anything.
    """
    attempt = _Attempt(spec, input, sinks, sandbox, cancel, log_file, released)
    attempt.turn = turn
    return await attempt.run()


class _Attempt:
    """State of one attempt; split into steps that each fit on a screen."""

    def __init__(
        self,
        spec: RunSpec,
        value: Any,
        sinks: Sequence[Sink],
        sandbox: Sandbox | None,
        cancel: Cancel,
        log_file: bool = True,
        released: Callable[[], None] | None = None,
    ) -> None:
        self.spec = spec
        self.released = released
        self.log_file = log_file
        self.value = value
        self.sinks = list(sinks)
        self.sandbox = sandbox
        self.cancel = cancel
        self.job_id = spec.job_id or new_job_id()
        self.masker = Masker(spec.secrets.values())
        self.effects = CommandEffects(self.job_id, self.masker, self.emit)
        self.workspace = os.path.abspath(spec.workdir or os.getcwd())
        #: The job's working directory: the workspace unless the task says otherwise.
        self.cwd = self.workspace
        #: The workspace stockade made for this attempt (a task's ``workspace:``).
        self.made: Workspace | None = None
        #: Why that workspace could not be made (the attempt then fails).
        self.workspace_error: str | None = None
        self.succeeded = False
        self.data_dir = data_dir_for(spec)
        self.started = time.time()
        self.turn: Turn | None = None
        #: Every process of the job is gone (its slot was given up at the exit).
        self.quiet = False
        #: What the job used, once its main process is reaped.
        self.usage: Usage | None = None

    def emit(self, event: Event) -> None:
        """Send an event to every sink (sinks never block)."""
        for sink in self.sinks:
            sink.emit(event)

    async def run(self) -> Result:
        if self.spec.workspace is None and not os.path.isdir(self.workspace):
            raise UsageError(f"workdir {self.workspace!r} does not exist or is not a directory")
        # Flat (JOB_ID.N.jsonl), not a directory per job: a mkdir on disk was a
        # sixth of what an attempt of a short job cost beyond the process.
        log_path = None
        if self.log_file:
            log_path = self.data_dir / "logs" / f"{self.job_id}.{self.spec.attempt}.jsonl"
        spool = None
        if self.spec.spool_dir is not None:
            spool = os.path.join(self.spec.spool_dir, f"{self.job_id}-{self.spec.attempt}")
        try:
            private_dir(self.data_dir)
            if log_path is not None:
                private_dir(log_path.parent)
            # A spooled attempt's runtime directory is kept with its spool: a
            # worker that takes the job over reads its output file there.
            runtime = (
                acquire(self.data_dir) if spool is None else Runtime.create(Path(spool + ".run"))
            )
        except OSError as exc:
            raise UsageError(f"cannot use data directory {str(self.data_dir)!r}: {exc}") from exc
        owned = self.sandbox is None
        try:
            if self.spec.workspace is not None:
                from stockade.runner.workspace import Plan

                await self._make_workspace(Plan.from_dict(self.spec.workspace))
            prepared = prepare(self.spec, self.value, runtime.path)
            env = self._environment(runtime, prepared.env)
            request = LaunchRequest(
                argv=prepared.argv,
                env=env,
                cwd=self.cwd,
                workspace=self.workspace,
                marker=self.job_id,
                stdin_pipe=prepared.stdin is not None,
                runtime_dirs=[str(runtime.path)],
                hidden_dirs=[str(self.data_dir)],
                fresh_workspace=self.made is not None,
                spool=spool,
            )
            with contextlib.ExitStack() as stack:
                log = None
                if log_path is not None:
                    fh = open(log_path, "wb", opener=private_opener)  # noqa: SIM115
                    log = LogWriter(stack.enter_context(fh))
                return await self._launch_and_supervise(request, prepared.stdin, log, runtime)
        finally:
            if owned and self.sandbox is not None:
                self.sandbox.cleanup()
            if self.quiet:
                runtime.recycle()
            else:
                runtime.remove()
            if self.made is not None:
                await _in_workspace_thread(self.made.finish, self.succeeded)
            for sink in self.sinks:
                await sink.aclose()

    async def _make_workspace(self, plan: Plan) -> None:
        """Make this attempt's workspace (in a thread: a git fetch takes a while);
        a failure is kept in :attr:`workspace_error` and fails the attempt."""
        from stockade.runner.workspace import create

        try:
            self.made = await _in_workspace_thread(
                create, self.data_dir, self.job_id, self.spec.attempt, plan
            )
        except WorkspaceError as exc:
            self.workspace_error = str(exc)
            return
        self.workspace = str(self.made.path)
        workdir = self.spec.workdir
        self.cwd = os.path.normpath(os.path.join(self.workspace, workdir or "."))

    def _environment(self, runtime: Runtime, input_env: dict[str, str]) -> dict[str, str]:
        spec = self.spec
        if spec.inherit_env:
            env, host_secrets = inherited()
            for value in host_secrets:
                self.masker.add(value)
        else:
            env = base_env()
        added = {**spec.env, **spec.secrets, **input_env}
        env.update(added)
        # Plain os calls on str paths: these run once per attempt, and the
        # pathlib versions cost more than the system calls they make.
        output_file, state_file = runtime.output, runtime.state
        runtime.write_state(json.dumps(spec.state).encode() if spec.state else b"{}")
        env.update(
            STOCKADE_JOB_ID=self.job_id,
            STOCKADE_ATTEMPT=str(spec.attempt),
            STOCKADE_TASK=spec.task,
            STOCKADE_WORKSPACE=self.workspace,
            STOCKADE_OUTPUT=output_file,
            STOCKADE_STATE=state_file,
        )
        if spec.dumps and "PYTHONFAULTHANDLER" not in env:
            env["PYTHONFAULTHANDLER"] = "1"  # Python prints its stacks on SIGABRT
        for name, val in added.items():  # the inherited ones were checked by inherited()
            if named_secret(name, val):
                self.masker.add(val)
        for key, text in secret_values(self.value, spec.secret_inputs):
            if key in spec.secret_inputs or len(text.strip()) >= NAMED_SECRET_MIN:
                self.masker.add(text)
        return env

    def _pipes(self, log: LogWriter | None) -> tuple[StreamPipe, StreamPipe]:
        limit = self.spec.max_output
        out = StreamPipe(
            "stdout", self.job_id, self.masker, OutputKeeper(limit), self.emit, log,
            ProtocolParser(), self.effects.handle,
        )  # fmt: skip
        err = StreamPipe("stderr", self.job_id, self.masker, OutputKeeper(limit), self.emit, log)
        return out, err

    async def _launch_and_supervise(
        self, request: LaunchRequest, stdin: bytes | None, log: LogWriter | None, runtime: Runtime
    ) -> Result:
        spec = self.spec
        if wants(self.sinks, "start"):
            self.emit(Event("start", self.job_id, {
                "task": spec.task, "attempt": spec.attempt,
                "argv": self.masker.mask_obj(request.argv), "workdir": self.cwd,
                "log": log.path if log is not None else None,
            }))  # fmt: skip
        if self.sandbox is None:
            from stockade.sandbox.local import LocalSandbox

            self.sandbox = LocalSandbox()
            self.sandbox.setup()
        out, err = self._pipes(log)
        launched: list[ProcessHandle | Exception] = []
        turn = self.turn

        def launch() -> None:
            # Possibly called from another attempt's exit callback (a turn):
            # what goes wrong is this attempt's, raised in its own task below.
            self.started = time.time()
            if turn is not None and turn.sandbox is not None:
                self.sandbox = turn.sandbox  # the slot was set up anew meanwhile
            try:
                launched.append(self._start(request))
            except Exception as exc:  # re-raised below unless a LaunchError
                launched.append(exc)

        if turn is None:
            launch()
        elif not await turn.wait(launch, self.cancel):
            never = self._result(Outcome.CANCELLED, reason=Reason.CANCELLED)
            never.error = "stopped before it started"
            return await self._release_then_finish(never, out, err)
        handle = launched[0]
        if isinstance(handle, LaunchError):
            return await self._release_then_finish(
                self._result(Outcome.FAILED, reason=Reason.LAUNCH_ERROR, error=handle.message),
                out,
                err,
            )
        if isinstance(handle, Exception):
            raise handle
        # The slot can be handed on at the exit itself unless the result still
        # reads the workspace (an output file).
        early = self.released is not None and spec.output_format != "file"
        supervisor = Supervisor(
            spec, handle, out, err, stdin, self.cancel, log, self._slot_free if early else None
        )
        try:
            report = await supervisor.supervise()
        finally:
            handle.close()
        late = handle.launch_error()
        if late is not None:  # the program could not be run after all
            return await self._release_then_finish(
                self._result(Outcome.FAILED, reason=Reason.LAUNCH_ERROR, error=late.message),
                out,
                err,
            )
        status = report.status
        outcome = classify(
            exit_code=status.code,
            signal=status.signal,
            success_codes=spec.success_codes,
            retry_codes=spec.retry_codes,
            failure_codes=spec.failure_codes,
            timed_out=report.reason in (Reason.TIMEOUT, Reason.IDLE_TIMEOUT),
            cancelled=report.reason == Reason.CANCELLED,
        )
        if status.oom and outcome is not Outcome.CANCELLED:
            outcome = Outcome.FAILED
        reason = ended_because(report.reason, outcome, oom=status.oom, signal=status.signal)
        result = self._result(outcome, reason=reason, exit_code=status.code, signal=status.signal)
        result.kill_method, result.killed = report.kill_method, report.killed
        self._measure(result, handle, report, log)
        await self._collect(result, out, runtime)
        return await self._release_then_finish(result, out, err)

    def _start(self, request: LaunchRequest) -> ProcessHandle:
        """Launch in the slot's sandbox; a workspace that could not be made
        fails the attempt as a launch that could not start does."""
        if self.workspace_error is not None:
            raise LaunchError(self.workspace_error)
        assert self.sandbox is not None
        return self.sandbox.launch(request)

    def _measure(
        self, result: Result, handle: ProcessHandle, report: Report, log: LogWriter | None
    ) -> None:
        """Keep what the job used (an ``oom`` ending says the limit and the
        peak) and where its hang dump is."""
        if report.dump is not None:
            result.dump = {**report.dump, "log": log.path if log is not None else None}
        self.usage = handle.usage()
        if result.reason == Reason.OOM and self.usage is not None:
            result.error = oom_error(self.usage)

    def _slot_free(self) -> None:
        """The handle gave the slot up at the job's exit: hand it on now."""
        self.quiet = True  # no process of the job is left: its runtime can be reused
        if self.released is not None:
            released, self.released = self.released, None
            released()

    async def _release_then_finish(
        self, result: Result, out: StreamPipe, err: StreamPipe
    ) -> Result:
        if self.released is not None:
            released, self.released = self.released, None
            released()
            await asyncio.sleep(0)  # the caller's next job starts first
        return self._finish(result, out, err)

    def _result(self, outcome: Outcome, **fields: Any) -> Result:
        return Result(
            job_id=self.job_id,
            task=self.spec.task,
            attempt=self.spec.attempt,
            outcome=outcome,
            **fields,
        )

    async def _collect(self, result: Result, out: StreamPipe, runtime: Runtime) -> None:
        """Outputs (format, then $STOCKADE_OUTPUT, then set-output) and state."""
        succeeded = result.outcome is Outcome.SUCCEEDED
        outputs: dict[str, Any] = {}
        try:
            file_text, env_text = await self._read_files(runtime)
            outputs = job_outputs(
                self.spec, out.keeper.text(), out.keeper.truncated, succeeded, file_text, env_text
            )
        except (OutputError, ValueError) as exc:
            if succeeded:
                result.outcome = Outcome.FAILED
                result.reason = Reason.OUTPUT_ERROR
                result.error = str(exc)
        outputs.update(self.effects.outputs)
        result.outputs = self.masker.mask_obj(outputs)
        if spec_artifacts := self.spec.artifacts:
            await self._artifacts(result, spec_artifacts)
        result.state = self.masker.mask_obj({**self.spec.state, **self.effects.state})

    async def _artifacts(self, result: Result, globs: tuple[str, ...]) -> None:
        """Keep the files matching ``globs`` (in a thread: the workspace is the
        job's); over a limit, a succeeded attempt fails with ``output_error``."""
        from stockade.runner.artifacts import keep_artifacts

        await _in_workspace_thread(
            keep_artifacts, result, self.workspace, globs, self.spec.artifact_limits, self.data_dir
        )

    async def _read_files(self, runtime: Runtime) -> tuple[str | None, str]:
        """The ``file:`` output (None for other formats) and $STOCKADE_OUTPUT.

        What the job chose to put at a path is read in a thread
        (:mod:`~stockade.runner.jobfile`); only the output file stockade made,
        still in place, is read here (:meth:`Runtime.output_in_place`), so
        most attempts need no thread."""
        spec, workspace = self.spec, self.workspace
        env_text = runtime.output_in_place(spec.max_output)
        wants_file = spec.output_format == "file"
        if env_text is not None and not wants_file:
            return None, env_text

        def read() -> tuple[str | None, str]:
            text = read_output_file(spec, workspace) if wants_file else None
            return text, runtime.read_output(spec.max_output) if env_text is None else env_text

        return await asyncio.to_thread(read)

    def _finish(self, result: Result, out: StreamPipe, err: StreamPipe) -> Result:
        self.succeeded = result.outcome is Outcome.SUCCEEDED
        finished = time.time()
        result.started_at = iso_utc(self.started)
        result.finished_at = iso_utc(finished)
        result.duration = round(finished - self.started, 6)
        if self.usage is not None:
            result.usage = self.usage.with_figures(wall=result.duration).to_dict()
        result.annotations = self.effects.annotations
        if result.error:
            result.error = self.masker.mask_text(result.error)
        result.streams = {"stdout": out.stats, "stderr": err.stats}
        result.log_path = out.log.path if out.log is not None else None
        for pipe in (out, err):
            pipe.stats.dropped_events = dropped_output(self.sinks, pipe.stream)
        if wants(self.sinks, "finish"):
            self.emit(Event("finish", self.job_id, {"result": result.to_dict()}))
        return result
