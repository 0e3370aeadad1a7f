"""The runner: carries one attempt of a job from input to outcome.

It never imports the store or the engine; it takes a plain :class:`RunSpec`,
an input and sinks, and returns a :class:`Result`.
"""

from stockade.runner.spec import (
    DEFAULT_KILL_GRACE,
    DEFAULT_MAX_OUTPUT,
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    RunSpec,
)

__all__ = [
    "DEFAULT_KILL_GRACE",
    "DEFAULT_MAX_OUTPUT",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "RunSpec",
]
