"""The `corpus gaps` report: themes of what people asked and the corpus could not answer, open ones first.

Markdown or self-contained HTML, in the style of the onboarding report (``server.check_report``), whose
"asked but not answered" section is rendered by the same functions.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from server.check_report import STYLE
from server.gaps import Gaps, Theme

SECTION = "Asked but not answered"


def status(theme: Theme) -> str:
    if theme.resolved:
        return f"resolved ({theme.answered_now} of {theme.researched} now answered)"
    return "open"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _summary(gaps: Gaps) -> str:
    return (f"since {_when(gaps.since)} UTC: {gaps.entries} logged, {gaps.unanswered} not answered or reported "
            f"missing, {len(gaps.themes)} theme(s), {len(gaps.single)} question(s) asked once")


def theme_markdown(gaps: Gaps, level: str = "##") -> list[str]:
    lines = [f"{level} Themes, most askers first", ""] if gaps.themes else ["No themes: nothing asked twice went "
                                                                            "unanswered.", ""]
    for n, t in enumerate(gaps.themes, start=1):
        lines += [f"{level}# {n}. {t.name}", ""]
        if t.description:
            lines += [t.description, ""]
        lines += [f"- **{status(t)}** · {t.askers} asker(s), asked {t.asked} time(s) ({t.reported} reported by a "
                  f"session), last {_when(t.last_asked)} UTC",
                  f"- likely owners: {', '.join(t.owners) or 'unknown'}"]
        lines += [f"- reported missing: {m}" for m in t.missing[:3]]
        lines += ["- examples:", *(f"  - {q}" for q in t.questions[:5]), ""]
    if gaps.single:
        lines += [f"{level} Asked once", "", *(f"- {t.questions[0]} ({status(t)})" for t in gaps.single[:20]), ""]
    return lines


def to_markdown(gaps: Gaps, title: str) -> str:
    return "\n".join([f"# {title}", "", f"- {_summary(gaps)}", f"- mode: {gaps.mode}", "", *theme_markdown(gaps)])


def theme_html(gaps: Gaps, level: int = 2) -> list[str]:
    e = html.escape
    parts = [f"<h{level}>Themes, most askers first</h{level}>" if gaps.themes
             else "<p>No themes: nothing asked twice went unanswered.</p>"]
    for t in gaps.themes:
        badge = "answered" if t.resolved else "missing"
        parts.append(f"<section><h{level + 1}>{e(t.name)}</h{level + 1}><p><b class='badge {badge}'>"
                     f"{e(status(t))}</b> {t.askers} asker(s), asked {t.asked} time(s), last {_when(t.last_asked)} "
                     f"UTC</p>")
        if t.description:
            parts.append(f"<p>{e(t.description)}</p>")
        parts.append(f"<p class=why>Likely owners: {e(', '.join(t.owners) or 'unknown')}</p><ul>")
        parts += [f"<li>{e(q)}</li>" for q in t.questions[:5]]
        parts += [f"<li class=why>reported missing: {e(m)}</li>" for m in t.missing[:3]]
        parts.append("</ul></section>")
    if gaps.single:
        parts.append(f"<h{level}>Asked once</h{level}><ul>")
        parts += [f"<li>{e(t.questions[0])} <span class=why>({e(status(t))})</span></li>" for t in gaps.single[:20]]
        parts.append("</ul>")
    return parts


def to_html(gaps: Gaps, title: str) -> str:
    e = html.escape
    return "\n".join([f"<!doctype html><html lang=en><meta charset=utf-8><title>{e(title)}</title>"
                      f"<style>{STYLE}</style>", f"<h1>{e(title)}</h1>",
                      f"<p>{e(_summary(gaps))}<br><span class=why>Mode: {e(gaps.mode)}.</span></p>",
                      *theme_html(gaps)]) + "\n</html>\n"


def write_report(gaps: Gaps, path: Path, title: str = "Knowledge gaps") -> None:
    """Markdown, or HTML when the file name ends in .html/.htm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    render = to_html if path.suffix.lower() in (".html", ".htm") else to_markdown
    path.write_text(render(gaps, title), encoding="utf-8")
