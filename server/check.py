"""`corpus check`: does the corpus answer what a new hire asks?

Each question is searched as `corpus search` would; the passages of the first hits (each hit's further
passages of its document too) are the evidence. With Claude, Claude reads them and answers with quotes that
must be found word for word in a passage, or says the corpus does not say; an answer without such quotes is
not trusted. Offline, a transparent rule reads the signals search measured on each passage (server.relevance:
how close in meaning the passage is to the question and how much of the question's words it holds, as one
relevance) and, when the question file gives them, the expected answer's words and the expected source.
Offline verdicts say they are retrieval evidence, not a reading of the text. Every outcome lists first the
passage its verdict rests on (the one quoted, or the one the rule read) and says its signals in words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from corpus.claude import Claude
from corpus.errors import CorpusError
from server import relevance
from server.asked import Asker
from server.hits import Hit, Passage
from server.questions import Question
from server.search import Searcher
from store import keyword
from store.filters import Filters

DEPTH = 5  # hits read per question, each with its further passages
# the passage text a calling session's check (the MCP tool, the web page) gives each question, most relevant
# passages first, so that twenty questions stay about the size they were with three hits' own passages (a reply's
# text 13-15k tokens, its JSON 18-21k). On the 84 answerable development questions it holds the expected answer
# for 66; the first three hits' own passages held it for 57
SESSION_ROOM = 2000
CLOSE = 0.55  # cosine similarities said in words: "close in meaning" at or above, "somewhat close" above SOMEWHAT
SOMEWHAT = 0.40
VERDICTS = ("answered", "partly", "missing")
OFFLINE = {"likely": "answered", "possible": "partly", "unlikely": "missing"}  # from search's answer_in_corpus

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
    similarity: float  # cosine of the question and the passage (server.relevance, as search measured it)
    found_by: str  # "dense and keyword", "dense", "keyword": which retrievers have its document in their top 10
    rank: int  # its hit's place in the search results, from 1 (a hit's further passages share its rank)
    coverage: float = 0.0  # IDF-weighted share of the question's words in the passage (server.relevance)
    relevance: float = 0.0  # the passage's relevance: the estimated chance that it holds the answer


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
    evidence: list[Evidence]  # the passage the verdict rests on first, then the others in search order
    brief: str = ""  # the deciding signals in a few words, for a terminal table
    rests_on: str | None = None  # id of the passage the verdict rests on; None when nothing was found or quoted
    answer: str | None = None
    quotes: list[Quote] = field(default_factory=list)


@dataclass
class CheckResult:
    mode: str
    outcomes: list[Outcome]
    sources: tuple[str, ...] = ()  # the sources checked against; empty: all

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
        return {"mode": self.mode, "sources": list(self.sources), "coverage": round(self.coverage(), 4),
                "answered": self.count("answered"), "partly": self.count("partly"), "missing": self.count("missing"),
                "questions": [asdict(o) for o in self.outcomes]}


def check(searcher: Searcher, questions: list[Question], claude: Claude, depth: int = DEPTH,
          filters: Filters | None = None, asker: Asker | None = None, room: int | None = None) -> CheckResult:
    """``filters`` carries an HTTP caller's access groups: a check sees only what its caller may read; each
    question is logged as asked by ``asker``; ``room``: the characters of passage text each question keeps."""
    filters = filters or Filters()
    gathered = [(q, *gather(searcher, q, depth, filters, asker, room)) for q in questions]
    outcomes = claude.map(lambda found: judge(claude, *found), gathered)
    mode = claude.mode if claude.available or claude.usage.calls else \
        f"{claude.mode}: retrieval evidence only; read the cited passages to confirm"
    return CheckResult(mode=mode, outcomes=outcomes, sources=tuple(filters.sources))


def only_sources(chosen: Sequence[str], known: Sequence[str]) -> Filters:
    """Filters for checking against chosen sources; a misspelt name is an error, never an empty check."""
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise CorpusError(f"unknown source {unknown[0]!r}; the sources are: {', '.join(known)}")
    return Filters(sources=tuple(dict.fromkeys(chosen)))


def gather(searcher: Searcher, question: Question, depth: int = DEPTH, filters: Filters | None = None,
           asker: Asker | None = None, room: int | None = None
           ) -> tuple[list[Evidence], relevance.Verdict, list[str]]:
    """The passages of the first ``depth`` hits, each hit's further passages after its own (the answer is often
    one of those), each with its own signals; search's verdict on them, and the names the question asks about
    that none of them holds. With ``room``, only the most relevant passages whose text fits in it (the most
    relevant always), still in search order."""
    filters = filters or Filters()
    found = searcher.find(question.text, limit=max(depth, relevance.VERDICT_DEPTH), filters=filters, asker=asker)
    hits = found.hits[:depth]  # the verdict reads as many hits as at search, whatever the depth
    if not hits:
        return [], found.answer_in_corpus, found.unmatched_names
    dense = {h.doc_id for h in searcher.search(question.text, limit=10, filters=filters, mode="dense")}
    keyword = {h.doc_id for h in searcher.search(question.text, limit=10, filters=filters, mode="keyword")}
    evidence = [_evidence(hit, passage, found.passages[passage.id], dense, keyword, rank)
                for rank, hit in enumerate(hits, start=1) for passage in (hit, *hit.more)]
    return (evidence if room is None else _within(evidence, room)), found.answer_in_corpus, found.unmatched_names


def _within(evidence: list[Evidence], room: int) -> list[Evidence]:
    """The most relevant passages whose text fits in ``room`` characters (the most relevant whatever its size),
    in their order in ``evidence``."""
    kept: set[str] = set()
    for e in sorted(evidence, key=lambda e: -e.relevance):
        if not kept or len(e.text) <= room:
            kept.add(e.id)
            room -= len(e.text)
    return [e for e in evidence if e.id in kept]


def _evidence(hit: Hit, passage: Hit | Passage, signals: relevance.Signals, dense: set[str], keyword: set[str],
              rank: int) -> Evidence:
    found_by = " and ".join(name for name, ids in (("dense", dense), ("keyword", keyword)) if hit.doc_id in ids)
    return Evidence(id=passage.id, doc_id=hit.doc_id, title=hit.title, source=hit.source, citation=passage.citation,
                    citation_label=passage.citation_label, text=passage.text, similarity=signals.similarity,
                    found_by=found_by or "fusion only", rank=rank, coverage=signals.coverage,
                    relevance=signals.relevance)


def closeness(similarity: float) -> str:
    """A cosine similarity as a reader understands it."""
    if similarity >= CLOSE:
        return "close in meaning"
    return "somewhat close in meaning" if similarity >= SOMEWHAT else "not close in meaning"


FOUND_BY = {"dense and keyword": "found by both meaning and keyword search", "dense": "found by meaning search only",
            "keyword": "found by keyword search only", "fusion only": "in neither search's own top 10"}


def _basis_first(evidence: list[Evidence], basis: Evidence) -> list[Evidence]:
    return [basis, *(e for e in evidence if e is not basis)]


def judge(claude: Claude, question: Question, evidence: list[Evidence], answer_in_corpus: relevance.Verdict,
          unmatched: Sequence[str] = ()) -> Outcome:
    """``unmatched``: the names the question asks about that none of the first hits holds."""
    if claude.available and evidence:
        outcome = judge_with_claude(claude, question, evidence, answer_in_corpus, unmatched)
        if outcome is not None:
            return outcome
    return judge_offline(question, evidence, answer_in_corpus, unmatched=unmatched)


def judge_offline(question: Question, evidence: list[Evidence], answer_in_corpus: relevance.Verdict,
                  note: str | None = None, unmatched: Sequence[str] = ()) -> Outcome:
    """Without an expected answer, the verdict is search's (likely: answered, possible: partly, unlikely: missing),
    resting on the most relevant passage."""
    reasons = [note] if note else []
    if not evidence:
        return Outcome(question, "missing", "offline", [*reasons, "search found nothing"], evidence,
                       brief="nothing found")
    share, basis = 0.0, max(evidence, key=lambda e: e.relevance)
    if question.answer:  # the verdict then rests on the passage holding most of the expected answer
        expected = _terms(question.answer)
        share, basis = max(((len(expected & _terms(e.text)) / max(len(expected), 1), e) for e in evidence),
                           key=lambda pair: pair[0])
    close = closeness(basis.similarity)
    reasons += [f"rests on “{basis.title}” (search rank {basis.rank}), relevance {basis.relevance:.2f}: {close} "
                f"to the question (similarity {basis.similarity:.2f})",
                f"it holds {basis.coverage:.0%} of the question's key terms (rare words weigh most)",
                FOUND_BY[basis.found_by]]
    brief = f"relevance {basis.relevance:.2f}; {close}; {basis.coverage:.0%} of key terms; {FOUND_BY[basis.found_by]}"
    if question.answer:
        reasons.append(f"{share:.0%} of the expected answer's words in it")
        brief += f"; {share:.0%} of the expected answer's words"
        verdict = "answered" if share >= 0.8 else "partly" if share >= 0.4 else "missing"
    else:
        verdict = OFFLINE[answer_in_corpus]
        reasons.append(f"search calls an answer in the corpus {answer_in_corpus}"
                       + (f": no first hit names {', '.join(unmatched)}" if unmatched else ""))
    if question.source and not any(e.source == question.source for e in evidence) and verdict != "missing":
        verdict = "partly" if verdict == "answered" else "missing"
        reasons.append(f"expected source {question.source!r} is not among the top passages")
        brief += f"; not from {question.source}"
    return Outcome(question, verdict, "offline", reasons, _basis_first(evidence, basis), brief=brief,
                   rests_on=basis.id)


PROMPT = """A new employee asks: "{question}"
{expected}
Passages retrieved from the organisation's knowledge base:
{passages}

Using only these passages, decide whether they answer the question. Reply with one JSON object and nothing else:
{{"verdict": "answered" | "partly" | "missing", "answer": "the answer in one or two sentences, or null",
  "quotes": [{{"passage": 1, "text": "words copied exactly from that passage"}}]}}
Every statement in the answer must be backed by a quote copied word for word. If the passages do not say,
the verdict is "missing", the answer is null and there are no quotes. Never add knowledge of your own."""


def judge_with_claude(claude: Claude, question: Question, evidence: list[Evidence],
                      answer_in_corpus: relevance.Verdict, unmatched: Sequence[str] = ()) -> Outcome | None:
    passages = "\n".join(f'[{n}] "{e.title}" ({e.citation_label})\n<passage>\n{e.text}\n</passage>'
                         for n, e in enumerate(evidence, start=1))
    expected = f'The answer is expected to say: "{question.answer}"\n' if question.answer else ""
    reply = claude.ask_json(PROMPT.format(question=question.text, expected=expected, passages=passages),
                            max_tokens=500)
    if reply is None or reply.get("verdict") not in VERDICTS:
        return None
    quoted = [pair for pair in (_quote(item, evidence) for item in reply.get("quotes") or []) if pair is not None]
    verdict = reply["verdict"]
    if verdict != "missing" and not quoted:
        return judge_offline(question, evidence, answer_in_corpus,
                             note="Claude's quotes were not found in the passages; offline rule", unmatched=unmatched)
    if not quoted:
        return Outcome(question, verdict, "claude", ["the passages do not say"], evidence,
                       brief="Claude: the passages do not say")
    quotes, basis = [quote for quote, _ in quoted], quoted[0][1]
    answer = str(reply.get("answer") or "").strip() or None
    reasons = [f"rests on “{basis.title}” (search rank {basis.rank}), which it quotes",
               f"{len(quotes)} quote(s) found word for word in the passages"]
    return Outcome(question, verdict, "claude", reasons, _basis_first(evidence, basis),
                   answer=answer if verdict != "missing" else None, quotes=quotes,
                   brief=f"Claude: {len(quotes)} quote(s) found word for word", rests_on=basis.id)


def _quote(item: object, evidence: list[Evidence]) -> tuple[Quote, Evidence] | None:
    """A quote Claude gave, with its passage, kept only if its words really are in the passage it names."""
    if not isinstance(item, dict):
        return None
    try:
        number = int(item.get("passage"))
    except (TypeError, ValueError):
        return None
    if not 1 <= number <= len(evidence):  # passage 0 must not wrap round to the last one
        return None
    passage = evidence[number - 1]
    text = " ".join(str(item.get("text") or "").split())
    if len(text) < 3 or text.lower() not in " ".join(passage.text.split()).lower():
        return None
    return Quote(text, passage.citation, passage.citation_label), passage


def _terms(text: str) -> set[str]:
    """Content words, cut to five letters so 'reimbursed' meets 'reimbursement'."""
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP}
