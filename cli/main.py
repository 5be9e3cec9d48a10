"""`corpus`: one thin command line over the ingest and search APIs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import corpus  # noqa: F401  (sets the offline environment before heavy imports)
from cli.json_out import emit
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
        code = args.run(config, args)
        sys.stdout.flush()  # a reader that left early (`| head -1`) is met here, in the handler below
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to write at exit either
        return 141  # as a tool stopped by SIGPIPE: quiet, and still a failure under `set -o pipefail`
    except ConfigError as exc:
        for line in str(exc).splitlines():  # every problem in the file, one line each
            print(f"config error: {line}", file=sys.stderr)
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
    p.add_argument("--retry-failed", action="store_true",
                   help="read again the items that failed before, even unchanged (see `corpus status --failed`)")
    p.add_argument("--watch", action="store_true", help="keep running: ingest a source again when its files change")
    p.set_defaults(run=_ingest)

    p = sub.add_parser("dream", help="find duplicates, contradictions and superseded facts; annotate, never delete")
    p.add_argument("--full", action="store_true", help="look at every chunk again, not only what changed")
    p.add_argument("--undo", action="store_true", help="remove every annotation dreaming made")
    p.add_argument("--offline", action="store_true", help="use the offline rule even when an API key is set")
    p.add_argument("--report", type=Path, metavar="FILE", help="where to write the Markdown report "
                   "(default: dream-report.md in the store folder)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(run=_dream)

    p = sub.add_parser("speakers", help="Claude proposes names for diarized speakers, written to each recording's "
                       ".speakers.toml as comments for a person to confirm")
    p.add_argument("--source", action="append", default=[], help="only this meetings source; repeatable")
    p.set_defaults(run=_speakers)

    p = sub.add_parser("search", help="search the corpus, as the MCP tool does")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--kind", action="append", default=[], help="only this kind (docs, slack, meetings); repeatable")
    p.add_argument("--source", action="append", default=[], help="only this source; repeatable")
    p.add_argument("--person", action="append", default=[], help="only chunks by or naming this person; repeatable")
    p.add_argument("--after", type=_date, help="updated on or after YYYY-MM-DD")
    p.add_argument("--before", type=_date, help="updated before YYYY-MM-DD")
    p.add_argument("--json", action="store_true", help="print the hits as JSON (shape: docs/json.md)")
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
    p.add_argument("--depth", type=int, default=5,
                   help="hits read per question, with their further passages (default 5)")
    p.add_argument("--source", action="append", default=[], metavar="NAME",
                   help="check against this source only; repeatable (default: every source)")
    p.set_defaults(run=_check)

    p = sub.add_parser("gaps", help="themes of what people asked and the corpus could not answer",
                       description="Reads the question log in the store folder ([feedback] in corpus.toml): searches "
                       "the corpus did not answer and gaps Claude sessions reported, grouped into themes.")
    p.add_argument("--since", default="30d", help="period to read: 30d, 12h, 2w, or a date YYYY-MM-DD (default 30d)")
    p.add_argument("--json", action="store_true", help="print the themes as JSON instead of a table")
    p.add_argument("--report", type=Path, metavar="FILE", help="write a report: Markdown, or HTML for .html")
    p.add_argument("--offline", action="store_true", help="name themes offline even when an API key is set")
    p.add_argument("--forget", action="store_true", help="erase the question log and exit")
    p.set_defaults(run=_gaps)

    p = sub.add_parser("questions", help="write the questions a newcomer would ask, as a file `corpus check` reads")
    p.add_argument("--per-source", type=int, default=10, metavar="N", help="questions per source (default 10)")
    p.add_argument("--out", type=Path, default=Path("questions.md"), help="where to write (default questions.md)")
    p.add_argument("--since", default="30d", help="gap themes from this period join them (default 30d)")
    p.add_argument("--offline", action="store_true", help="the offline rule even when an API key is set")
    p.set_defaults(run=_questions)

    p = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    how.add_argument("--standalone", action="store_true",
                     help="serve stdio from this process, not through the store's shared engine")
    p.add_argument("--host", help="HTTP listen address (default from [server], else 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default from [server], else 8765)")
    p.set_defaults(run=_serve, needs_config=False)  # the stdio front reads corpus.toml only to start the engine

    p = sub.add_parser("status", help="sources, documents, chunks, store size and failures")
    p.add_argument("--json", action="store_true", help="print the status as JSON (shape: docs/json.md)")
    p.add_argument("--failed", action="store_true", help="only the items that fail to ingest: source, path, "
                   "reason and since when")
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
    from ingest.pipeline import NOT_RETRIED, ingest

    _background(config)
    if args.watch:
        if args.full or args.dream or args.retry_failed:
            print("error: --watch runs incremental ingests; run --full, --dream or --retry-failed on their own",
                  file=sys.stderr)
            return 2
        from ingest.watch import watch

        return watch(config, args.sources or None)
    result = ingest(config, args.sources or None, full=args.full, retry_failed=args.retry_failed)
    from rich.console import Console

    from cli import views

    console = Console()
    counts = ("added", "updated", "deleted", "unchanged", "failed", "chunks", "time")
    views.rows(console, f"ingest finished in {result.seconds:.1f} s", ("source", *counts), [
        (name, *(str(v) for v in (s.added, s.updated, s.deleted, s.unchanged, s.failed, s.chunks)),
         f"{s.seconds:.1f} s") for name, s in result.sources.items()], numeric=counts)
    if result.contextual:
        console.print(f"contextual chunks: {result.contextual}", markup=False, highlight=False)
    if result.total("redacted"):
        console.print(f"secrets masked: {result.total('redacted')} (distinct values per document, before anything "
                      "was stored or sent)", markup=False, highlight=False)
    for name, count in result.removed_sources.items():
        console.print(f"source {name} is no longer configured: removed its {count} documents")
    failures = [(name, nid, reason) for name, s in result.sources.items() for nid, reason in s.failures]
    fresh = [(name, nid, reason) for name, nid, reason in failures if not reason.endswith(f"({NOT_RETRIED})")]
    if fresh:
        print(f"{len(fresh)} item(s) could not be ingested:")
        for name, nid, reason in fresh:
            print(f"  {name}/{nid}: {reason}")
    if len(failures) > len(fresh):  # listed once when they failed, not on every run
        print(f"{len(failures) - len(fresh)} item(s) failed before and are unchanged, so were not read again: "
              "`corpus status --failed` lists them, `corpus ingest --retry-failed` reads them again, and an "
              "`exclude` glob in corpus.toml leaves one out")
    unlisted = [(name, s.error) for name, s in result.sources.items() if s.error]
    if unlisted:
        print(f"{len(unlisted)} source(s) could not be read:")
        for name, error in unlisted:
            print(f"  {name}: {error}")
    ok = result.total("added") + result.total("updated") + result.total("unchanged")
    if args.dream:
        _dream(config, argparse.Namespace(full=False, undo=False, offline=False, report=None, json=False))
    return 1 if (failures or unlisted) and ok == 0 else 0


def _speakers(config, args) -> int:
    from corpus.claude import Claude
    from ingest.speaker_proposals import propose

    claude = Claude(config.claude)
    if not claude.available:
        print(f"Claude is {claude.mode}: nothing proposed; name speakers by hand in <recording>.speakers.toml "
              "(docs/speakers.md)")
        return 0
    proposals = propose(config, claude, args.source, note=print)
    for p in proposals:
        names = ", ".join(f"{label} = {name}" for label, name in p.written.items())
        print(f"{p.source}/{p.path}: proposed {names} in {p.sidecar}")
    print(f"{len(proposals)} recording(s) with proposals; remove the '#' before each name that is right, then "
          f"run `corpus ingest`. {claude.mode}: {claude.summary()}")
    return 0


def _dream(config, args) -> int:
    from ingest.dream import as_json, dream, summary_counts, undo, write_report

    if args.undo:
        removed = undo(config)
        print(f"removed {removed} annotation(s); sources and stored chunks were never changed")
        return 0
    _background(config)
    result = dream(config, full=args.full, offline=args.offline)
    report = args.report or config.store_path / "dream-report.md"
    write_report(result, report)
    if args.json:
        emit({**as_json(result), "report": str(report)})
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
    from server import relevance
    from server.asked import Asker
    from server.search import Searcher
    from store.filters import Filters

    one_thread_per_query()
    filters = Filters(kinds=args.kind, sources=args.source, people=args.person, after=args.after, before=args.before)
    found = Searcher(config).find(args.query, limit=args.limit, filters=filters, asker=Asker())
    hits = found.hits
    if args.json:
        shown = asdict(found)
        del shown["passages"]  # each passage's own signals: the hits already show their best passage's
        emit({"query": args.query, **shown})
        return 0
    if not hits:
        print("no results: try other words or fewer filters")
        return 0
    said = relevance.verdict_basis(found.closest_similarity, found.words_held, found.unmatched_names)
    print(f"answer in the corpus: {found.answer_in_corpus} ({said})\n")
    from rich.console import Console

    from cli import views

    views.hits(Console(), found)
    return 0


def _check(config, args) -> int:
    from corpus.claude import Claude
    from ingest.embedder import one_thread_per_query
    from server.asked import Asker
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
    result = check(searcher, questions, claude, depth=args.depth, filters=filters, asker=Asker())
    if args.report:
        write_report(result, args.report, title=f"Onboarding coverage: {args.questions.name}",
                     gaps=_logged_gaps(searcher, claude, skip=[q.text for q in questions]))
    if args.json:
        emit(result.as_dict())
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
        table.add_column(column, overflow="fold")  # a long citation label wraps; it is never cut
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


def _logged_gaps(searcher, claude, skip=(), since: str = "30d"):
    """The gap themes of the question log, or None when there is no log."""
    from server.gaps import find_gaps, parse_since

    log = searcher.asked.log
    if log is None or not log.path.exists():
        return None
    return find_gaps(searcher, log, parse_since(since), claude, skip=skip)


def _gaps(config, args) -> int:
    from corpus.claude import Claude
    from ingest.embedder import one_thread_per_query
    from server.gaps_report import status, write_report
    from server.search import Searcher

    searcher = Searcher(config)
    if searcher.asked.log is None:
        print("the question log is off ([feedback] log = false in corpus.toml): nothing to read")
        return 0
    if args.forget:
        erased = searcher.asked.log.forget()
        print(f"question log erased: {searcher.asked.log.path}" if erased else "there was no question log to erase")
        return 0
    one_thread_per_query()
    claude = Claude(config.claude, offline="--offline" if args.offline else None)
    gaps = _logged_gaps(searcher, claude, since=args.since)
    if gaps is None:
        print(f"no question log yet at {searcher.asked.log.path}: searches are recorded from now on")
        return 0
    if args.report:
        write_report(gaps, args.report)
    if args.json:
        emit(gaps.as_dict())
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(gaps.themes)} theme(s) from {gaps.unanswered} unanswered of {gaps.entries} logged "
                        f"since {gaps.since:%Y-%m-%d}", title_justify="left", show_lines=True)
    for column in ("#", "theme", "askers", "asked", "last asked", "status", "examples"):
        table.add_column(column, justify="right" if column in ("#", "askers", "asked") else "left")
    for n, theme in enumerate(gaps.themes, start=1):
        about = _escape(theme.name) + (f"\n[dim]{_escape(theme.description)}[/dim]" if theme.description else "")
        owners = f"\n[dim]owners: {_escape(', '.join(theme.owners))}[/dim]" if theme.owners else ""
        table.add_row(str(n), about, str(theme.askers),
                      str(theme.asked), f"{theme.last_asked:%Y-%m-%d %H:%M}", status(theme) + owners,
                      _escape("\n".join(theme.questions[:3])))
    console = Console()
    console.print(table)
    if gaps.single:
        console.print(f"{len(gaps.single)} question(s) asked once, unlike any other (see --json or --report)")
    console.print(f"mode: {gaps.mode}", markup=False, highlight=False)
    if args.report:
        print(f"report: {args.report}")
    return 0


def _questions(config, args) -> int:
    from corpus.claude import Claude
    from ingest.embedder import one_thread_per_query
    from server.question_gen import generate, write_questions
    from server.search import Searcher

    if args.per_source < 1:
        raise CorpusError("--per-source must be at least 1")
    one_thread_per_query()
    searcher = Searcher(config)
    claude = Claude(config.claude, offline="--offline" if args.offline else None)
    generated = generate(searcher, claude, args.per_source, _logged_gaps(searcher, claude, since=args.since))
    write_questions(generated, args.out)
    for note in generated.notes:
        print(f"note: {note}")
    print(f"{len(generated.questions)} question(s) written to {args.out} ({generated.mode}); "
          f"run `corpus check {args.out}`")
    return 0


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
        shape = st.as_dict()
        emit({"failures": shape["failures"]} if args.failed else shape)
        return 0
    from rich.console import Console

    from cli import views

    console = Console(highlight=False)
    failed = (f"{len(st.failures)} item(s) fail to ingest (`corpus ingest --retry-failed` reads them again; an "
              "`exclude` glob in the source's corpus.toml entry leaves one out):")
    if args.failed:
        if st.failures:
            views.failures(console, st.failures, failed)
        else:
            console.print("no item fails to ingest")
        return 0
    console.print(f"store: {st.store} ({st.size_bytes / 1e6:.1f} MB)", markup=False)
    if st.last_run:
        state = f"finished in {st.last_run.summary.get('seconds', 0):.1f} s" if st.last_run.finished else \
            "did not finish"
        console.print(f"last ingest: {views.when(st.last_run.started)}, {state}")
    else:
        console.print("last ingest: never (run `corpus ingest`)")
    views.rows(console, None, ("source", "kind", "documents", "chunks", "last ingest"), [
        (s.name if s.configured else f"{s.name} (not in config)", s.kind, str(s.documents), str(s.chunks),
         views.when(s.last_ingest) if s.last_ingest else "-") for s in st.sources], numeric=("documents", "chunks"))
    if st.failures:
        views.failures(console, st.failures, failed, limit=10)
    if st.unnamed_speakers:
        console.print(f"{len(st.unnamed_speakers)} recording(s) with unnamed speakers (name them in <recording>"
                      ".speakers.toml, see docs/speakers.md; `corpus speakers` asks Claude):", markup=False)
        for u in st.unnamed_speakers:
            console.print(f"  {u.source}/{u.path}: {', '.join(u.speakers)}", markup=False)
    return 0


def _eval(config, args) -> int:
    from server.evaluate import evaluate, format_table

    if args.limit_queries is not None and args.limit_queries < 1:
        raise CorpusError("--limit-queries must be at least 1")
    result = evaluate(args.path, limit_queries=args.limit_queries, half=args.half, keep_store=args.keep_store)
    if args.json:
        emit(result.as_dict())
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
