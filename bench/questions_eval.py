"""Development-set retrieval quality: is the passage that answers a newcomer's question among what `search` returns?

The questions in bench/questions/ (see its README) were written from the three real sources in ../shared/data,
each with a verbatim answer span. This ingests those sources with `corpus ingest` on a corpus.toml it writes, then
asks every question through the MCP ``search`` tool (`corpus serve` over stdio, the real ``mcp`` client) at
limit 5 and at limit 10. A question is answered at k when its span (case and whitespace normalised) is inside the
text of one of the first k hits; top-1 means the first hit holds it (top-1 and top-5 come from the limit-5 call,
top-10 from the limit-10 call). Out-of-corpus questions have no span: the limit-5 result's verdict
(``answer_in_corpus``: likely, possible, unlikely) is counted for them beside the answerable ones, per split (the
target: at least 80% of out-of-corpus questions unlikely, at most 10% of answerable ones), with the two
signals it reads (the closest hit's similarity, the share of the query's words the hits hold). The size of each
limit-5 result is given in tokens (characters / 4) of the text block the model reads and of the structured JSON.
Dev misses are listed; holdout misses are not, so nobody tunes to them.

    python bench/questions_eval.py [--split dev|holdout|all] [--keep DIR] [--limit N] [--signals FILE] [--enrich]

``--keep DIR`` builds the store in DIR, or reuses the one already published there. ``--enrich`` builds it with
Claude's contextual sentences and likely questions (``[claude]``; needs $ANTHROPIC_API_KEY). ``--limit N`` asks only the
first N questions of each kind, for a quick look. ``--signals FILE`` writes each dev question's limit-10 hits
with their relevance signals and whether they hold the answer span, as JSON lines: what
bench/relevance_fit.py fits server/relevance.py's coefficients on (dev only: holdout is never written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.mcp_store import Search, enrichment, ensure_store, hit_text, mcp_search  # noqa: E402
from bench.sessions import sources_missing  # noqa: E402
from server.questions import Question, load_questions  # noqa: E402

DATA = REPO.parent / "shared" / "data"
QUESTIONS = REPO / "bench" / "questions"
SPLITS = ("dev", "holdout")
OUT = "out of corpus"  # the kind of questions the sources do not answer
SOURCES = {  # name: (kind, folder in ../shared/data, options as the README shows them)
    "handbook": ("docs", "docs/18f-handbook", 'url = "https://handbook.tts.gsa.gov/{path_noext}/"\n'),
    "calls": ("meetings", "transcripts/powershell-community-call", ""),
    "datavis": ("slack", "slack/houstondatavis", 'workspace_url = "https://houstondatavis.slack.com"\n'),
}
KINDS = ("docs", "meetings", "slack")
VERDICTS = ("likely", "possible", "unlikely")


@dataclass(frozen=True)
class Case:
    question: Question
    split: str

    @property
    def kind(self) -> str:
        return SOURCES[self.question.source][0] if self.question.answer else OUT


@dataclass(frozen=True)
class Outcome:
    case: Case
    rank5: int | None  # 1-based rank of the first hit holding the span, in the limit-5 result
    rank10: int | None
    verdict: str  # the limit-5 result's answer_in_corpus
    closest: float  # what it reads: closest_similarity
    held: float  # and words_held
    unmatched: list[str]  # and the names it asks about that none of those hits holds
    signals: list[dict]  # per limit-10 hit: similarity, coverage, relevance, whether it holds the span
    tokens_text: int  # the limit-5 result's text block, characters / 4
    tokens_json: int  # its structured content as JSON, characters / 4
    first_hit: str


def config_text() -> str:
    sources = "".join(f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\npath = {json.dumps(str(DATA / where))}\n'
                      f"{extra}" for name, (kind, where, extra) in SOURCES.items())
    return f'[corpus]\npath = "store"\n{sources}'


def load_cases(split: str) -> list[Case]:
    cases = []
    for name in SPLITS if split == "all" else (split,):
        path = QUESTIONS / f"{name}.toml"
        if tomllib.loads(path.read_text()).get("split") != name:
            raise SystemExit(f"{path}: expected split = {name!r} at the top")
        cases += [Case(q, name) for q in load_questions(path)]
    return cases


def normalised(text: str) -> str:
    return " ".join(text.split()).lower()


def rank(span: str | None, hits: list[dict]) -> int | None:
    if not span:
        return None
    wanted = normalised(span)
    return next((n for n, hit in enumerate(hits, start=1) if wanted in normalised(hit_text(hit))), None)


async def ask_all(search: Search, cases: list[Case]) -> list[Outcome]:
    outcomes = []
    for n, case in enumerate(cases, start=1):
        five = await search(case.question.text, 5)
        ten = await search(case.question.text, 10)
        hits = five["hits"]
        structured = {key: value for key, value in five.items() if key != "text"}
        wanted = normalised(case.question.answer or "\0")
        signals = [{"similarity": h["similarity"], "coverage": h["coverage"], "relevance": h["relevance"],
                    "holds": wanted in normalised(hit_text(h))} for h in ten["hits"]]
        outcomes.append(Outcome(case, rank(case.question.answer, hits), rank(case.question.answer, ten["hits"]),
                                five["answer_in_corpus"], five["closest_similarity"], five["words_held"],
                                five["unmatched_names"], signals,
                                len(five["text"]) // 4, len(json.dumps(structured)) // 4,
                                hits[0]["citation_label"] if hits else "(no hits)"))
        if n % 10 == 0:
            print(f"  {n}/{len(cases)} asked", file=sys.stderr, flush=True)
    return outcomes


def share(outcomes: list[Outcome], hit) -> str:
    return f"{sum(1 for o in outcomes if hit(o)) / len(outcomes):>7.0%}" if outcomes else f"{'-':>7}"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"min {ordered[0]:.2f}  median {statistics.median(ordered):.2f}  max {ordered[-1]:.2f}"


def table(outcomes: list[Outcome], splits: list[str]) -> list[str]:
    lines = [f"{'split':<9}{'kind':<15}{'n':>4}{'top-1':>7}{'top-5':>7}{'top-10':>7}"]
    for split in splits:
        chosen = [o for o in outcomes if split == "all" or o.case.split == split]
        answerable = [o for o in chosen if o.case.kind != OUT]
        for kind, group in [*((k, [o for o in answerable if o.case.kind == k]) for k in KINDS), ("all", answerable)]:
            lines.append(f"{split:<9}{kind:<15}{len(group):>4}{share(group, lambda o: o.rank5 == 1)}"
                         f"{share(group, lambda o: o.rank5 is not None)}{share(group, lambda o: o.rank10 is not None)}")
    return lines


def verdicts(outcomes: list[Outcome], splits: list[str]) -> list[str]:
    """The limit-5 verdict's confusion per split: out-of-corpus questions beside answerable ones."""
    lines = [f"{'split':<9}{'questions':<15}{'n':>4}{'likely':>9}{'possible':>9}{'unlikely':>9}{'of which top 5':>16}"
             "   closest similarity; words held"]
    for split in splits:
        chosen = [o for o in outcomes if split == "all" or o.case.split == split]
        for name, group in (("out of corpus", [o for o in chosen if o.case.kind == OUT]),
                            ("answerable", [o for o in chosen if o.case.kind != OUT])):
            counts = "".join(f"{sum(1 for o in group if o.verdict == v):>9}" for v in VERDICTS)
            returned = sum(1 for o in group if o.verdict == "unlikely" and o.rank5 is not None)  # the span was there
            lines.append(f"{split:<9}{name:<15}{len(group):>4}{counts}{returned if name != OUT else '-':>16}   "
                         f"{spread([o.closest for o in group])}; {spread([o.held for o in group])}")
    return lines


def sizes(outcomes: list[Outcome]) -> list[str]:
    text = [o.tokens_text for o in outcomes]
    structured = [o.tokens_json for o in outcomes]
    return [f"  text block       max {max(text):>6,}  median {statistics.median(text):>8,.0f}",
            f"  structured JSON  max {max(structured):>6,}  median {statistics.median(structured):>8,.0f}"]


def misses(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        if o.case.split == "dev" and o.case.kind != OUT and o.rank5 != 1:
            where = f"rank {o.rank10}" if o.rank10 else "not in top 10"
            lines.append(f"  [{o.case.kind}] {o.case.question.text}  ({o.case.question.section}: {where}; "
                         f"first hit {o.first_hit})")
    return lines


def limited(cases: list[Case], limit: int | None) -> list[Case]:
    if limit is None:
        return cases
    kept, seen = [], {}
    for case in cases:
        seen[case.kind] = seen.get(case.kind, 0) + 1
        if seen[case.kind] <= limit:
            kept.append(case)
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    parser.add_argument("--keep", type=Path, help="build the store in (or reuse it from) this folder")
    parser.add_argument("--enrich", action="store_true",
                        help="ingest with [claude] contextualize and likely_questions (needs $ANTHROPIC_API_KEY)")
    parser.add_argument("--limit", type=int, help="ask only the first N questions of each kind")
    parser.add_argument("--signals", type=Path, help="write the dev questions' hit signals here (JSON lines)")
    args = parser.parse_args()
    if sources_missing(SOURCES):
        return 2
    cases = limited(load_cases(args.split), args.limit)
    folder = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="corpus-questions-"))
    try:
        config, built = ensure_store(folder, config_text() + enrichment(args.enrich))

        async def run() -> list[Outcome]:
            async with mcp_search(config) as search:
                return await ask_all(search, cases)

        outcomes = asyncio.run(run())
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    splits = [*SPLITS, "all"] if args.split == "all" else [args.split]
    print(f"\n{len(cases)} questions through MCP search (store {built}; answered at k = the span is in one of "
          f"the first k hits)\n")
    print("\n".join(table(outcomes, splits)))
    print("\nanswer in the corpus (the limit-5 verdict), questions per verdict; 'of which top 5': answerable questions "
          "called unlikely though the limit-5 result held the answer span:")
    print("\n".join(verdicts(outcomes, splits)))
    if args.signals:
        args.signals.write_text("".join(json.dumps({"question": o.case.question.text, "kind": o.case.kind,
                                                    "closest_similarity": o.closest, "words_held": o.held,
                                                    "unmatched_names": o.unmatched, "hits": o.signals}) + "\n"
                                        for o in outcomes if o.case.split == "dev"))
    print("\nlimit-5 result size, tokens (characters / 4):")
    print("\n".join(sizes(outcomes)))
    dev_misses = misses(outcomes)
    if dev_misses:
        print("\ndev questions whose first hit misses the span:")
        print("\n".join(dev_misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
