"""The file format of ``stockade.yaml`` as pydantic models.

This package is the base layer's single definition of what a task, a
sandbox profile and a secret may say. :func:`stockade.config.load` reads
YAML into :class:`Config`; everything else in stockade consumes these
models (or the plain :class:`~stockade.runner.spec.RunSpec` made from a
task) and never re-validates.
"""

from stockade.spec.checks import did_you_mean, merge_defaults
from stockade.spec.config import CURRENT_VERSION, Config
from stockade.spec.sandbox import BACKENDS, Limits, Mount, SandboxProfile
from stockade.spec.secrets import SecretSpec
from stockade.spec.task import Backoff, ExitCodes, TaskDefaults, TaskSpec
from stockade.spec.types import signal_number

__all__ = [
    "BACKENDS",
    "CURRENT_VERSION",
    "Backoff",
    "Config",
    "ExitCodes",
    "Limits",
    "Mount",
    "SandboxProfile",
    "SecretSpec",
    "TaskDefaults",
    "TaskSpec",
    "did_you_mean",
    "merge_defaults",
    "signal_number",
]
