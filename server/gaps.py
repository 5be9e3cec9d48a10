"""`corpus gaps`: what people asked and the corpus could not answer, grouped into themes.

From the question log (``store.questionlog``) it takes the searches the corpus did not answer (verdict
unlikely, or no strong hit and nothing read afterwards) and the gaps sessions reported. Their questions are
embedded with the corpus's own model and grouped by average-linkage clustering on cosine distance
(scikit-learn), so no number of themes has to be guessed; a question no other resembles stays on its own.
Themes rank by how many distinct callers asked, then by how recently. Each theme's questions are asked
again: when the store was published after its last question and half of them or more now find a likely answer,
the theme is resolved. Names: with Claude, a short name, a one-line description and the sources likely to own
it; offline, the theme's most distinctive words (TF-IDF against the other themes) and the sources its questions
come closest to.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from corpus.claude import Claude
from corpus.errors import CorpusError
from server.relevance import STRONG
from server.search import Searcher
from store.publish import current_generation, published_root
from store.questionlog import Entry, QuestionLog

THEME_DISTANCE = 0.8  # average cosine distance at which clusters stop merging (planted themes: 0.78-0.82 holds)
RESEARCHED = 5  # questions per theme asked again to see whether it is resolved
EXAMPLES = 5  # example questions shown per theme
NAME_WORDS = 3
_ASKING = frozenset("did does doing get got know need want way ok hi hello thanks".split())  # words of asking
_SINCE = re.compile(r"(\d+)\s*([hdwm])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "m": timedelta(days=30)}


@dataclass
class Theme:
    name: str
    questions: list[str]  # distinct questions, most recent first
    askers: int  # distinct callers
    asked: int  # times asked: searches and reports, a question searched and reported in one session once
    reported: int  # of them, gaps a session reported
    first_asked: datetime
    last_asked: datetime
    description: str = ""
    owners: list[str] = field(default_factory=list)  # sources (or, from Claude, teams) likely to own it
    missing: list[str] = field(default_factory=list)  # what reporting sessions said was missing
    resolved: bool = False
    answered_now: int = 0  # of the questions asked again, how many now find a likely answer
    researched: int = 0


@dataclass
class Gaps:
    since: datetime
    entries: int  # log entries in the period
    unanswered: int  # of them, searches not answered and reported gaps
    themes: list[Theme]  # two or more distinct questions each, ranked
    single: list[Theme]  # questions no other resembles, ranked the same way
    mode: str

    def as_dict(self) -> dict:
        """Plain data for --json, times in ISO 8601."""
        return {"since": self.since.isoformat(), "entries": self.entries, "unanswered": self.unanswered,
                "mode": self.mode, "themes": [_plain(t) for t in self.themes],
                "single": [_plain(t) for t in self.single]}


def _plain(theme: Theme) -> dict:
    return {**asdict(theme), "first_asked": theme.first_asked.isoformat(), "last_asked": theme.last_asked.isoformat()}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """'30d', '12h', '2w', '3m' (30 days each) back from now, or a date YYYY-MM-DD."""
    now = now or datetime.now(UTC)
    found = _SINCE.fullmatch(value.strip().lower())
    if found:
        return now - int(found.group(1)) * _UNITS[found.group(2)]
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CorpusError(f"--since {value!r}: give a period like 30d, 12h, 2w, or a date like 2026-01-31") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def unanswered(entry: Entry) -> bool:
    """A reported gap; or a search the corpus did not answer: verdict unlikely, or no strong hit and none of its
    hits read afterwards."""
    if entry.kind == "gap":
        return True
    if entry.verdict == "unlikely" or entry.top_relevance is None:
        return True
    return entry.top_relevance < STRONG and not entry.fetched


def find_gaps(searcher: Searcher, log: QuestionLog, since: datetime, claude: Claude,
              skip: Collection[str] = ()) -> Gaps:
    """The themes of the log since ``since``; ``skip``: questions not to count (a check's own, in its report)."""
    skipped = {_normal(q) for q in skip}
    entries = [e for e in log.entries(since) if _normal(e.query) not in skipped]
    open_ = [e for e in entries if unanswered(e)]
    groups = group(searcher, open_)
    themes = [_theme(members) for members in groups]
    published = _published(searcher)
    for theme in themes:
        _research(searcher, theme, published)
    themes.sort(key=lambda t: (t.resolved, -t.askers, -t.last_asked.timestamp()))
    several = [t for t in themes if len(t.questions) > 1 or t.asked > 1]
    single = [t for t in themes if t not in several]
    _name_offline(several)
    if several and claude.available:
        _name_with_claude(claude, several, [s.name for s in searcher.config.sources])
    return Gaps(since=since, entries=len(entries), unanswered=len(open_), themes=several, single=single,
                mode=claude.mode)


def group(searcher: Searcher, entries: list[Entry]) -> list[list[Entry]]:
    """Entries grouped by the meaning of their question; the same question asked twice is one point."""
    by_text: dict[str, list[Entry]] = {}
    for entry in entries:
        by_text.setdefault(_normal(entry.query), []).append(entry)
    texts = list(by_text)
    if len(texts) < 2:
        return list(by_text.values())
    from sklearn.cluster import AgglomerativeClustering

    vectors = searcher.embedder.embed([by_text[t][0].query for t in texts])
    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=THEME_DISTANCE, metric="cosine",
                                     linkage="average").fit_predict(np.asarray(vectors))
    clusters: dict[int, list[Entry]] = {}
    for text, label in zip(texts, labels, strict=True):
        clusters.setdefault(int(label), []).extend(by_text[text])
    return list(clusters.values())


def _normal(query: str) -> str:
    return " ".join(re.findall(r"\w+", query.lower()))


def _theme(members: list[Entry]) -> Theme:
    members = sorted(members, key=lambda e: e.time, reverse=True)
    questions: dict[str, str] = {}
    for entry in members:
        questions.setdefault(_normal(entry.query), entry.query)
    # a session that searched and then reported the same question asked it once
    asked = len({(e.caller, e.session or id(e), _normal(e.query)) for e in members})
    return Theme(name="", questions=list(questions.values()), askers=len({e.caller for e in members}), asked=asked,
                 reported=sum(e.kind == "gap" for e in members), first_asked=members[-1].time,
                 last_asked=members[0].time, missing=list(dict.fromkeys(e.missing for e in members if e.missing)))


def _published(searcher: Searcher) -> datetime | None:
    """When the generation searches read now was published."""
    if current_generation(searcher.config.store_path) is None:
        return None
    pointer = published_root(searcher.config.store_path) / "CURRENT"  # replaced at each publish
    return datetime.fromtimestamp(pointer.stat().st_mtime, UTC)


def _research(searcher: Searcher, theme: Theme, published: datetime | None) -> None:
    """Ask the theme's questions again (unlogged): the sources they come closest to, and whether a later ingest
    made most of them answerable."""
    if published is None:
        return
    sources: Counter[str] = Counter()
    asked = theme.questions[:RESEARCHED]
    for question in asked:
        found = searcher.find(question, limit=3)
        theme.answered_now += found.answer_in_corpus == "likely"
        sources.update(hit.source for hit in found.hits[:1])
    theme.researched = len(asked)
    theme.owners = [name for name, _ in sources.most_common(2)]
    theme.resolved = published > theme.last_asked and theme.answered_now * 2 >= theme.researched


def _name_offline(themes: list[Theme]) -> None:
    """Each theme's most distinctive words: TF-IDF of its questions taken together against the other themes'."""
    if not themes:
        return
    from sklearn.feature_extraction.text import TfidfVectorizer

    documents = [" ".join(t.questions + t.missing) for t in themes]
    vectorizer = TfidfVectorizer(tokenizer=_words, token_pattern=None, lowercase=False, sublinear_tf=True)
    try:
        weights = vectorizer.fit_transform(documents).toarray()
    except ValueError:  # nothing but stop words
        weights = np.zeros((len(themes), 0))
    words = vectorizer.get_feature_names_out() if weights.shape[1] else []
    for theme, row in zip(themes, weights, strict=True):
        top = [words[i] for i in np.argsort(-row)[:NAME_WORDS] if row[i] > 0]
        theme.name = ", ".join(top) or theme.questions[0][:60]


def _words(text: str) -> list[str]:
    """Words with plurals folded ("dogs" and "dog" count together), so a theme's name is its topic."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = [w for w in re.findall(r"[a-z][a-z0-9-]+", text.lower()) if w not in ENGLISH_STOP_WORDS | _ASKING]
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) else w for w in words]


PROMPT = """People asked an organisation's knowledge base these groups of questions and it could not answer them.
The knowledge base's sources are: {sources}.

{themes}

For each group, give a short name (2 to 5 words), a one-line description of the knowledge that is missing, and
who is likely to own writing it down: names from the sources above, or a team (e.g. "IT", "People team").
Reply with one JSON object and nothing else:
{{"themes": [{{"group": 1, "name": "...", "description": "...", "owners": ["..."]}}]}}"""


def _name_with_claude(claude: Claude, themes: list[Theme], sources: list[str]) -> None:
    """One call names every theme; a reply that does not fit leaves the offline names."""
    listed = "\n\n".join(f"Group {n}:\n" + "\n".join(f"- {q}" for q in t.questions[:8])
                         + "".join(f"\n  (reported missing: {m})" for m in t.missing[:3])
                         for n, t in enumerate(themes, start=1))
    reply = claude.ask_json(PROMPT.format(sources=", ".join(sources) or "none", themes=listed),
                            max_tokens=200 + 120 * len(themes))
    named = reply.get("themes") if reply else None
    if not isinstance(named, list):
        return
    for item in named:
        if not isinstance(item, dict):
            continue
        try:
            number = int(item.get("group"))
        except (TypeError, ValueError):
            continue
        if not 1 <= number <= len(themes):
            continue
        theme = themes[number - 1]
        name, description = str(item.get("name") or "").strip(), str(item.get("description") or "").strip()
        if name:
            theme.name = name[:80]
        theme.description = description[:300]
        owners = item.get("owners")
        if isinstance(owners, list) and owners:
            theme.owners = [str(o)[:60] for o in owners[:3]]
