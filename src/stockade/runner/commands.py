"""What the job's protocol commands do to its attempt.

The parser (:mod:`stockade.runner.protocol`) says what a line means; this
module applies it: outputs, saved state, masks, annotations, progress.
Values other than an ``add-mask`` secret are masked before they are kept
or shown; the ``add-mask`` value itself never appears in any event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from stockade.runner.events import Event
from stockade.runner.protocol import Command
from stockade.runner.redact import Masker
from stockade.runner.result import Annotation

__all__ = ["CommandEffects"]


class CommandEffects:
    """Collects the effects of one attempt's commands."""

    def __init__(self, job_id: str, masker: Masker, emit: Callable[[Event], None]) -> None:
        self.job_id = job_id
        self.masker = masker
        self.emit = emit
        self.outputs: dict[str, Any] = {}
        self.state: dict[str, Any] = {}
        self.annotations: list[Annotation] = []

    def handle(self, command: Command) -> None:
        """Apply one command; never raises on a malformed one."""
        if command.name == "add-mask":
            if command.message.strip():
                self.masker.add(command.message)
            self.emit(Event("command", self.job_id, {"name": "add-mask"}))
            return
        mask = self.masker.mask_text
        props = {k: mask(v) for k, v in command.props.items()}
        message = mask(command.message)
        self.emit(
            Event(
                "command", self.job_id, {"name": command.name, "props": props, "message": message}
            )
        )
        handler = getattr(self, "_" + command.name.replace("-", "_"), None)
        if handler is not None:
            handler(props, message)

    def _warn(self, message: str) -> None:
        self.emit(Event("warning", self.job_id, {"message": message}))

    def _set_output(self, props: dict[str, str], message: str) -> None:
        if "name" not in props:
            self._warn("set-output without name= ignored")
            return
        self.outputs[props["name"]] = message

    def _save_state(self, props: dict[str, str], message: str) -> None:
        if "name" not in props:
            self._warn("save-state without name= ignored")
            return
        self.state[props["name"]] = message

    def _annotate(self, level: str, props: dict[str, str], message: str) -> None:
        def number(key: str) -> int | None:
            with contextlib.suppress(KeyError, ValueError):
                return int(props[key])
            return None

        note = Annotation(
            level=level,
            message=message,
            file=props.get("file"),
            line=number("line"),
            col=number("col"),
            title=props.get("title"),
        )
        self.annotations.append(note)
        self.emit(
            Event("annotation", self.job_id, {k: v for k, v in vars(note).items() if v is not None})
        )

    def _error(self, props: dict[str, str], message: str) -> None:
        self._annotate("error", props, message)

    def _warning(self, props: dict[str, str], message: str) -> None:
        self._annotate("warning", props, message)

    def _notice(self, props: dict[str, str], message: str) -> None:
        self._annotate("notice", props, message)

    def _progress(self, props: dict[str, str], message: str) -> None:
        try:
            value = float(props.get("value", ""))
        except ValueError:
            self._warn(f"progress value {props.get('value')!r} is not a number; ignored")
            return
        value = min(max(value, 0.0), 100.0)
        self.emit(Event("progress", self.job_id, {"value": value, "message": message}))
