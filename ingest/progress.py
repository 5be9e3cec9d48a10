"""Progress for long ingests: a live bar on a terminal, a line every few seconds in logs and CI."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, interval: float = 5.0):
        self.stream = stream or sys.stderr  # looked up now, not at import: tests and callers swap stderr
        self.interval = interval
        self.tty = self.stream.isatty()
        self._bar = None

    def start(self, source: str, total: int) -> None:
        self.source, self.total, self.done, self.chunks = source, total, 0, 0
        self.started = self._last = self._item_at = time.monotonic()
        if total == 0:
            return
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            from ingest.progress_columns import PaceColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=None), MofNCompleteColumn(),
                PaceColumn(self),
                transient=True, console=Console(file=self.stream),
            )
            self._bar.start()
            self._task = self._bar.add_task(source, total=total)
        else:
            self._line(f"{source}: {total} items to read")

    def advance(self, files: int, chunks: int) -> None:
        self.done += files
        self.chunks += chunks
        if files:
            self._item_at = time.monotonic()
        if self._bar is not None:
            self._bar.update(self._task, advance=files)
        elif time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            self._line(f"{self.source}: {self.done}/{self.total} items, {self.chunks} chunks ({self.pace()})")

    def pace(self) -> str:
        """This source's chunks/s and time left, now."""
        now = time.monotonic()
        return pace(now - self.started, self.done, self.total, self.chunks, waited=now - self._item_at)

    def problem(self, line: str) -> None:
        self.note(line)

    def note(self, line: str) -> None:
        """A line above the bar, or in the log: work the item counts do not show (e.g. audio minutes)."""
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            self._line(line)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def pace(elapsed: float, done: int, total: int, chunks: int, waited: float = 0.0) -> str:
    """Chunks per second and the time left at the average time per item so far ("12 chunks/s, 0:03:10 left").

    The average over the whole source, not a recent window: items that take minutes each (a recording
    transcribed) still give an estimate from the first one on. ``waited`` is the time since the last item was
    read, so the estimate counts down while the next one is read."""
    per_second = chunks / elapsed if elapsed > 0 else 0.0
    rate = f"{per_second:.1f} chunks/s" if per_second < 10 else f"{per_second:.0f} chunks/s"
    if not done or elapsed <= 0:
        return f"{rate}, estimating time left"
    left = max(int((elapsed - waited) / done * max(total - done, 0) - waited), 0)
    return f"{rate}, {left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d} left"
