"""The terminal bar's pace column: rich's own time-left column needs two updates within 30 s and showed
-:--:-- until the end whenever items are slow or written in large batches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress import ProgressColumn, Task
from rich.table import Column
from rich.text import Text

if TYPE_CHECKING:
    from ingest.progress import Progress


class PaceColumn(ProgressColumn):
    """Chunks written, chunks per second and time left, from the source's average; redrawn as the clock runs."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(table_column=Column(no_wrap=True))  # the bar gives way first on a narrow terminal
        self.progress = progress

    def render(self, task: Task) -> Text:
        return Text(f"· {self.progress.chunks} chunks · {self.progress.pace()}")
