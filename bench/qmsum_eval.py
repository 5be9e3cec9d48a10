"""Meeting retrieval on QMSum: does `search` return the stretch of a real meeting that a question is about?

../shared/data/bench/qmsum-test holds 35 real meetings (AMI product design, ICSI research groups, Welsh and
Canadian parliamentary committees), each a list of speaker turns with ``specific_query_list`` questions whose
``relevant_text_span`` gives the turns that answer them (inclusive index ranges). Each meeting is written as a
WebVTT file, one ``<v Speaker>`` cue per turn with synthetic timestamps (0.4 s a word, at least a second: about
150 words a minute), and the folder is ingested with `corpus ingest` as one ``kind = "meetings"`` source, as a
user's transcripts would be. Every specific query is asked through the MCP ``search`` tool at limit 10 across all
35 meetings at once. A hit is a returned passage holding a run of six consecutive words (lowercased word
characters) from one of the relevant turns; hit@5 and hit@10 count queries with a hit among the first 5 or 10.

    python bench/qmsum_eval.py [--keep DIR] [--enrich]

``--keep DIR`` writes the transcripts and builds the store in DIR, or reuses the one already published there.
``--enrich`` builds it with Claude's contextual sentences and likely questions (needs $ANTHROPIC_API_KEY).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.mcp_store import Search, enrichment, ensure_store, hit_text, mcp_search  # noqa: E402

QMSUM = REPO.parent / "shared" / "data" / "bench" / "qmsum-test"
RUN = 6  # words in a row that tie a passage to a relevant turn
LIMIT = 10
SECONDS_PER_WORD = 0.4
WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Query:
    meeting: str
    text: str
    runs: frozenset[tuple[str, ...]]  # every six-word run of the relevant turns


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def runs(text: str) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i:i + RUN]) for i in range(len(tokens) - RUN + 1)}


def clock(seconds: float) -> str:
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(int(minutes), 60)
    return f"{hours:02d}:{minute:02d}:{second:06.3f}"


def webvtt(turns: list[dict]) -> str:
    """One ``<v Speaker>`` cue per turn, timed as if spoken at an even pace."""
    cues, start = ["WEBVTT", ""], 0.0
    for turn in turns:
        text = " ".join(turn["content"].split())
        end = start + max(1.0, SECONDS_PER_WORD * len(text.split()))
        cues += [f"{clock(start)} --> {clock(end)}", f"<v {turn['speaker'].strip()}>{text}", ""]
        start = end
    return "\n".join(cues)


def prepare(folder: Path) -> list[Query]:
    """The meetings written as WebVTT into ``folder/meetings``; the specific queries with their relevant runs."""
    target = folder / "meetings"
    target.mkdir(parents=True, exist_ok=True)
    queries = []
    for path in sorted(QMSUM.glob("*.json")):
        meeting = json.loads(path.read_text())
        turns = meeting["meeting_transcripts"]
        (target / f"{path.stem}.vtt").write_text(webvtt(turns))
        for entry in meeting["specific_query_list"]:
            relevant = set()
            for first, last in entry["relevant_text_span"]:
                for turn in turns[int(first):int(last) + 1]:
                    relevant |= runs(turn["content"])
            queries.append(Query(path.stem, entry["query"], frozenset(relevant)))
    return queries


def config_text() -> str:
    return '[corpus]\npath = "store"\n\n[[sources]]\nname = "qmsum"\nkind = "meetings"\npath = "meetings"\n'


def first_hit(query: Query, hits: list[dict]) -> int | None:
    """1-based rank of the first passage sharing a six-word run with a relevant turn."""
    return next((n for n, hit in enumerate(hits, start=1) if runs(hit_text(hit)) & query.runs), None)


async def ask_all(search: Search, queries: list[Query]) -> list[int | None]:
    ranks = []
    for n, query in enumerate(queries, start=1):
        ranks.append(first_hit(query, (await search(query.text, LIMIT))["hits"]))
        if n % 25 == 0:
            print(f"  {n}/{len(queries)} asked", file=sys.stderr, flush=True)
    return ranks


def family(meeting: str) -> str:
    if meeting.startswith(("Bed", "Bmr", "Bro")):
        return "ICSI research"
    if meeting.startswith(("ES", "IS", "TS")):
        return "AMI product design"
    return "committee"


def report(queries: list[Query], ranks: list[int | None]) -> list[str]:
    groups: dict[str, list[int | None]] = {"all": ranks}
    for query, rank in zip(queries, ranks, strict=True):
        groups.setdefault(family(query.meeting), []).append(rank)
    lines = [f"{'meetings':<20}{'queries':>8}{'hit@5':>8}{'hit@10':>8}"]
    for name, group in groups.items():
        at5 = sum(1 for r in group if r is not None and r <= 5) / len(group)
        at10 = sum(1 for r in group if r is not None) / len(group)
        lines.append(f"{name:<20}{len(group):>8}{at5:>8.2f}{at10:>8.2f}")
    unreachable = sum(1 for q in queries if not q.runs)
    lines.append(f"({unreachable} queries have no relevant turn of {RUN}+ words, so can never hit)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build the store in (or reuse it from) this folder")
    parser.add_argument("--enrich", action="store_true",
                        help="ingest with [claude] contextualize and likely_questions (needs $ANTHROPIC_API_KEY)")
    args = parser.parse_args()
    if not QMSUM.is_dir():
        print(f"shared data missing: {QMSUM}", file=sys.stderr)
        return 2
    folder = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="corpus-qmsum-"))
    try:
        queries = prepare(folder)
        config, built = ensure_store(folder, config_text() + enrichment(args.enrich))

        async def run() -> list[int | None]:
            async with mcp_search(config) as search:
                return await ask_all(search, queries)

        ranks = asyncio.run(run())
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nQMSum test: {len(queries)} specific queries over 35 meetings through MCP search at limit {LIMIT} "
          f"(store {built}; a hit shares a {RUN}-word run with a relevant turn)\n")
    print("\n".join(report(queries, ranks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
