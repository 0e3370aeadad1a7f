"""The exception tree of stockade.

Every error stockade raises on purpose derives from :class:`StockadeError`::

    StockadeError
    ├── UsageError            bad command-line usage or bad input (exit 2)
    │   ├── InputError        job input that cannot be used (invalid JSON, bad format)
    │   └── SecretError       a secret whose source is missing
    ├── ConfigError           a stockade.yaml that does not load or validate
    ├── SandboxError          anything the sandbox layer could not do
    │   ├── SetupError        preparing a sandbox (per slot) failed
    │   │   └── MountError    one mount operation failed (operation, path, fs type, source)
    │   ├── SandboxMismatch   a job was about to run in a sandbox other than its declared one
    │   ├── LaunchError       starting a process in a ready sandbox failed
    │   └── CleanupError      tearing a sandbox down left something behind
    ├── OutputError           the job's declared output could not be read
    │   └── JobFileError      a file the job controls was refused (JobFileProblem says why)
    ├── ListenError           `stockade serve` cannot listen on its address (a busy port)
    └── StoreError            the job store could not do what was asked
        ├── StoreURLError     a database URL that is malformed or of an unsupported kind
        ├── StoreUnavailable  the database cannot be reached (transient: retried by workers)
        ├── SchemaError       the database schema is missing or older than this stockade
        ├── JobNotFound       no job has the given id
        ├── NameInUse         a live worker already uses the worker name asked for
        └── AmbiguousId       an id prefix that names more than one job or run (or is too short)

Each class's docstring doubles as its default message. Errors carry structured
fields and are raised ``from`` their cause at every layer boundary.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AmbiguousId",
    "ArtifactError",
    "BulkInputError",
    "CleanupError",
    "ConfigError",
    "DependencyError",
    "IncompleteRun",
    "InputError",
    "JobFileError",
    "JobFileProblem",
    "JobNotFound",
    "LaunchError",
    "ListenError",
    "MountError",
    "NameInUse",
    "OutputError",
    "SandboxError",
    "SandboxMismatch",
    "SchemaError",
    "SecretError",
    "SetupError",
    "StockadeError",
    "StoreError",
    "StoreURLError",
    "StoreUnavailable",
    "UsageError",
    "WorkspaceError",
]


class StockadeError(Exception):
    """stockade could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip().splitlines()[0])

    @property
    def message(self) -> str:
        """The one-line, user-facing message."""
        return str(self.args[0]) if self.args else ""


class UsageError(StockadeError):
    """The command line is not valid."""


class IncompleteRun(UsageError):
    """A run's tests did not all run: its failed tests cannot be rerun alone."""


class DependencyError(UsageError):
    """A job cannot be submitted after the jobs it names (unknown, or part of a pipeline run)."""


class InputError(UsageError):
    """The job input cannot be used."""


class BulkInputError(InputError):
    """A bad input in a bulk submission: where, why, and what was stored before it."""

    def __init__(self, line: int, problem: str, stored: int = 0, resume: int | None = None) -> None:
        self.line, self.problem, self.stored = line, problem, stored
        kept = "no job was stored"
        if stored:
            kept = f"{stored} job(s) stored; nothing from line {resume or line} on"
        super().__init__(f"line {line}: {problem} ({kept})")


class SecretError(UsageError):
    """A secret's source is missing."""


class ConfigError(StockadeError):
    """The configuration file is not valid."""


class OutputError(StockadeError):
    """The job's declared output could not be read."""


class ListenError(StockadeError):
    """The server cannot listen on its address."""


class JobFileProblem(StrEnum):
    """Why a file the job controls was not read."""

    MISSING = "missing"  # nothing at the path
    ESCAPES = "escapes"  # absolute, or '..' or a symlink leading out of its directory
    SYMLINK = "symlink"  # a symlink where none is followed
    NOT_REGULAR = "not_regular"  # a FIFO, socket, device or directory
    TOO_LARGE = "too_large"  # over the reader's size limit
    UNREADABLE = "unreadable"  # any other error of the system


class WorkspaceError(StockadeError):
    """A job's workspace could not be made (a template, a git checkout)."""


class ArtifactError(OutputError):
    """A job's artifacts could not be kept: over a limit, or not a plain file."""


class JobFileError(OutputError):
    """A file the job controls was refused or could not be read."""

    def __init__(
        self,
        message: str,
        problem: JobFileProblem,
        shown: str,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.problem = problem
        self.shown = shown
        self.size = size
        self.limit = limit
        super().__init__(message)


class SandboxError(StockadeError):
    """The sandbox could not do what was asked."""


class SandboxMismatch(SandboxError):
    """A claimed job was about to run in a sandbox other than the one its task
    declares (``backend``; ``None``: the worker's default): it is given back
    to the queue, unrun."""

    def __init__(self, slot: int, backend: str | None) -> None:
        wanted = "its default" if backend is None else f"sandbox {backend!r}"
        super().__init__(f"slot {slot} is not set up in {wanted}: the job was not run")
        self.backend = backend


class SetupError(SandboxError):
    """The sandbox could not be set up."""


class MountError(SetupError):
    """A mount operation failed while building a sandbox."""

    def __init__(
        self,
        operation: str,
        path: str,
        fstype: str = "",
        source: str = "",
        reason: str = "",
    ) -> None:
        self.operation = operation
        self.path = path
        self.fstype = fstype
        self.source = source
        detail = f"{operation} {source + ' -> ' if source else ''}{path}"
        if fstype:
            detail += f" (type {fstype})"
        super().__init__(f"mount failed: {detail}: {reason or 'unknown reason'}")


class LaunchError(SandboxError):
    """The process could not be started in the sandbox."""


class CleanupError(SandboxError):
    """The sandbox could not be cleaned up completely."""

    def __init__(self, message: str, remaining: list[str] | None = None) -> None:
        self.remaining = list(remaining or [])
        super().__init__(message)


class StoreError(StockadeError):
    """The job store could not do what was asked."""


class StoreURLError(StoreError):
    """The database URL is not valid."""


class StoreUnavailable(StoreError):
    """The database cannot be reached."""


class SchemaError(StoreError):
    """The database schema is missing or out of date: run `stockade db upgrade`."""


class JobNotFound(StoreError):
    """No such job."""

    def __init__(self, job_id: str, detail: str = "") -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r} in the store{detail}")


class NameInUse(StoreError):
    """A live worker already uses this worker name."""

    def __init__(self, name: str, holder: str) -> None:
        self.name = name
        super().__init__(
            f"worker name {name!r} is in use by a live worker ({holder}): "
            "stop that worker first or choose another --name"
        )


class RunNotFound(StoreError):
    """No such pipeline run."""

    def __init__(self, run_id: str, detail: str = "") -> None:
        self.run_id = run_id
        super().__init__(f"no run {run_id!r} in the store{detail}")


class AmbiguousId(StoreError):
    """An id prefix that does not name one record: it matches several, or is
    too short to be accepted; ``candidates`` are some of the ids it matches."""

    def __init__(self, what: str, ref: str, candidates: list[str], more: bool) -> None:
        self.ref = ref
        self.candidates = list(candidates)
        listed = ", ".join(self.candidates) + (", …" if more else "")
        if len(self.candidates) > 1:
            problem = f"is ambiguous: it matches {listed}; give more characters"
        else:
            problem = f"is too short: give at least 4 characters (it matches {listed})"
        super().__init__(f"{what} id prefix {ref!r} {problem}")
