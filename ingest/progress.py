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
        self.started = self._last = time.monotonic()
        if total == 0:
            return
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("items · {task.fields[chunks]} chunks"), TimeRemainingColumn(),
                transient=True, console=Console(file=self.stream),
            )
            self._bar.start()
            self._task = self._bar.add_task(source, total=total, chunks=0)
        else:
            self._line(f"{source}: {total} items to read")

    def advance(self, files: int, chunks: int) -> None:
        self.done += files
        self.chunks += chunks
        if self._bar is not None:
            self._bar.update(self._task, advance=files, chunks=self.chunks)
        elif time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            rate = self.chunks / max(time.monotonic() - self.started, 1e-9)
            self._line(f"{self.source}: {self.done}/{self.total} items, {self.chunks} chunks ({rate:.0f} chunks/s)")

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
