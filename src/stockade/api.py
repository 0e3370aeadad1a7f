"""The public face for Python programs: run a command, or many in one sandbox.

::

    import stockade

    result = stockade.run(["make", "-j4"], timeout=600)          # blocking
    result = await stockade.arun(shell="echo $INPUT_NAME", input={"name": "Ada"})

    async with stockade.sandboxed("bwrap") as box:                 # set up once
        for name in ("a", "b"):
            result = await box.run(["./test.sh", name], timeout=60)

A job run here is supervised exactly as ``stockade exec`` runs it (stop
ladder, kill-all, masking, output limits, classification); nothing is
stored. ``sandbox`` takes a backend's name (its built-in profile) or a
:class:`~stockade.spec.sandbox.SandboxProfile` (from
``stockade.config.load(path).sandbox_profile(name)``, for instance), and
gives every run the profile's environment policy and wall-time limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from stockade.errors import UsageError
from stockade.runner.result import Result
from stockade.runner.spec import RunSpec

if TYPE_CHECKING:
    from stockade.runner.events import Sink
    from stockade.sandbox.base import Sandbox as SandboxBackend
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["Sandbox", "arun", "run", "sandboxed"]

#: What the keyword arguments of :func:`run` may set (the fields of :class:`RunSpec`).
_SPEC_FIELDS = frozenset(f.name for f in dataclasses.fields(RunSpec)) - {"argv", "shell"}


def _spec(command: Sequence[str] | None, shell: str | None, fields: dict[str, Any]) -> RunSpec:
    unknown = sorted(set(fields) - _SPEC_FIELDS)
    if unknown:
        raise UsageError(f"unknown run option(s): {', '.join(unknown)}")
    try:
        return RunSpec(argv=None if command is None else list(command), shell=shell, **fields)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


class Sandbox:
    """A set-up sandbox that runs jobs one after another (see :func:`sandboxed`)."""

    def __init__(self, backend: SandboxBackend, profile: SandboxProfile) -> None:
        self.backend = backend
        self.profile = profile

    async def run(
        self,
        command: Sequence[str] | None = None,
        *,
        shell: str | None = None,
        input: Any = None,
        sinks: Sequence[Sink] = (),
        **options: Any,
    ) -> Result:
        """Run one job in this sandbox; ``options`` are :class:`RunSpec` fields
        (``timeout``, ``env``, ``secrets``, ``output_format`` …)."""
        from stockade.runner.attempt import run as run_attempt
        from stockade.sandbox.registry import prepare_spec

        spec = prepare_spec(_spec(command, shell, options), self.profile)
        return await run_attempt(spec, input, sinks=sinks, sandbox=self.backend)


def _profile(profile: str | SandboxProfile) -> SandboxProfile:
    from stockade.sandbox.registry import BACKENDS, default_profile

    if not isinstance(profile, str):
        return profile
    if profile not in BACKENDS:
        raise UsageError(
            f"unknown sandbox backend {profile!r} (one of: {', '.join(BACKENDS)}); "
            "for a profile from stockade.yaml pass config.sandbox_profile(NAME)"
        )
    return default_profile(profile)


@asynccontextmanager
async def sandboxed(profile: str | SandboxProfile = "local") -> AsyncIterator[Sandbox]:
    """Set up a sandbox in ``profile`` for the block, and clean it up after it,
    whatever happens: setup is paid once for every job run in it.

    (Not ``stockade.sandbox``: that name is the package of the backends.)"""
    from stockade.sandbox.registry import create

    chosen = _profile(profile)
    backend = create(chosen)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, backend.setup)
    try:
        yield Sandbox(backend, chosen)
    finally:
        await loop.run_in_executor(None, backend.cleanup)


#: :func:`sandboxed` under a name :func:`arun`'s arguments cannot hide.
_open = sandboxed


async def arun(
    command: Sequence[str] | None = None,
    *,
    shell: str | None = None,
    input: Any = None,
    sandbox: str | SandboxProfile | None = None,
    sinks: Sequence[Sink] = (),
    **options: Any,
) -> Result:
    """Run one job (``command`` as an argv, or a ``shell`` line) and return its
    result; in ``sandbox`` if given (set up and cleaned up around it),
    else on the host in a slot cgroup of its own, as ``stockade exec`` does."""
    if sandbox is None:
        from stockade.runner.attempt import run as run_attempt

        return await run_attempt(_spec(command, shell, options), input, sinks=sinks)
    async with _open(sandbox) as box:
        return await box.run(command, shell=shell, input=input, sinks=sinks, **options)


def run(
    command: Sequence[str] | None = None,
    *,
    shell: str | None = None,
    input: Any = None,
    sandbox: str | SandboxProfile | None = None,
    **options: Any,
) -> Result:
    """:func:`arun` for code without an event loop (it runs one for the job)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(command, shell=shell, input=input, sandbox=sandbox, **options))
    raise UsageError("stockade.run() blocks: inside an event loop, use `await stockade.arun(...)`")
