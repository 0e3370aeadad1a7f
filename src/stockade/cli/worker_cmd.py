"""``stockade worker``: claim jobs from the store and run them until stopped."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from stockade.cli.logsetup import log_format_option
from stockade.cli.store_opts import open_store_from, store_command
from stockade.cli.values import duration
from stockade.errors import UsageError

if TYPE_CHECKING:
    from stockade.engine.slot import SandboxFactory
    from stockade.runner.spec import RunSpec
    from stockade.sandbox.base import Sandbox

    Prepare = Callable[[RunSpec], RunSpec]

__all__ = ["worker_command"]


@click.command("worker", short_help="Run jobs from the store in N slots until stopped.")
@click.option("--slots", "-s", type=click.IntRange(min=1), help="Jobs at once [CPU count].")
@click.option(
    "--lease",
    metavar="DURATION",
    default="30s",
    show_default=True,
    help="How long a job stays ours without a heartbeat.",
)
@click.option(
    "--drain-timeout",
    metavar="DURATION",
    default="30s",
    show_default=True,
    help="On SIGTERM/SIGINT, how long running jobs may finish.",
)
@click.option(
    "--poll",
    metavar="DURATION",
    default="0.5s",
    show_default=True,
    help="How often an idle worker looks for work (new work also wakes it).",
)
@click.option(
    "--name",
    "worker_id",
    metavar="ID",
    help="A stable worker id: on restart, jobs it held are recovered at once.",
)
@click.option(
    "--sandbox",
    metavar="PROFILE",
    help="The sandbox of jobs whose task declares none (stockade.yaml or a backend: "
    "local, bwrap, chroot, oci) [local]. A job that declares one always runs in its own.",
)
@click.option(
    "--offer",
    metavar="BACKENDS",
    help="Claim only jobs declaring these sandbox backends (comma-separated), besides "
    "jobs that declare none [every backend usable here].",
)
@click.option(
    "--queue", "queues", metavar="QUEUES",
    help="Claim only jobs of these queues (comma-separated) [every queue].",
)  # fmt: skip
@click.option(
    "--label", "labels", metavar="NAME=VALUE", multiple=True,
    help="A label this worker offers (repeatable): jobs that require labels run only "
    "on a worker offering each of them.",
)  # fmt: skip
@click.option(
    "--config", "-c", "config_path", metavar="FILE",
    help="stockade.yaml for --sandbox; its schedules and retention are stored for the fleet.",
)  # fmt: skip
@click.option("--burst", is_flag=True, help="Exit once no job is queued or running.")
@click.option(
    "--reattach",
    is_flag=True,
    help="Jobs survive this worker's death: restarted with the same --name on this "
    "host, it takes them over (needs --name; see docs/worker.md, Reattach).",
)
@click.option(
    "--full-logs",
    metavar="DIR",
    help="Also write every attempt's whole output to DIR/JOB.N.stdout|stderr (unbounded).",
)
@click.option(
    "--store-process/--no-store-process",
    default=True,
    show_default=True,
    help="Record ends and claim jobs in a helper process, off the worker's GIL.",
)
@click.option("--verbose", "-v", count=True, help="Log every job (-v) or debug (-vv).")
@click.option("--quiet", "-q", is_flag=True, help="Log only warnings and errors.")
@log_format_option
@store_command
def worker_command(**opts: Any) -> int:
    """Claim jobs in priority-then-age order and run them, one per slot.

    A job runs in the sandbox its task declares, whichever worker claims it;
    a worker claims only jobs whose sandbox backend it offers (--offer), and
    runs jobs that declare none in --sandbox. It claims only jobs of the
    queues it serves (--queue; every queue by default) that require no label
    it does not offer (--label).

    SIGTERM or SIGINT stops claiming and lets running jobs finish for up to
    --drain-timeout, then stops them and returns them to the queue without
    spending an attempt; a second signal kills them at once (no grace).
    """
    from stockade.engine.client import run_worker
    from stockade.engine.worker import WorkerOptions

    if opts["reattach"] and not opts["worker_id"]:
        raise UsageError("--reattach needs --name: a restart takes over the jobs of that name")

    options = WorkerOptions(
        slots=opts["slots"] or len(os.sched_getaffinity(0)),
        lease=_positive(opts["lease"], "--lease"),
        drain_timeout=duration(opts["drain_timeout"], "--drain-timeout"),
        poll=_positive(opts["poll"], "--poll"),
        worker_id=opts["worker_id"],
        data_dir=opts["data_dir"],
        burst=opts["burst"],
        reattach=opts["reattach"],
        store_process=opts["store_process"],
        full_logs=_full_logs(opts["full_logs"]),
        notify=True,
    )
    if opts["sandbox"]:
        options.sandbox, options.prepare = _slot_sandbox(opts["sandbox"], opts["config_path"])
    if opts["offer"] is not None:
        options.offers = _offers(opts["offer"])
    options.queues, options.labels = _routing(opts["queues"], opts["labels"])
    _logging(opts["verbose"], opts["quiet"], opts["log_format"])
    store = open_store_from(opts)
    if opts["config_path"]:
        from stockade.config import load
        from stockade.engine.housekeeping import define

        try:
            define(store, load(opts["config_path"]))
        except BaseException:
            store.close()
            raise
    return run_worker(store, options)


def _slot_sandbox(name: str, config: str | None) -> tuple[SandboxFactory, Prepare]:
    """A factory of slot sandboxes in profile ``name``, and the job adjuster."""
    from stockade.cli.sandbox_opts import sandbox_profile
    from stockade.sandbox.registry import create, prepare_spec

    profile = sandbox_profile({"sandbox": name, "config_path": config})
    assert profile is not None
    pid = os.getpid()

    def factory(index: int) -> Sandbox:
        return create(profile, slot=f"w{pid}s{index}")

    def prepare(spec: RunSpec) -> RunSpec:
        return prepare_spec(spec, profile)

    return factory, prepare


def _offers(text: str) -> tuple[str, ...]:
    """``--offer``'s backends, each one usable on this host."""
    from stockade.engine.worker import usable_backends
    from stockade.sandbox.registry import BACKENDS

    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise UsageError("--offer needs at least one sandbox backend, e.g. --offer bwrap,local")
    for name in names:
        if name not in BACKENDS:
            raise UsageError(f"--offer: unknown sandbox backend {name!r} (one of: "
                             f"{', '.join(BACKENDS)})")  # fmt: skip
        if name not in usable_backends():
            raise UsageError(f"--offer: sandbox backend {name!r} is not usable on this host "
                             "(see `stockade sandboxes`)")  # fmt: skip
    return names


def _routing(
    queues: str | None, labels: tuple[str, ...]
) -> tuple[tuple[str, ...] | None, dict[str, str]]:
    """``--queue`` and ``--label`` as the worker's options."""
    from stockade.spec.routing import parse_label, parse_queues

    try:
        served = None if queues is None else parse_queues(queues, "--queue")
        offered = dict(parse_label(text, "--label") for text in labels)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return served, offered


def _full_logs(directory: str | None) -> str | None:
    """``--full-logs`` as an absolute, existing directory (made if missing)."""
    if directory is None:
        return None
    path = os.path.abspath(directory)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--full-logs: cannot use {path!r}: {exc.strerror or exc}") from exc
    return path


def _positive(text: str, option: str) -> float:
    value = duration(text, option)
    if value <= 0:
        raise UsageError(f"{option} must be more than 0")
    return value


def _logging(verbose: int, quiet: bool, log_format: str) -> None:
    import logging

    from stockade.cli.logsetup import setup_logging

    level = logging.WARNING if quiet else logging.INFO
    if verbose:
        level = logging.DEBUG
    setup_logging("stockade worker: ", level, log_format)
