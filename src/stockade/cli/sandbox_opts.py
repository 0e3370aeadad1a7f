"""The sandbox options of ``stockade exec``, kept out of its hot path.

``--sandbox PROFILE`` names a profile from stockade.yaml or a backend
(each backend is also a built-in profile); ``--memory``, ``--pids``,
``--cpus``, ``--network`` and ``--bind`` adjust it. A TASK runs in its own
``sandbox:`` unless ``--sandbox`` says otherwise. Without any of these the
job runs in the runner's default local sandbox and nothing here imports the
sandbox backends or the config models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stockade.cli.values import size
from stockade.errors import UsageError

if TYPE_CHECKING:
    import argparse

    from stockade.runner.spec import RunSpec
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["TASK_PROFILE", "TASK_RETRY", "add_sandbox_options", "sandbox_profile", "task_spec"]

#: Key in the parsed options where the TASK path leaves the task's profile.
TASK_PROFILE = "_task_sandbox"
#: Key where it leaves the task's retry policy (a :class:`~stockade.runner.policy.RetryPolicy`).
TASK_RETRY = "_task_retry"
_ADJUSTERS = ("memory", "pids", "cpus", "network", "binds")


def add_sandbox_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--sandbox``, ``--memory``, ``--pids``, ``--cpus``, ``--network``, ``--bind``."""
    group = parser.add_argument_group("sandbox")
    add = group.add_argument
    add("--sandbox", metavar="PROFILE", help="profile from stockade.yaml or a backend: "
        "local, bwrap, chroot, oci (see `stockade sandboxes`)")  # fmt: skip
    add("--memory", metavar="SIZE", help="memory limit for the whole job, e.g. 512MiB")
    add("--pids", metavar="N", type=int, help="limit on processes and threads")
    add("--cpus", metavar="CORES", type=float, help="CPU limit in cores, e.g. 1.5")
    add("--network", choices=("none", "host"), help="cut the network or share the host's")
    add(
        "--bind",
        dest="binds",
        action="append",
        default=[],
        metavar="SRC:DST[:ro]",
        help="bind host path SRC at DST, read-write unless :ro (repeatable)",
    )


def task_spec(name: str, opts: dict[str, Any]) -> RunSpec:
    """The RunSpec of task ``name``; its ``sandbox:`` profile and its retry
    policy go to ``opts``."""
    from stockade.cli.tasks import config_path
    from stockade.config import load
    from stockade.runner.policy import RetryPolicy

    cfg = load(config_path(opts["config_path"]))
    task = cfg.task(name)
    opts[TASK_PROFILE] = cfg.sandbox_profile(task.sandbox)
    opts[TASK_RETRY] = RetryPolicy(
        max_attempts=task.max_attempts, initial=task.backoff.initial,
        multiplier=task.backoff.multiplier, cap=task.backoff.max,
        on_timeout=task.on_timeout.action,
    )  # fmt: skip
    return cfg.run_spec(name, data_dir=opts["data_dir"])


def sandbox_profile(opts: dict[str, Any]) -> SandboxProfile | None:
    """The profile the options ask for, or ``None`` for the runner's default."""
    name = opts.get("sandbox")
    base = opts.get(TASK_PROFILE)
    adjust = any(opts.get(key) for key in _ADJUSTERS)
    if name is None and base is None and not adjust:
        return None
    from pydantic import ValidationError

    from stockade.spec.sandbox import Mount

    try:
        if name is not None:
            base = _named(name, opts.get("config_path"))
        if base is None:
            from stockade.sandbox.registry import default_profile

            base = default_profile("local")
        if not adjust:
            return base
        binds = [_bind(text) for text in opts.get("binds") or []]
        return base.adjusted(
            memory=size(opts["memory"], "--memory") if opts.get("memory") else None,
            pids=opts.get("pids"),
            cpu=opts.get("cpus"),
            network=opts.get("network"),
            mounts=[Mount.model_validate(b) for b in binds],
        )
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise UsageError(f"sandbox options: {problems}") from exc


def _named(name: str, config: str | None) -> SandboxProfile:
    """A profile by name: a backend's built-in one, else from stockade.yaml."""
    from stockade.sandbox.registry import BACKENDS, default_profile

    if name in BACKENDS and config is None:
        return default_profile(name)
    from stockade.cli.tasks import config_path
    from stockade.config import load

    try:
        path = config_path(config)
    except UsageError:
        if name in BACKENDS:
            return default_profile(name)
        from stockade.suggest import did_you_mean

        raise UsageError(
            f"--sandbox {name}: no such backend{did_you_mean(name, BACKENDS)} "
            f"(backends: {', '.join(BACKENDS)}); a profile needs a stockade.yaml and there "
            "is none here (give --config FILE)"
        ) from None
    profile = load(path).sandbox_profile(name)
    assert profile is not None
    return profile


def _bind(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]) or parts[2:] not in ([], ["ro"], ["rw"]):
        raise UsageError(f"--bind takes SRC:DST or SRC:DST:ro, got {text!r}")
    return {
        "type": "bind",
        "source": parts[0],
        "target": parts[1],
        "readonly": parts[2:] == ["ro"],
    }
