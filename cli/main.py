"""`corpus`: one thin command line over the ingest and search APIs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import corpus  # noqa: F401  (sets the offline environment before heavy imports)
from corpus import DEFAULT_CONFIG
from corpus.errors import ConfigError, CorpusError, EmptyCorpusError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = None
    try:
        if getattr(args, "needs_config", True):
            from connectors import load_config  # pydantic and the connectors: not for the stdio front

            config = load_config(args.config)
        return args.run(config, args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except EmptyCorpusError:
        print(f"error: no corpus at {config.store_path} (nothing ingested and published there yet); "
              "run `corpus ingest` first", file=sys.stderr)
        return 2
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        more = "; run it again to finish (documents already written are kept)" if args.command == "ingest" else ""
        print(f"interrupted{more}", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corpus", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path(os.environ.get("CORPUS_CONFIG", DEFAULT_CONFIG)),
                        help="path to corpus.toml (default: $CORPUS_CONFIG, else ./corpus.toml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="read the configured sources into the store (incremental)")
    p.add_argument("sources", nargs="*", help="source names from corpus.toml (default: all)")
    p.add_argument("--full", action="store_true", help="drop what is stored and rebuild from scratch")
    p.add_argument("--dream", action="store_true", help="run `corpus dream` on what changed afterwards")
    p.set_defaults(run=_ingest)

    p = sub.add_parser("dream", help="find duplicates, contradictions and superseded facts; annotate, never delete")
    p.add_argument("--full", action="store_true", help="look at every chunk again, not only what changed")
    p.add_argument("--undo", action="store_true", help="remove every annotation dreaming made")
    p.add_argument("--offline", action="store_true", help="use the offline rule even when an API key is set")
    p.add_argument("--report", type=Path, metavar="FILE", help="where to write the Markdown report "
                   "(default: dream-report.md in the store folder)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(run=_dream)

    p = sub.add_parser("search", help="search the corpus, as the MCP tool does")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--kind", action="append", default=[], help="only this kind (docs, slack, meetings); repeatable")
    p.add_argument("--source", action="append", default=[], help="only this source; repeatable")
    p.add_argument("--person", action="append", default=[], help="only chunks by or naming this person; repeatable")
    p.add_argument("--after", type=_date, help="updated on or after YYYY-MM-DD")
    p.add_argument("--before", type=_date, help="updated before YYYY-MM-DD")
    p.add_argument("--json", action="store_true", help="print the hits as a JSON array")
    p.set_defaults(run=_search)

    p = sub.add_parser("check", help="onboarding coverage: does the corpus answer these questions?",
                       description="Questions come from Markdown (headings are sections, list items questions, "
                       "indented 'source: NAME' / 'answer: TEXT' sub-items), YAML or TOML ([[questions]] with "
                       "question, section, source, answer).")
    p.add_argument("questions", type=Path, help="a .md, .yaml or .toml file of questions")
    p.add_argument("--report", type=Path, metavar="FILE", help="write a report: Markdown, or HTML for .html")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--min-coverage", type=_share, metavar="X",
                   help="exit with status 1 when coverage is below X (0.8 or 80%%)")
    p.add_argument("--offline", action="store_true", help="use the offline rule even when an API key is set")
    p.add_argument("--depth", type=int, default=5, help="passages read per question (default 5)")
    p.add_argument("--source", action="append", default=[], metavar="NAME",
                   help="check against this source only; repeatable (default: every source)")
    p.set_defaults(run=_check)

    p = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    how.add_argument("--standalone", action="store_true",
                     help="serve stdio from this process, not through the store's shared engine")
    p.add_argument("--host", help="HTTP listen address (default from [server], else 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default from [server], else 8765)")
    p.set_defaults(run=_serve, needs_config=False)  # the stdio front reads corpus.toml only to start the engine

    p = sub.add_parser("status", help="sources, documents, chunks, store size and failures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_status)

    p = sub.add_parser("eval", help="retrieval quality on a BEIR-format folder (ingested into a throwaway store)")
    p.add_argument("path", type=Path, help="folder with corpus.jsonl[.gz], queries.jsonl and qrels/test.tsv")
    p.add_argument("--limit-queries", type=int, metavar="N", help="only the first N test queries")
    p.add_argument("--half", type=int, choices=(1, 2),
                   help="only the odd (1) or even (2) test queries: tune on one half, report both")
    p.add_argument("--keep-store", type=Path, metavar="DIR",
                   help="build the store in DIR and keep it; a later run there only ingests what changed")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=_eval, needs_config=False)  # needs no corpus.toml: it writes its own
    return parser


def _date(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _share(value: str) -> float:
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a share like 0.8 or 80%") from None
    share = number / 100 if value.endswith("%") or number > 1 else number
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not between 0 and 100%")
    return share


def _background(config) -> None:
    """Ingest and dream yield the CPU to servers reading the same store (measured: 20 HTTP sessions' p95)."""
    now = os.nice(0)
    if now < config.ingest.nice:
        os.nice(config.ingest.nice - now)


def _ingest(config, args) -> int:
    from ingest.pipeline import ingest

    _background(config)
    result = ingest(config, args.sources or None, full=args.full)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ingest finished in {result.seconds:.1f} s", title_justify="left")
    for column in ("source", "added", "updated", "deleted", "unchanged", "failed", "chunks written"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, s in result.sources.items():
        table.add_row(name, *(str(v) for v in (s.added, s.updated, s.deleted, s.unchanged, s.failed, s.chunks)))
    console = Console()
    console.print(table)
    if result.contextual:
        console.print(f"contextual chunks: {result.contextual}", markup=False, highlight=False)
    if result.total("redacted"):
        console.print(f"secrets masked: {result.total('redacted')} (distinct values per document, before anything "
                      "was stored or sent)", markup=False, highlight=False)
    for name, count in result.removed_sources.items():
        console.print(f"source {name} is no longer configured: removed its {count} documents")
    failures = [(name, nid, reason) for name, s in result.sources.items() for nid, reason in s.failures]
    if failures:
        print(f"{len(failures)} item(s) could not be ingested:")
        for name, nid, reason in failures:
            print(f"  {name}/{nid}: {reason}")
    unlisted = [(name, s.error) for name, s in result.sources.items() if s.error]
    if unlisted:
        print(f"{len(unlisted)} source(s) could not be read:")
        for name, error in unlisted:
            print(f"  {name}: {error}")
    ok = result.total("added") + result.total("updated") + result.total("unchanged")
    if args.dream:
        _dream(config, argparse.Namespace(full=False, undo=False, offline=False, report=None, json=False))
    return 1 if (failures or unlisted) and ok == 0 else 0


def _dream(config, args) -> int:
    from ingest.dream import dream, summary_counts, undo, write_report

    if args.undo:
        removed = undo(config)
        print(f"removed {removed} annotation(s); sources and stored chunks were never changed")
        return 0
    _background(config)
    result = dream(config, full=args.full, offline=args.offline)
    report = args.report or config.store_path / "dream-report.md"
    write_report(result, report)
    if args.json:
        print(json.dumps({**summary_counts(result), "findings": [asdict(f) for f in result.findings]}, indent=2))
        return 0
    counts = summary_counts(result)
    print(f"dream, {result.mode}: examined {counts['examined_chunks']} chunk(s), {counts['candidate_pairs']} "
          f"similar pair(s) in {result.seconds:.1f} s")
    print(f"  new: {counts['conflicts']} contradiction(s), {counts['superseded']} superseded fact(s), "
          f"{counts['duplicates']} duplicate(s); {counts['still_active']} still active from earlier passes"
          + (f"; {counts['withdrawn']} withdrawn" if counts["withdrawn"] else "")
          + ("; search shows them as notes" if result.active else ""))
    for f in result.findings:
        print(f"  {f.relation}: “{f.a.title}” <{f.a.citation}> / “{f.b.title}” <{f.b.citation}>: {f.detail}")
    print(f"report: {report}")
    return 0


def _search(config, args) -> int:
    from ingest.embedder import one_thread_per_query
    from server.hits import dated
    from server.search import Searcher
    from store.filters import Filters

    one_thread_per_query()
    filters = Filters(kinds=args.kind, sources=args.source, people=args.person, after=args.after, before=args.before)
    found = Searcher(config).find(args.query, limit=args.limit, filters=filters)
    hits = found.hits
    if args.json:
        print(json.dumps({"query": args.query, **asdict(found)}, ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("no results: try other words or fewer filters")
        return 0
    print(f"answer in the corpus: {found.answer_in_corpus} (closest similarity {found.closest_similarity:.2f}, "
          f"{found.words_held:.0%} of the query's key words held)")
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("relevance", justify="right")
    table.add_column("hit")
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())
        snippet = snippet[:300] + ("…" if len(snippet) > 300 else "")
        where = f"{hit.title}" + (f" › {hit.section}" if hit.section else "")
        notes = "".join(f"\n[yellow]note: {_escape(note)}[/yellow]" for note in hit.notes)
        table.add_row(str(rank), f"{hit.relevance:.2f}\n{hit.match}",
                      f"[bold]{_escape(where)}[/bold]\n{_escape(snippet)}\n[dim]{_escape(hit.citation_label)} · "
                      f"{_escape(dated(hit.date, hit.date_source))} · {_escape(hit.citation)}[/dim]{notes}")
    Console().print(table)
    return 0


def _check(config, args) -> int:
    from corpus.claude import Claude
    from ingest.embedder import one_thread_per_query
    from server.check import check, only_sources
    from server.check_report import write_report
    from server.questions import load_questions
    from server.search import Searcher

    questions = load_questions(args.questions)
    filters = only_sources(args.source, [source.name for source in config.sources])
    if not 1 <= args.depth <= 20:
        raise CorpusError("--depth must be between 1 and 20")
    one_thread_per_query()
    searcher = Searcher(config)
    claude = Claude(config.claude, offline="--offline" if args.offline else None)
    result = check(searcher, questions, claude, depth=args.depth, filters=filters)
    if args.report:
        write_report(result, args.report, title=f"Onboarding coverage: {args.questions.name}")
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        _print_check(result)
        if args.report:
            print(f"report: {args.report}")
    if args.min_coverage is not None and result.coverage() < args.min_coverage:
        print(f"coverage {result.coverage():.0%} is below --min-coverage {args.min_coverage:.0%}", file=sys.stderr)
        return 1
    return 0


def _print_check(result) -> None:
    from rich.console import Console
    from rich.table import Table

    colour = {"answered": "green", "partly": "yellow", "missing": "red"}
    table = Table(title=f"coverage {result.coverage():.0%}: {result.count('answered')} answered, "
                        f"{result.count('partly')} partly, {result.count('missing')} missing", title_justify="left")
    for column in ("question", "verdict", "best evidence", "signals"):
        table.add_column(column)
    for outcome in result.outcomes:
        best = outcome.quotes[0].citation_label if outcome.quotes else \
            (outcome.evidence[0].citation_label if outcome.evidence else "-")
        table.add_row(_escape(outcome.question.text), f"[{colour[outcome.verdict]}]{outcome.verdict}[/]",
                      _escape(best), _escape(outcome.brief))
    console = Console()
    console.print(table)
    console.print(f"mode: {result.mode}", markup=False, highlight=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _serve(_, args) -> int:
    if not (args.http or args.standalone):
        from server.front import serve_front

        return serve_front(args.config)
    from connectors import load_config
    from server.mcp_server import serve

    serve(load_config(args.config), http=args.http, host=args.host, port=args.port)
    return 0


def _status(config, args) -> int:
    from ingest.status import status

    st = status(config)
    if args.json:
        print(json.dumps(asdict(st), indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"store: {st.store} ({st.size_bytes / 1e6:.1f} MB)")
    if st.last_run:
        started, finished, stats = st.last_run
        state = f"finished in {stats.get('seconds', 0):.1f} s" if finished else "did not finish"
        console.print(f"last ingest: {_when(started)}, {state}")
    else:
        console.print("last ingest: never (run `corpus ingest`)")
    table = Table()
    for column in ("source", "kind", "documents", "chunks", "last ingest"):
        table.add_column(column)
    for s in st.sources:
        name = s.name if s.configured else f"{s.name} (not in config)"
        table.add_row(name, s.kind, str(s.documents), str(s.chunks), _when(s.last_ingest) if s.last_ingest else "-")
    console.print(table)
    if st.failures:
        print(f"{len(st.failures)} item(s) failed in the last ingest:")
        for source, nid, reason in st.failures:
            print(f"  {source}/{nid}: {reason}")
    return 0


def _eval(config, args) -> int:
    from server.evaluate import evaluate, format_table

    if args.limit_queries is not None and args.limit_queries < 1:
        raise CorpusError("--limit-queries must be at least 1")
    result = evaluate(args.path, limit_queries=args.limit_queries, half=args.half, keep_store=args.keep_store)
    print(json.dumps(result.as_dict(), indent=2) if args.json else format_table(result))
    return 0


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


if __name__ == "__main__":
    sys.exit(main())
