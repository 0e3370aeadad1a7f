"""Sandboxes: where an attempt's processes live (see :mod:`stockade.sandbox.base`)."""

from stockade.sandbox.base import Availability, ExitStatus, LaunchRequest, ProcessHandle, Sandbox

__all__ = ["Availability", "ExitStatus", "LaunchRequest", "ProcessHandle", "Sandbox"]
