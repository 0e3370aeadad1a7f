"""What a job keeps of its task, and how an attempt is rebuilt from it.

At submit time the task is frozen into the job (``jobs.spec``): the task's
validated definition, the *sources* of its secrets (an environment
variable or a file name, never a value) and the sandbox profile its task
declares, resolved from the submitter's ``stockade.yaml``: the job runs in
that profile whichever worker claims it. A worker rebuilds the runner's
:class:`~stockade.runner.spec.RunSpec` from that alone, reading secret
values from its own environment when the attempt starts, so workers on
other machines need no copy of ``stockade.yaml`` and the store never holds
a secret.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from stockade import tracing
from stockade.errors import SandboxError, StockadeError, UsageError
from stockade.runner.spec import RunSpec
from stockade.spec import Config, SecretSpec, TaskSpec
from stockade.spec.keys import key_value
from stockade.spec.sandbox import SandboxProfile
from stockade.store.newjob import NewJob

if TYPE_CHECKING:
    from stockade.store.records import Claim

__all__ = [
    "SPEC_VERSION",
    "adhoc_task",
    "declared_profile",
    "log_budget",
    "new_job",
    "run_spec_for",
    "with_keys",
]

SPEC_VERSION = 1


def adhoc_task(argv: list[str] | None = None, shell: str | None = None, **keys: Any) -> TaskSpec:
    """A task made on the spot from a command (``stockade submit -- CMD``)."""
    try:
        return TaskSpec.model_validate({"command": argv, "run": shell, **keys})
    except ValidationError as exc:
        raise UsageError(f"invalid job: {exc.errors()[0]['msg']}") from exc


def new_job(
    name: str,
    task: TaskSpec,
    *,
    config: Config | None = None,
    input: Any = None,
    priority: int | None = None,
    delay: float = 0.0,
    keys: bool = True,
) -> NewJob:
    """The record to enqueue for one run of ``task`` with ``input``; its keys
    evaluated over ``input`` unless ``keys`` is false (a template whose input
    comes later: :func:`with_keys` then)."""
    sources: dict[str, Any] = {}
    for secret in task.secrets:
        spec = config.secrets.get(secret) if config is not None else None
        sources[secret] = (spec or SecretSpec(env=secret)).model_dump(exclude_none=True)
    frozen: dict[str, Any] = {
        "version": SPEC_VERSION,
        # Keys are the store's, in columns (stockade.store.gates), not the worker's;
        # notify is the store's outbox's (stockade.store.outbox); queue and
        # requires are the claim's (stockade.store.routing).
        "task": task.model_dump(
            mode="json",
            exclude={"description", "concurrency", "unique", "notify", "queue", "requires"},
        ),
        "secrets": sources,
    }
    trace = tracing.carrier()
    if trace:  # submitted inside a trace: whichever worker runs it continues it
        frozen["trace"] = trace
    notes = [*(config.notify if config is not None else ()), *task.notify]
    if notes:  # what the store queues when the job ends (stockade.store.outbox)
        frozen["notify"] = [note.model_dump(mode="json", exclude_none=True) for note in notes]
    profile = _resolve_profile(task, config)
    if profile is not None:
        frozen["sandbox"] = profile.model_dump(mode="json")
    job = NewJob(
        task=name,
        spec=frozen,
        input=input,
        priority=task.priority if priority is None else priority,
        max_attempts=task.max_attempts,
        backoff_initial=task.backoff.initial,
        backoff_multiplier=task.backoff.multiplier,
        backoff_max=task.backoff.max,
        on_timeout=task.timeout_action,
        delay=delay,
        sandbox=None if profile is None else profile.backend,
        queue=task.queue,
        labels=dict(task.requires.labels),
    )
    return with_keys(job, task) if keys else job


def with_keys(job: NewJob, task: TaskSpec) -> NewJob:
    """``job`` with the values of ``task``'s ``concurrency`` and ``unique`` keys
    for its input (evaluated now, stored with the job); :class:`InputError`
    when the input does not give a key."""
    if task.concurrency is not None:
        job.concurrency_key = key_value(task.concurrency.key, job.input, "concurrency")
        job.concurrency_limit = task.concurrency.limit
        job.cancel_in_progress = task.concurrency.cancel_in_progress
    if task.unique is not None:
        job.unique_key = key_value(task.unique.key, job.input, "unique")
        job.unique_while = task.unique.while_
    return job


def _resolve_profile(task: TaskSpec, config: Config | None) -> SandboxProfile | None:
    """The profile ``task``'s ``sandbox:`` names: from ``config``, or a backend's
    defaults without one. Raises :class:`UsageError` for an unknown name."""
    if task.sandbox is None:
        return None
    if config is not None:
        return config.sandbox_profile(task.sandbox)
    from stockade.spec.sandbox import BACKENDS

    if task.sandbox not in BACKENDS:
        raise UsageError(f"unknown sandbox {task.sandbox!r}: give a stockade.yaml that defines it")
    return SandboxProfile.model_validate({"backend": task.sandbox})


@functools.lru_cache(maxsize=64)
def _profile(text: str) -> SandboxProfile:
    return SandboxProfile.model_validate(json.loads(text))


def declared_profile(claim: Claim) -> SandboxProfile | None:
    """The sandbox profile ``claim``'s job must run in (``None``: it declares none).

    Raises :class:`SandboxError` (infrastructure: another worker may manage)
    when the frozen profile cannot be used on this machine, a bind source
    missing here for instance.
    """
    frozen = claim.spec.get("sandbox")
    if frozen is None:
        return None
    try:
        return _profile(json.dumps(frozen, sort_keys=True))
    except ValidationError as exc:
        problem = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise SandboxError(f"the job's sandbox profile cannot be used here: {problem}") from exc


@functools.lru_cache(maxsize=256)
def _task(text: str) -> TaskSpec:
    """The validated task of a frozen spec (jobs of one task share the work)."""
    return TaskSpec.model_validate(json.loads(text))


@functools.lru_cache(maxsize=256)
def _secretless_spec(text: str, name: str, data_dir: str | None) -> RunSpec:
    """The runner spec of a task without secrets: the same for every job of
    the task, so a worker builds it once (callers copy it with ``replace``)."""
    return _task(text).to_run_spec(name, secrets={}, data_dir=data_dir)


def run_spec_for(claim: Claim, data_dir: str | None = None) -> RunSpec:
    """The runner spec of ``claim``'s attempt, secrets read now.

    Raises :class:`~stockade.errors.StockadeError` (a job-level failure) when
    the frozen spec is unusable here or a secret's source is missing.
    """
    frozen = claim.spec
    if frozen.get("version") != SPEC_VERSION:
        raise UsageError(f"job spec version {frozen.get('version')!r} is not supported here")
    try:
        text = _task_text(frozen["task"])
        sources = frozen.get("secrets")
        if sources:
            secrets = {
                name: SecretSpec.model_validate(source).read(name)
                for name, source in sources.items()
            }
            spec = _task(text).to_run_spec(claim.task, secrets=secrets, data_dir=data_dir)
        else:
            spec = _secretless_spec(text, claim.task, data_dir)
    except ValidationError as exc:
        raise UsageError(f"job spec is not valid: {exc.errors()[0]['msg']}") from exc
    except (KeyError, TypeError) as exc:
        raise UsageError(f"job spec is incomplete: {exc}") from exc
    # A copy with this attempt's three fields: ``replace`` would run the
    # spec's validation again, a tenth of the function's cost.
    attempt = copy.copy(spec)
    attempt.job_id, attempt.attempt, attempt.state = claim.job_id, claim.run, dict(claim.state)
    return attempt


def log_budget(claim: Claim) -> tuple[int, int]:
    """``(log_head, log_tail)`` of ``claim``'s task: what its store log keeps.

    Call after :func:`run_spec_for` succeeded (the spec is valid and parsed).
    """
    task = _task(_task_text(claim.spec["task"]))
    return task.log_head, task.log_tail


#: Frozen tasks already turned into text, by identity (each entry holds its
#: dict, so the id cannot be reused while it is here): claims of one task
#: share one parsed spec (see ``Claim.from_values``).
_texts: dict[int, tuple[Any, str]] = {}


def _task_text(task: Any) -> str:
    """``task`` as the JSON text that keys the caches above."""
    hit = _texts.get(id(task))
    if hit is not None and hit[0] is task:
        return hit[1]
    if len(_texts) >= 256:
        _texts.clear()
    text = json.dumps(task)
    _texts[id(task)] = (task, text)
    return text


def describe_error(exc: BaseException) -> str:
    """A one-line message for an exception that ends a job."""
    if isinstance(exc, StockadeError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
