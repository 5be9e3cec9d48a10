"""`corpus check`: does the corpus answer what a new hire asks?

Each question is searched as `corpus search` would; the top passages are the evidence. With Claude,
Claude reads them and answers with quotes that must be found word for word in a passage, or says
the corpus does not say; an answer without such quotes is not trusted. Offline, a transparent
rule reads the retrieval signals: how similar the best passage is to the question, how many of the
question's terms it holds, whether dense and keyword search agree on it, and, when the question
file gives them, the expected answer's words and the expected source. Offline verdicts say they
are retrieval evidence, not a reading of the text.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from corpus.claude import Claude
from server.questions import Question
from server.search import Hit, Searcher
from store import keyword
from store.filters import Filters

DEPTH = 5
ANSWERED_SIMILARITY = 0.55
PARTLY_SIMILARITY = 0.40
VERDICTS = ("answered", "partly", "missing")

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]+")
_STOP = keyword.STOPWORDS | frozenset("get am new hire need know any there's i'm".split())


@dataclass(frozen=True)
class Evidence:
    id: str
    doc_id: str
    title: str
    source: str
    citation: str
    citation_label: str
    text: str
    similarity: float  # cosine of the question and the passage (title + text)
    found_by: str  # "dense and keyword", "dense", "keyword": which retrievers have its document in their top 10


@dataclass(frozen=True)
class Quote:
    text: str
    citation: str
    citation_label: str


@dataclass
class Outcome:
    question: Question
    verdict: str
    judged_by: str
    reasons: list[str]
    evidence: list[Evidence]
    brief: str = ""  # the deciding signals in a few words, for a terminal table
    answer: str | None = None
    quotes: list[Quote] = field(default_factory=list)


@dataclass
class CheckResult:
    mode: str
    outcomes: list[Outcome]

    def coverage(self, outcomes: list[Outcome] | None = None) -> float:
        """Answered counts 1, partly 0.5, missing 0."""
        outcomes = self.outcomes if outcomes is None else outcomes
        if not outcomes:
            return 0.0
        return sum({"answered": 1.0, "partly": 0.5}.get(o.verdict, 0.0) for o in outcomes) / len(outcomes)

    def count(self, verdict: str) -> int:
        return sum(1 for o in self.outcomes if o.verdict == verdict)

    def sections(self) -> list[tuple[str, list[Outcome]]]:
        order: dict[str, list[Outcome]] = {}
        for outcome in self.outcomes:
            order.setdefault(outcome.question.section or "(no section)", []).append(outcome)
        return list(order.items())

    def as_dict(self) -> dict:
        return {"mode": self.mode, "coverage": round(self.coverage(), 4),
                "answered": self.count("answered"), "partly": self.count("partly"), "missing": self.count("missing"),
                "questions": [asdict(o) for o in self.outcomes]}


def check(searcher: Searcher, questions: list[Question], claude: Claude, depth: int = DEPTH,
          filters: Filters | None = None) -> CheckResult:
    """``filters`` carries an HTTP caller's access groups: a check sees only what its caller may read."""
    filters = filters or Filters()
    gathered = [(q, gather(searcher, q, depth, filters)) for q in questions]
    outcomes = claude.map(lambda pair: judge(claude, *pair), gathered)
    mode = claude.mode if claude.available or claude.usage.calls else \
        f"{claude.mode}: retrieval evidence only; read the cited passages to confirm"
    return CheckResult(mode=mode, outcomes=outcomes)


def gather(searcher: Searcher, question: Question, depth: int = DEPTH,
           filters: Filters | None = None) -> list[Evidence]:
    """The top passages for a question, each with the signals the offline rule reads."""
    filters = filters or Filters()
    hits = searcher.search(question.text, limit=depth, filters=filters)
    if not hits:
        return []
    dense = {h.doc_id for h in searcher.search(question.text, limit=10, filters=filters, mode="dense")}
    keyword = {h.doc_id for h in searcher.search(question.text, limit=10, filters=filters, mode="keyword")}
    vectors = searcher.embedder.embed([question.text, *(f"{h.title}\n{h.text}" for h in hits)])
    similarities = vectors[1:] @ vectors[0]
    return [_evidence(h, float(s), dense, keyword) for h, s in zip(hits, similarities, strict=True)]


def _evidence(hit: Hit, similarity: float, dense: set[str], keyword: set[str]) -> Evidence:
    found_by = " and ".join(name for name, ids in (("dense", dense), ("keyword", keyword)) if hit.doc_id in ids)
    return Evidence(id=hit.id, doc_id=hit.doc_id, title=hit.title, source=hit.source, citation=hit.citation,
                    citation_label=hit.citation_label, text=hit.text, similarity=round(similarity, 3),
                    found_by=found_by or "fusion only")


def judge(claude: Claude, question: Question, evidence: list[Evidence]) -> Outcome:
    if claude.available and evidence:
        outcome = judge_with_claude(claude, question, evidence)
        if outcome is not None:
            return outcome
    return judge_offline(question, evidence)


def judge_offline(question: Question, evidence: list[Evidence], note: str | None = None) -> Outcome:
    reasons = [note] if note else []
    if not evidence:
        return Outcome(question, "missing", "offline", [*reasons, "search found nothing"], evidence, brief="no hits")
    best = max(evidence, key=lambda e: e.similarity)
    asked = _terms(question.text)
    held = asked & _terms(f"{best.title} {best.text}")
    agree = best.found_by == "dense and keyword"
    reasons += [f"best passage “{best.title}” is {best.similarity:.2f} similar to the question",
                f"{len(held)}/{len(asked)} question terms in it",
                "dense and keyword search agree on it" if agree else f"found by {best.found_by} only"]
    term_share = len(held) / len(asked) if asked else 0.0
    brief = f"{best.similarity:.2f} similar · {len(held)}/{len(asked)} terms · {best.found_by}"
    if question.answer:
        expected = _terms(question.answer)
        share, where = max(((len(expected & _terms(e.text)) / max(len(expected), 1), e) for e in evidence),
                           key=lambda pair: pair[0])
        reasons.append(f"{share:.0%} of the expected answer's words in “{where.title}”")
        brief += f" · {share:.0%} of answer"
        verdict = "answered" if share >= 0.8 else "partly" if share >= 0.4 else "missing"
    elif best.similarity >= ANSWERED_SIMILARITY and agree and term_share >= 0.5:
        verdict = "answered"
    elif best.similarity >= PARTLY_SIMILARITY and (agree or term_share >= 0.5):
        verdict = "partly"
    else:
        verdict = "missing"
    if question.source and not any(e.source == question.source for e in evidence) and verdict != "missing":
        verdict = "partly" if verdict == "answered" else "missing"
        reasons.append(f"expected source {question.source!r} is not among the top passages")
        brief += f" · not from {question.source}"
    return Outcome(question, verdict, "offline", reasons, evidence, brief=brief)


PROMPT = """A new employee asks: "{question}"
{expected}
Passages retrieved from the organisation's knowledge base:
{passages}

Using only these passages, decide whether they answer the question. Reply with one JSON object and nothing else:
{{"verdict": "answered" | "partly" | "missing", "answer": "the answer in one or two sentences, or null",
  "quotes": [{{"passage": 1, "text": "words copied exactly from that passage"}}]}}
Every statement in the answer must be backed by a quote copied word for word. If the passages do not say,
the verdict is "missing", the answer is null and there are no quotes. Never add knowledge of your own."""


def judge_with_claude(claude: Claude, question: Question, evidence: list[Evidence]) -> Outcome | None:
    passages = "\n".join(f'[{n}] "{e.title}" ({e.citation_label})\n<passage>\n{e.text}\n</passage>'
                         for n, e in enumerate(evidence, start=1))
    expected = f'The answer is expected to say: "{question.answer}"\n' if question.answer else ""
    reply = claude.ask_json(PROMPT.format(question=question.text, expected=expected, passages=passages),
                            max_tokens=500)
    if reply is None or reply.get("verdict") not in VERDICTS:
        return None
    quotes = [q for q in (_quote(item, evidence) for item in reply.get("quotes") or []) if q is not None]
    verdict = reply["verdict"]
    if verdict != "missing" and not quotes:
        return judge_offline(question, evidence, note="Claude's quotes were not found in the passages; offline rule")
    answer = str(reply.get("answer") or "").strip() or None
    reasons = [f"{len(quotes)} quote(s) found verbatim in the passages"] if quotes else ["the passages do not say"]
    return Outcome(question, verdict, "claude", reasons, evidence, answer=answer if verdict != "missing" else None,
                   quotes=quotes, brief=f"Claude: {len(quotes)} verbatim quote(s)")


def _quote(item: object, evidence: list[Evidence]) -> Quote | None:
    """A quote Claude gave, kept only if its words really are in the passage it names."""
    if not isinstance(item, dict):
        return None
    try:
        passage = evidence[int(item.get("passage")) - 1]
    except (TypeError, ValueError, IndexError):
        return None
    text = " ".join(str(item.get("text") or "").split())
    if len(text) < 3 or text.lower() not in " ".join(passage.text.split()).lower():
        return None
    return Quote(text, passage.citation, passage.citation_label)


def _terms(text: str) -> set[str]:
    """Content words, cut to five letters so 'reimbursed' meets 'reimbursement'."""
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP}
