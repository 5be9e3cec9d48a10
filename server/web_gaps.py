"""What the gaps page shows: the questions people asked and the corpus did not answer, in themes.

The themes are those of `corpus gaps`: the same notion of unanswered (``server.gaps.unanswered``) and the same
grouping by meaning with the corpus's own model (``server.gaps.group``), ranked by how many people asked, then how
recently. The page names a theme by its most asked question; `corpus gaps` names them (with Claude, or by their
most distinctive words) and checks whether later ingests resolved them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from server.gaps import group, unanswered
from server.search import Searcher
from store.questionlog import Entry

GROUPED = 500  # the most recent unanswered entries grouped per view: each question is embedded (about 1 ms)


@dataclass(frozen=True)
class Asked:
    """One question: how often, by how many, when last."""

    query: str
    times: int
    askers: int
    last: datetime


@dataclass(frozen=True)
class GapTheme:
    questions: list[Asked]  # the most asked first
    asked: int
    askers: int
    reported: int  # of the times asked, gaps a Claude session reported
    last: datetime
    missing: list[str]  # what the reporting sessions said was missing


def themes(searcher: Searcher, entries: list[Entry]) -> list[GapTheme]:
    """The unanswered among ``entries`` (oldest first, as the log gives them), in ranked themes."""
    open_ = [e for e in entries if unanswered(e)][-GROUPED:]
    found = [_theme(members) for members in group(searcher, open_)]
    return sorted(found, key=lambda t: (-t.askers, -t.last.timestamp()))


def _theme(members: list[Entry]) -> GapTheme:
    by_text: dict[str, list[Entry]] = {}
    for entry in members:
        by_text.setdefault(" ".join(re.findall(r"\w+", entry.query.lower())), []).append(entry)  # as gaps groups
    questions = [Asked(query=same[-1].query, times=len(same), askers=len({e.caller for e in same}),
                       last=max(e.time for e in same)) for same in by_text.values()]
    questions.sort(key=lambda a: (-a.times, -a.last.timestamp()))
    return GapTheme(questions=questions, asked=len(members), askers=len({e.caller for e in members}),
                    reported=sum(e.kind == "gap" for e in members), last=max(e.time for e in members),
                    missing=list(dict.fromkeys(e.missing for e in members if e.missing)))
