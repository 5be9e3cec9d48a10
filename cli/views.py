"""What the commands print on a terminal, at any width: names and citations are never cut.

A table is printed when it fits the terminal; otherwise each row becomes a name on its own line and its
values below it. Citations are printed whole on their own line, left for the terminal to wrap, so they
can be copied.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

SNIPPET_CHARS = 300


def rows(console: Console, title: str | None, columns: Sequence[str], values: Sequence[Sequence[str]],
         numeric: Sequence[str] = ()) -> None:
    """A table whose first column names each row: as a table when it fits ``console``, else a block per row."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", no_wrap=True)
    for row in values:
        table.add_row(*row)
    if console.measure(table, options=console.options.update_width(10_000)).maximum <= console.width:
        console.print(table)
        return
    if title:
        console.print(title, markup=False, highlight=False)
    for name, *rest in values:
        console.print(name, markup=False, highlight=False, soft_wrap=True)
        console.print("  " + ", ".join(f"{column} {value}" for column, value in zip(columns[1:], rest, strict=True)),
                      markup=False, highlight=False)


def failures(console: Console, items: Sequence, heading: str, limit: int | None = None) -> None:
    """Failed items (``ingest.status.FailedItem``): source/path on its own line, then since when and why."""
    console.print(heading, markup=False, highlight=False)
    for item in items[:limit]:
        console.print(f"  {item.source}/{item.path}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"    since {when(item.since)}: {item.reason}", markup=False, highlight=False)
    if limit is not None and len(items) > limit:
        console.print(f"  … and {len(items) - limit} more: `corpus status --failed` lists them all", markup=False,
                      highlight=False)


def hits(console: Console, found) -> None:
    """Search hits (``server.relevance.Found``), one block each, the citation whole on a line of its own."""
    from server.hits import dated

    for rank, hit in enumerate(found.hits, start=1):
        where = hit.title + (f" › {hit.section}" if hit.section else "")
        console.print(f"[bold]{rank}. {escape(where)}[/bold]  [dim]relevance {hit.relevance:.2f} {hit.match}[/dim]")
        console.print(escape(_snippet(hit.text)))
        console.print(f"[dim]{escape(hit.citation_label)} · {escape(dated(hit.date, hit.date_source))}[/dim]")
        console.print(hit.citation, markup=False, highlight=False, soft_wrap=True, style="cyan")
        for note in hit.notes:
            console.print(f"[yellow]note: {escape(note)}[/yellow]")
        for passage in hit.more:
            console.print(f"  [dim]more of this document:[/dim] {escape(passage.section or hit.title)}  "
                          f"[dim]{escape(passage.citation_label)}[/dim]")
            console.print("  " + escape(_snippet(passage.text)))
        console.print()


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")


def when(epoch: float) -> str:
    """A time as an admin reads it: local, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
