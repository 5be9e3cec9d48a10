"""Do two similar passages say the same thing, contradict each other, or does one supersede the other?

Offline, a conservative rule: facts (amounts with a unit or currency, dates, and names after a role
such as "owner" or "contact") are read with the few words before them as their subject; two passages
disagree when the same subject (at least two words in common) carries different values and neither
passage mentions the other's value. Bare numbers are left alone: they are too often list or section
numbers. Dates that say when something was said are not facts: a date with a clock time (a message's
"Ann (2016-06-13 23:55):", a header's "Jun 13, 2016 at 10:02") or a date alone on its line (a transcript's
header) is a stamp, and a stamp ends the subject of what follows it. A disagreement is a superseded fact
when the newer passage says so ("now", "no longer", "as of", "replaces" …), else a contradiction.
Passages are duplicates when they share 80% of their words, or 70% with embeddings nearly alike, and
the same numbers (two messages posting different event links are not copies). With Claude, Claude
reads both passages and decides; a missing or malformed reply falls back to the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.claude import Claude
from corpus.redact import redact

DUPLICATE_SIMILARITY = 0.95
DUPLICATE_OVERLAP = 0.8  # word-set Jaccard
SIMILAR_OVERLAP = 0.7  # templated pages (employee vs supervisor resources) embed alike but list other things

_STOP = frozenset(
    "a an and are as at be by for from has have in is it its of on or our per the their this to was we were will "
    "with up than then that within after before each every all any".split())
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b(?:\d{{4}}-\d{{2}}-\d{{2}}|{_MONTH}\.? {_DAY}(?:,? \d{{4}})?|{_DAY} {_MONTH}(?: \d{{4}})?)\b", re.I)
_YEAR_DATE = rf"\b(?:\d{{4}}-\d{{2}}-\d{{2}}|{_MONTH}\.? {_DAY},? \d{{4}}|{_DAY} {_MONTH} \d{{4}})"
_WEEKDAY = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\b\.?)?"
# When something was said: a full date with a clock time ("October 11th at 6 PM" stays a fact), or a date
# alone on its line.
_STAMP = re.compile(rf"{_YEAR_DATE}(?:,?\s*(?:at\s+)?|T){_CLOCK}"
                    rf"|^[ \t#>\[(]*(?:{_WEEKDAY})?{_DATE.pattern}[ \t,.:)\]]*$", re.I | re.M)
_UNITS = r"%|percent|days?|weeks?|months?|years?|hours?|minutes?|usd|eur|gbp|dollars?|euros?|gb|mb|tb"
_PLURAL_UNITS = frozenset("days weeks months years hours minutes dollars euros".split())
_AMOUNT = re.compile(rf"(?<![\w.])(?:[$€£]\d[\d,]*(?:\.\d+)?|\d[\d,]*(?:\.\d+)?\s?(?:{_UNITS})(?![\w]))", re.I)
_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")
_ROLE = frozenset("owner owned owns contact lead leads manager managed approver approves approved responsible "
                  "maintainer maintained run runs head ask contact".split())
_WORD = re.compile(r"[a-z][a-z'-]*")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9'-]*")
_CUE = re.compile(r"\b(no longer|now|as of|effective|supersed\w*|replac\w*|updated|changed|previously|instead of|"
                  r"from now on|starting|revised|new policy)\b", re.I)


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    doc_id: str
    title: str
    text: str
    citation: str
    updated: float | None  # epoch seconds of its document, when known
    date: str | None


@dataclass(frozen=True)
class Verdict:
    relation: str  # duplicate | conflict | superseded | none
    detail: str
    newer: Passage | None = None  # for superseded: the passage that supersedes
    judged_by: str = "offline"


NONE = Verdict("none", "")


@dataclass(frozen=True)
class _Fact:
    kind: str
    value: str  # normalised, for comparing
    subject: tuple[str, ...]  # the content words just before it, in order
    shown: str  # as written, for the report


def facts(text: str) -> list[_Fact]:
    """Numbers, dates and names with the words just before them as what they are about."""
    taken: list[tuple[int, int, str, str]] = []
    for kind, pattern in (("stamp", _STAMP), ("date", _DATE), ("amount", _AMOUNT), ("name", _NAME)):
        # stamps win over their dates, dates over their digits
        for match in pattern.finditer(text):
            start, end = match.span()
            if not any(s < end and start < e for s, e, _, _ in taken):
                taken.append((start, end, kind, match.group(0)))
    found: list[_Fact] = []
    previous_end = 0
    for start, end, kind, value in sorted(taken):
        window = text[max(previous_end, start - 60):start].lower()  # never the words of the fact before
        previous_end = end
        if kind == "stamp":
            continue
        before = [w for w in _WORD.findall(window) if w not in _STOP]
        if kind == "name" and not _ROLE & set(before[-3:]):
            continue  # a capitalised phrase is a person only where a role names it
        if before:
            found.append(_Fact(kind, _normal(value), tuple(before[-3:]), " ".join(value.split())))
    return found


def _normal(value: str) -> str:
    """'12 Weeks', '12 week' and '12weeks' are one value; '3,000' is '3000'."""
    value = re.sub(r"(\d)\s*([a-z%])", r"\1 \2", value.lower().replace(",", ""))
    return " ".join(word[:-1] if word in _PLURAL_UNITS else word for word in value.split())


def disagreements(a: str, b: str) -> list[str]:
    """Subjects on which the two texts give different values, each as 'x vs y (about …)'."""
    fa, fb = facts(a), facts(b)
    values_a, values_b = {f.value for f in fa}, {f.value for f in fb}
    found = []
    for x in fa:
        for y in fb:
            if x.kind != y.kind or x.value == y.value or x.value in values_b or y.value in values_a:
                continue
            shared = [word for word in x.subject if word in y.subject]
            if len(shared) >= 2:
                line = f"{x.shown} vs {y.shown} (about “{' '.join(shared)}”)"
                if line not in found:
                    found.append(line)
    return found


def judge_offline(a: Passage, b: Passage, similarity: float) -> Verdict:
    differing = disagreements(a.text, b.text)
    if differing:
        newer, older = _order(a, b)
        if newer is not None and _CUE.search(newer.text):
            return Verdict("superseded", "; ".join(differing), newer=newer)
        return Verdict("conflict", "; ".join(differing))
    words_a, words_b = _tokens(a.text), _tokens(b.text)
    overlap = len(words_a & words_b) / max(len(words_a | words_b), 1)
    if _numbers(words_a) != _numbers(words_b):  # another id, amount or version: not a copy, however alike
        return NONE
    if overlap >= DUPLICATE_OVERLAP or (similarity >= DUPLICATE_SIMILARITY and overlap >= SIMILAR_OVERLAP):
        return Verdict("duplicate", f"near-identical text ({similarity:.2f} similar, {overlap:.0%} shared words)")
    return NONE


def _tokens(text: str) -> set[str]:
    """Words and numbers, without when it was said: two messages differing in an id are not copies, a repost is."""
    return set(_TOKEN.findall(_STAMP.sub(" ", text).lower()))


def _numbers(tokens: set[str]) -> set[str]:
    return {t for t in tokens if any(c.isdigit() for c in t)}


def _order(a: Passage, b: Passage) -> tuple[Passage | None, Passage | None]:
    """(newer, older) by document date; undated passages are ordered by which one announces a change."""
    if a.updated is not None and b.updated is not None and a.updated != b.updated:
        return (a, b) if a.updated > b.updated else (b, a)
    cue_a, cue_b = bool(_CUE.search(a.text)), bool(_CUE.search(b.text))
    if cue_a != cue_b:
        return (a, b) if cue_a else (b, a)
    return None, None


PROMPT = """Two passages from an organisation's knowledge base are similar. Decide how they relate.

Passage A, from "{a.title}" ({a_date}):
<passage_a>
{a.text}
</passage_a>

Passage B, from "{b.title}" ({b_date}):
<passage_b>
{b.text}
</passage_b>

Reply with one JSON object and nothing else:
{{"relation": "duplicate" | "conflict" | "superseded" | "none", "newer": "A" | "B" | null, "detail": "..."}}
- duplicate: they say the same thing.
- conflict: they state different values (number, date, name, rule) for the same thing and neither replaces the other.
- superseded: one replaces the other (a newer rule or fact); set "newer" to the passage that is current.
- none: they are about different things or agree.
A date that says when something was written or said is not a fact: a message's or meeting's timestamp
("Ann (2016-06-13 23:55): …"), a header such as "Jun 13, 2016 at 10:02", a date in a title, and the dates in
parentheses above. Passages that differ only in such dates are "none"; two messages sent on different days
do not conflict.
"detail" names the differing facts in a few words, quoting both passages."""


def judge_with_claude(claude: Claude, a: Passage, b: Passage, similarity: float) -> Verdict:
    reply = claude.ask_json(PROMPT.format(a=a, b=b, a_date=a.date or "undated", b_date=b.date or "undated"),
                            max_tokens=300)
    relation = reply.get("relation") if reply else None
    if relation not in ("duplicate", "conflict", "superseded", "none"):
        return judge_offline(a, b, similarity)
    if relation == "none":
        return NONE
    newer = {"A": a, "B": b}.get(str(reply.get("newer") or "").upper())
    if relation == "superseded" and newer is None:
        relation = "conflict"  # superseded without saying by which: treat as a conflict, not a guess
    # The detail is stored and shown: a secret Claude quotes (or invents) is masked like any stored text.
    return Verdict(relation, redact(str(reply.get("detail") or ""))[:300],
                   newer=newer if relation == "superseded" else None, judged_by="claude")
