"""The write path: list each source, skip what is unchanged, load, chunk, embed and store the rest.

Every document is replaced all-or-nothing across the vector store and the manifest (see
manifest.py), so a killed run followed by another ends in the same store as one clean run.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property

from connectors import open_connector
from connectors.base import ConnectorContext, Skipped
from corpus.claude import Claude
from corpus.config import Config, SourceSettings
from corpus.records import Item
from ingest.chunker import Chunker
from ingest.contextualize import RESERVE_TOKENS, Contextualizer
from ingest.embedder import Embedder
from ingest.loader import Loaded, load_in_background
from ingest.masking import MaskedIds
from ingest.progress import Progress
from store.writer import Writer, writing

log = logging.getLogger(__name__)

# Chunks gathered across documents for one encode call and one store write. The first batch is
# small so the encoder starts while the loader is still warming up.
EMBED_BATCH_CHUNKS = 1024
FIRST_BATCH_CHUNKS = 128
LISTING_KEYS = ("include", "exclude")  # source options that choose files, not how a file is read
NOT_RETRIED = "unchanged since it failed; not retried"  # said of a recorded failure the run did not read again


@dataclass
class SourceStats:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    chunks: int = 0
    error: str | None = None  # the source could not be listed at all
    redacted: int = 0  # distinct secret values masked, summed over documents
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of this source's listing, reading, embedding and writing


@dataclass
class RunResult:
    sources: dict[str, SourceStats]
    seconds: float
    removed_sources: dict[str, int] = field(default_factory=dict)
    contextual: str | None = None  # how chunks got Claude's sentences or questions, when [claude] asks for either
    claude_usage: dict | None = None

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sources.values())

    def as_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 3),
            "sources": {k: {f: v for f, v in asdict(s).items() if f != "failures"} for k, s in self.sources.items()},
            "removed_sources": self.removed_sources,
            "contextual": self.contextual,
            "claude_usage": self.claude_usage,
        }


def ingest(config: Config, names: list[str] | None = None, full: bool = False,
           embedder: Embedder | None = None, progress: Progress | None = None,
           retry_failed: bool = False) -> RunResult:
    """Bring the store in line with the sources named (all by default).

    ``retry_failed`` reads again items whose failure is recorded even when they have not changed (a converter
    installed since, a bug fixed); otherwise such an item is reported, not read."""
    selected = [config.source(n) for n in names] if names else list(config.sources)
    progress = progress or Progress()
    embedder = embedder or Embedder(config.embedding.model, config.embedding.device, config.embedding.batch_size)
    with writing(config, embedder, rebuild=full and not names, note=progress.note) as writer:
        return Run(config, writer, embedder, progress).execute(selected, full=full, prune=not names,
                                                               retry_failed=retry_failed)


class Run:
    def __init__(self, config: Config, writer: Writer, embedder: Embedder, progress: Progress):
        self.config = config
        self.store = writer.store
        self.manifest = writer.manifest
        self._changing = writer.changing
        self.embedder = embedder
        self.progress = progress

    @cached_property
    def claude(self) -> Claude | None:
        settings = self.config.claude
        return Claude(settings) if settings.contextualize or settings.likely_questions else None

    @cached_property
    def chunker(self) -> Chunker:
        """Built on first use: it needs the model's tokenizer, which an unchanged corpus never loads."""
        chunking = self.config.chunking
        limit = min(chunking.max_tokens or self.embedder.max_tokens, self.embedder.max_tokens)
        if self.claude is not None and self.claude.available and self.config.claude.contextualize:
            limit -= RESERVE_TOKENS  # room for Claude's context sentence
        return Chunker(
            self.embedder.measure(),
            max_tokens=limit,
            min_tokens=chunking.min_tokens,
            overlap_tokens=chunking.overlap_tokens,
        )

    @cached_property
    def contextualizer(self) -> Contextualizer | None:
        if self.claude is None or not self.claude.available:
            return None
        return Contextualizer(self.claude, self.config.store_path / "contexts.sqlite", self.chunker.measure,
                              self.embedder.max_tokens, context=self.config.claude.contextualize,
                              questions=self.config.claude.likely_questions)

    def execute(self, sources: list[SourceSettings], full: bool, prune: bool, retry_failed: bool = False) -> RunResult:
        started = time.monotonic()
        run_id = self.manifest.start_run()
        self.recover()
        result = RunResult(sources={}, seconds=0.0)
        if prune:
            result.removed_sources = self.prune_sources({s.name for s in sources})
        for source in sources:
            source_started = time.monotonic()
            if full:
                self._changing()
                self.store.delete_source(source.name)
                self.manifest.drop_source(source.name)
            stats = result.sources[source.name] = self.ingest_source(source, retry_failed)
            stats.seconds = round(time.monotonic() - source_started, 3)
        if self.claude is not None:
            result.contextual, result.claude_usage = self._contextual_summary()
        result.seconds = time.monotonic() - started
        self.manifest.finish_run(run_id, result.as_dict())
        return result

    def _contextual_summary(self) -> tuple[str, dict]:
        claude = self.claude
        if "contextualizer" not in self.__dict__:  # nothing was loaded this run
            return f"{claude.mode}: no new chunks", claude.usage.as_dict()
        if self.contextualizer is None:
            return f"{claude.mode}: deterministic headers only", claude.usage.as_dict()
        stats = self.contextualizer.stats
        self.contextualizer.close()
        line = (f"{claude.mode}: {stats.chunks} chunks, {stats.cached} from cache, {stats.written} written by Claude"
                + (f", {stats.questioned} with likely questions" if self.config.claude.likely_questions else "")
                + (f", {stats.missing} without (header only)" if stats.missing else "")
                + (f", {stats.redacted} secret(s) masked in replies" if stats.redacted else "")
                + f"; {claude.summary()}")
        return line, {**claude.usage.as_dict(), **stats.as_dict()}

    def recover(self) -> None:
        """Undo documents a killed run left half-written; this run ingests them again whole."""
        for doc_id in self.manifest.pending():
            self._changing()
            log.info("recovering interrupted write of %s", doc_id)
            self.store.delete_document(doc_id)
            self.manifest.forget(doc_id)

    def prune_sources(self, configured: set[str]) -> dict[str, int]:
        removed = {}
        for source, documents, _, _ in list(self.manifest.source_totals()):
            if source not in configured:
                self._changing()
                self.store.delete_source(source)
                self.manifest.drop_source(source)
                removed[source] = documents
        return removed

    def ingest_source(self, source: SourceSettings, retry_failed: bool = False) -> SourceStats:
        stats = SourceStats()
        known = self.manifest.entries(source.name)
        try:
            connector = open_connector(source, ConnectorContext(workdir=self.config.store_path,
                                                                note=self.progress.note, ingest=self.config.ingest))
            connector = MaskedIds(connector)  # items under the ids the manifest stores: no secret in a file name
            listed = list(connector.items())
        except Exception as exc:  # the source as a whole: nothing it holds is deleted as gone, the others go on
            stats.error = f"cannot list {source.path}: {_reason(exc)}; its {len(known)} stored documents are kept"
            self.progress.problem(f"{source.name}: {stats.error}")
            return stats
        fingerprint = settings_fingerprint(source)
        stored = self.manifest.settings_of(source.name)
        reread = stored is not None and stored != fingerprint and bool(known)
        if reread:  # access groups, citation templates, options: what is stored must follow them
            self.progress.note(f"{source.name}: its settings in corpus.toml changed since the last ingest; "
                               f"reading its {len(known)} documents again")
            known_stamps = {}
        else:
            known_stamps = {native_id: entry.stamp for native_id, entry in known.items()}
        failed_before = {} if reread or retry_failed else \
            {f.native_id: f.stamp for f in self.manifest.failures(source.name)}
        seen: set[str] = set()
        todo: list[Item] = []
        skipped = [item for item in listed if isinstance(item, Skipped)]
        seen.update(_kept(known, skipped))
        for item in listed:
            if isinstance(item, Skipped):
                continue
            seen.add(item.native_id)
            entry = known.get(item.native_id)
            if entry and known_stamps.get(item.native_id) == item.stamp:
                stats.unchanged += 1
            elif failed_before.get(item.native_id) == item.stamp:
                stats.failed += 1  # same bytes that failed last time: not retried
            elif entry and not reread and _digest(connector, item) == entry.digest:
                self.manifest.restamp(entry.doc_id, item.stamp)
                stats.unchanged += 1
            else:
                todo.append(item)
        for native_id in sorted(known.keys() - seen):
            self._delete(known[native_id].doc_id)
            stats.deleted += 1
        self.manifest.clear_failures(source.name, keep=seen)
        for item in skipped:
            self._report(source, item, item.reason, stats)

        if todo:
            self._load_and_write(source, connector, todo, known, stats)
        retried = {native_id for native_id, _ in stats.failures}
        for failure in self.manifest.failures(source.name):
            if failure.native_id not in retried:
                stats.failures.append((failure.native_id, f"{failure.reason} ({NOT_RETRIED})"))
        self.manifest.record_settings(source.name, fingerprint)
        return stats

    def _load_and_write(self, source: SourceSettings, connector, todo: list[Item], known: dict,
                        stats: SourceStats) -> None:
        self.progress.start(source.name, len(todo))
        batch: list[Loaded] = []
        threshold = FIRST_BATCH_CHUNKS
        refine = self.contextualizer.apply if self.contextualizer is not None else None
        try:
            for loaded in load_in_background(connector, self.chunker, todo, refine=refine):
                self.progress.advance(1, 0)  # each item as it is read: slow items (recordings) move the bar too
                if loaded.error is not None:
                    self._report(source, loaded.item, loaded.error, stats)
                    continue
                batch.append(loaded)
                if sum(len(b.chunks) for b in batch) >= threshold:
                    self._write(batch, known, stats)
                    batch, threshold = [], EMBED_BATCH_CHUNKS
            self._write(batch, known, stats)
        finally:
            self.progress.stop()

    def _report(self, source: SourceSettings, item: Item, reason: str, stats: SourceStats) -> None:
        stats.failed += 1
        stats.failures.append((item.native_id, reason))
        self.manifest.record_failure(source.name, item.native_id, item.stamp, reason)
        self.progress.problem(f"{source.name}/{item.native_id}: {reason}")

    def _write(self, batch: list[Loaded], known: dict, stats: SourceStats) -> None:
        """Embed a batch of documents, then replace each of them under the manifest's journal."""
        if not batch:
            return
        vectors = self.embedder.embed([c.embed_text for b in batch for c in b.chunks])
        self._changing()
        self.manifest.begin([(b.document.id, b.document.source, b.document.native_id, len(b.chunks)) for b in batch])
        self.store.upsert([(b.document, b.chunks) for b in batch], vectors)
        stale = []
        for b in batch:
            entry = known.get(b.item.native_id)
            stale.extend(f"{b.document.id}:{n}" for n in range(len(b.chunks), entry.chunks if entry else 0))
            stats.chunks += len(b.chunks)
            stats.redacted += b.redacted
            if entry:
                stats.updated += 1
            else:
                stats.added += 1
        self.store.delete_ids(stale)
        self.manifest.commit([(b.document, b.chunks, b.item.stamp) for b in batch], vectors)
        self.progress.advance(0, sum(len(b.chunks) for b in batch))

    def _delete(self, doc_id: str) -> None:
        self._changing()
        self.manifest.begin([(doc_id, "", "", 0)])
        self.store.delete_document(doc_id)
        self.manifest.forget(doc_id)


def settings_fingerprint(source: SourceSettings) -> str:
    """What a source's stored documents were read under: when it changes, each is read again.

    Which files are listed (``include``, ``exclude``) is left out: a file newly excluded leaves the corpus and
    one newly included enters it on the next ingest, without reading every other file again."""
    listing = {key: type(source).model_fields[key].default for key in LISTING_KEYS if key in type(source).model_fields}
    return hashlib.sha256(source.model_copy(update=listing).model_dump_json().encode()).hexdigest()[:16]


def _kept(known: dict, skipped: list[Skipped]) -> set[str]:
    """Ids stored from skipped items that may come back (a folder that cannot be read now): they stay, as an
    unreadable file's chunks do."""
    keep = [s.native_id for s in skipped if s.keep]
    return {nid for nid in known if any(nid == k or nid.startswith(k + "/") for k in keep)}


def _digest(connector, item: Item) -> str | None:
    """None when the item cannot be read now: it is then loaded, and its load says why in one line."""
    try:
        return connector.digest(item)
    except OSError:
        return None


def _reason(exc: Exception) -> str:
    """One line from whatever listing a source raised: the OS's words for an OSError, else the message."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__
