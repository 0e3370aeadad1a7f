"""stockade: run any command as a supervised, sandboxed, durable job.

The package root stays import-light on purpose: ``stockade exec -- true`` must
start in a few tens of milliseconds, so nothing heavy is imported here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
