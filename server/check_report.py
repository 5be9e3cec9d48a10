"""The `corpus check` report a person reads: coverage by section, the gaps first, the evidence cited.

Markdown for a repository or a ticket, HTML (self-contained, no scripts) for a browser; both are
built from the same ordered outline so they never say different things. Each question lists first
the passage its verdict rests on, its signals in words, and passages cut at a word end with "…".
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from server.check import FOUND_BY, CheckResult, Evidence, Outcome, closeness
from server.gaps import Gaps

ORDER = {"missing": 0, "partly": 1, "answered": 2}
SHOWN = 3  # passages shown per question
SNIPPET = 200  # characters of each, at most


def clip(text: str, limit: int = SNIPPET) -> str:
    """The text on one line, cut at the last word end within ``limit`` with "…" when anything was cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[:limit + 1]  # a space right after the limit still ends the last word
    cut = head.rsplit(" ", 1)[0] if " " in head else flat[:limit]
    return cut.rstrip(" ,;:") + "…"


def signals(outcome: Outcome, e: Evidence) -> str:
    """What a passage's signals say, in words; the one the verdict rests on says so."""
    rests = "the verdict rests on this passage; " if e.id == outcome.rests_on else ""
    return f"{rests}search rank {e.rank}, {closeness(e.similarity)} ({e.similarity:.2f}), {FOUND_BY[e.found_by]}"


def _scope(result: CheckResult) -> str:
    return f"sources {', '.join(result.sources)} only" if result.sources else "all sources"


def write_report(result: CheckResult, path: Path, title: str, gaps: Gaps | None = None) -> None:
    """Markdown, or HTML when the file name ends in .html/.htm; ``gaps``, the question log's themes, add a
    section "asked but not answered"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    render = to_html if path.suffix.lower() in (".html", ".htm") else to_markdown
    path.write_text(render(result, title, gaps), encoding="utf-8")


def _ordered(result: CheckResult) -> list[Outcome]:
    return sorted(result.outcomes, key=lambda o: ORDER[o.verdict])  # stable: file order within a verdict


def to_markdown(result: CheckResult, title: str, gaps: Gaps | None = None) -> str:
    lines = [
        f"# {title}", "",
        f"- checked {datetime.now().strftime('%Y-%m-%d %H:%M')}, {len(result.outcomes)} questions",
        f"- mode: {result.mode}",
        f"- checked against: {_scope(result)}",
        f"- **coverage {result.coverage():.0%}**: {result.count('answered')} answered, {result.count('partly')} "
        f"partly, {result.count('missing')} missing", "",
        "## Coverage by section", "", "| section | questions | answered | partly | missing | coverage |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for section, outcomes in result.sections():
        counts = [sum(1 for o in outcomes if o.verdict == v) for v in ("answered", "partly", "missing")]
        lines.append(f"| {section} | {len(outcomes)} | {' | '.join(map(str, counts))} | "
                     f"{result.coverage(outcomes):.0%} |")
    lines += ["", "## Questions, gaps first", ""]
    for n, outcome in enumerate(_ordered(result), start=1):
        q = outcome.question
        lines += [f"### {n}. {q.text}", "", f"**{outcome.verdict.upper()}** ({outcome.judged_by})"
                  + (f" · section: {q.section}" if q.section else ""), ""]
        if q.source or q.answer:
            lines += [f"- expected: {', '.join(filter(None, [q.source and f'source {q.source}', q.answer]))}"]
        if outcome.answer:
            lines.append(f"- answer: {outcome.answer}")
        lines += [f"- quote: “{quote.text}” — [{quote.citation_label}]({quote.citation})" for quote in outcome.quotes]
        lines += [f"- why: {'; '.join(outcome.reasons)}", "- evidence:"]
        for e in outcome.evidence[:SHOWN]:
            lines.append(f"  - [{e.citation_label}]({e.citation}) ({signals(outcome, e)}): {clip(e.text)}")
        if not outcome.evidence:
            lines.append("  - none")
        lines.append("")
    if gaps is not None:
        from server.gaps_report import SECTION, theme_markdown  # it borrows this module's style

        lines += [f"## {SECTION}", "", f"From the question log: {gaps.unanswered} of {gaps.entries} searches and "
                  f"reports since {gaps.since:%Y-%m-%d} were not answered (this check's own questions aside).", "",
                  *theme_markdown(gaps, level="###")]
    return "\n".join(lines)


STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
td:first-child,th:first-child{text-align:left}.badge{color:#fff;border-radius:.3rem;padding:.05rem .45rem}
.missing{background:#b00020}.partly{background:#a66b00}.answered{background:#1b7a1b}
section{border-top:1px solid #ddd;padding:.5rem 0}blockquote{margin:.3rem 0 .3rem 1rem;color:#555}
.why{color:#555;font-size:90%}.bar{background:#eee;height:.8rem;width:12rem;display:inline-block}
.bar span{background:#1b7a1b;height:100%;display:block}"""


def to_html(result: CheckResult, title: str, gaps: Gaps | None = None) -> str:
    e = html.escape
    coverage = result.coverage()
    parts = [
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{e(title)}</title><style>{STYLE}</style>",
        f"<h1>{e(title)}</h1>",
        f"<p><b>Coverage {coverage:.0%}</b> <span class=bar><span style='width:{coverage:.0%}'></span></span> "
        f"— {result.count('answered')} answered, {result.count('partly')} partly, "
        f"{result.count('missing')} missing of {len(result.outcomes)} questions.<br>"
        f"<span class=why>Mode: {e(result.mode)}. Checked against {e(_scope(result))} "
        f"{datetime.now().strftime('%Y-%m-%d %H:%M')}.</span></p>",
        "<h2>Coverage by section</h2><table><tr><th>section<th>questions<th>answered<th>partly<th>missing"
        "<th>coverage</tr>",
    ]
    for section, outcomes in result.sections():
        counts = [sum(1 for o in outcomes if o.verdict == v) for v in ("answered", "partly", "missing")]
        parts.append(f"<tr><td>{e(section)}<td>{len(outcomes)}<td>{counts[0]}<td>{counts[1]}<td>{counts[2]}"
                     f"<td>{result.coverage(outcomes):.0%}</tr>")
    parts.append("</table><h2>Questions, gaps first</h2>")
    for outcome in _ordered(result):
        q = outcome.question
        parts.append(f"<section><h3>{e(q.text)}</h3><p><b class='badge {outcome.verdict}'>{outcome.verdict}</b> "
                     f"({e(outcome.judged_by)}){' · ' + e(q.section) if q.section else ''}</p>")
        if outcome.answer:
            parts.append(f"<p>{e(outcome.answer)}</p>")
        for quote in outcome.quotes:
            parts.append(f"<blockquote>“{e(quote.text)}” — <a href='{e(quote.citation)}'>"
                         f"{e(quote.citation_label)}</a></blockquote>")
        parts.append(f"<p class=why>Why: {e('; '.join(outcome.reasons))}</p><ul>")
        for ev in outcome.evidence[:SHOWN]:
            parts.append(f"<li><a href='{e(ev.citation)}'>{e(ev.citation_label)}</a> "
                         f"<span class=why>({e(signals(outcome, ev))})</span> {e(clip(ev.text))}</li>")
        parts.append("</ul></section>")
    if gaps is not None:
        from server.gaps_report import SECTION, theme_html

        parts += [f"<h2>{SECTION}</h2><p>From the question log: {gaps.unanswered} of {gaps.entries} searches and "
                  f"reports since {gaps.since:%Y-%m-%d} were not answered (this check's own questions aside).</p>",
                  *theme_html(gaps, level=3)]
    return "\n".join(parts) + "\n</html>\n"
