"""The TUI's timeline: a row per lane, each job a coloured bar over time,
the critical path marked (``*`` before the lane, bars underlined)."""

from __future__ import annotations

from rich.text import Text

from stockade.engine.timeline import Timeline
from stockade.printable import printable

__all__ = ["timeline_text"]

_STYLE = {
    "succeeded": "black on green", "failed": "white on red", "running": "black on yellow",
    "cancelled": "white on magenta", "skipped": "black on grey50",
}  # fmt: skip


def timeline_text(timeline: Timeline, width: int) -> Text:
    """``timeline`` drawn in ``width`` columns; a bar shows as much of its
    job's name as fits."""
    if not timeline.bars:
        return Text("no job has started", style="dim")
    columns = max(width - 5, 10)
    scale = columns / timeline.span if timeline.span > 0 else 0.0
    out = Text()
    for lane in range(timeline.lanes):
        bars = sorted((b for b in timeline.bars if b.lane == lane), key=lambda b: b.start)
        critical = any(b.critical for b in bars)
        row = Text(f"{lane:>3}{'*' if critical else ' '} ")
        at = 0
        for bar in bars:
            first = max(min(int(bar.start * scale), columns - 1), at)
            last = max(first + 1, min(round(bar.end * scale), columns))
            row.append(" " * (first - at))
            label = printable(bar.job)[: last - first].ljust(last - first)
            style = _STYLE.get(bar.status, "reverse") + (" underline bold" if bar.critical else "")
            row.append(label, style=style)
            at = last
        out.append(row)
        out.append("\n")
    out.append(
        f"{timeline.lanes} lane(s), {timeline.lanes_from}; span {timeline.span:.1f}s; "
        "* and underlined: the critical path",
        style="dim",
    )
    return out
