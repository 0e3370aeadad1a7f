"""A rich console that lets :class:`~stockade.ui.pipeguard.ClosedPipeGuard`
handle a closed output."""

from __future__ import annotations

from rich.console import Console

__all__ = ["PipeConsole"]


class PipeConsole(Console):
    """A rich console that raises :class:`BrokenPipeError` on a closed output,
    for :class:`~stockade.ui.pipeguard.ClosedPipeGuard` to handle (rich's own
    default exits the program)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError("stdout was closed")
