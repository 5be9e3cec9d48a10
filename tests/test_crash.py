"""A killed ingest, run again, ends in the same store as a run that was never interrupted."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from connectors import load_config
from ingest.pipeline import ingest
from store import keyword, postings
from store.chroma import ChunkStore
from tests.conftest import SAMPLE, docs_source, shared


def _config(folder: Path, store: str, handbook: Path) -> Path:
    path = folder / f"{store}.toml"
    path.write_text(f'[corpus]\npath = "{store}"\n' + docs_source("sample", SAMPLE)
                    + docs_source("handbook", handbook, include=["pages/travel-and-leave/**", "pages/tools/**"]))
    return path


def _full_snapshot(store: Path) -> dict:
    client = chromadb.PersistentClient(path=str(store / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    got = client.get_collection("corpus").get(include=["documents", "metadatas", "embeddings"])
    return {i: (d, m, e) for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                                strict=True)}


def _assert_same_store(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b), (set(a) ^ set(b))
    for key in a:
        assert a[key][0] == b[key][0] and a[key][1] == b[key][1], key
        assert np.allclose(a[key][2], b[key][2], atol=1e-4), key


def _keyword_hits(store: Path) -> dict:
    """Keyword results on the store's own manifest, ties in any order; the postings cover exactly its chunks."""
    with closing(sqlite3.connect(f"{(store / 'manifest.sqlite').as_uri()}?mode=ro", uri=True)) as db:
        assert postings.rows(db).count == db.execute("SELECT count(*) FROM chunk_meta").fetchone()[0]
        return {q: sorted((round(score, 9), chunk) for chunk, score in keyword.search(db, q, 50))
                for q in ("travel leave policy", "how do I get access to tools", "expense report receipts")}


def _committed(store: Path) -> int:
    try:
        with sqlite3.connect(store / "manifest.sqlite", timeout=1) as db:
            return db.execute("SELECT count(*) FROM documents WHERE pending IS NULL").fetchone()[0]
    except sqlite3.Error:
        return 0


def _ingest(config: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(config), "ingest"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_converges(tmp_path):
    handbook = shared("docs", "18f-handbook")
    clean = _ingest(_config(tmp_path, "clean", handbook))
    assert clean.wait(timeout=900) == 0, clean.stdout.read()

    killed_config = _config(tmp_path, "killed", handbook)
    total = _committed(tmp_path / "clean")
    kills = []
    for wait_for in (1, total // 2):
        proc = _ingest(killed_config)
        deadline = time.monotonic() + 600
        while _committed(tmp_path / "killed") < wait_for and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # land somewhere inside the next batch write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(_committed(tmp_path / "killed"))
    assert kills[0] < total, "the first kill came after the run had finished"

    rerun = _ingest(killed_config)
    output = rerun.communicate(timeout=900)[0]
    assert rerun.returncode == 0, output
    _assert_same_store(_full_snapshot(tmp_path / "clean"), _full_snapshot(tmp_path / "killed"))
    clean_hits = _keyword_hits(tmp_path / "clean")
    assert all(clean_hits.values()) and _keyword_hits(tmp_path / "killed") == clean_hits


def test_crash_between_store_write_and_manifest_commit_is_recovered(tmp_path, embedder, monkeypatch):
    """The journal's window, hit deterministically: chunks written, manifest not yet committed."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"doc{i}.md").write_text(f"# Doc {i}\n\n" + f"Policy {i} applies to travel. " * 20)
    configs = {}
    for store in ("clean", "crashed"):
        (tmp_path / f"{store}.toml").write_text(f'[corpus]\npath = "{store}"\n' + docs_source("d", folder))
        configs[store] = load_config(tmp_path / f"{store}.toml")
    ingest(configs["clean"], embedder=embedder)

    real_upsert = ChunkStore.upsert

    def upsert_then_die(self, docs, vectors):
        real_upsert(self, docs, vectors)
        raise SystemExit("killed after writing chunks")

    monkeypatch.setattr(ChunkStore, "upsert", upsert_then_die)
    with pytest.raises(SystemExit):
        ingest(configs["crashed"], embedder=embedder)
    assert len(_full_snapshot(tmp_path / "crashed")) > 0  # chunks are in the store, the manifest says pending
    monkeypatch.setattr(ChunkStore, "upsert", real_upsert)
    result = ingest(configs["crashed"], embedder=embedder)
    assert result.sources["d"].added == 3
    _assert_same_store(_full_snapshot(tmp_path / "clean"), _full_snapshot(tmp_path / "crashed"))


def test_a_run_killed_before_publishing_is_published_by_the_next(tmp_path, embedder, monkeypatch):
    from server.search import Searcher
    from store import writer
    from store.publish import current_generation

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Lockers\n\nLocker keys are at the front desk.\n")
    (tmp_path / "c.toml").write_text('[corpus]\npath = "store"\n' + docs_source("d", folder))
    config = load_config(tmp_path / "c.toml")
    ingest(config, embedder=embedder)
    first = current_generation(config.store_path)

    (folder / "b.md").write_text("# Showers\n\nShowers are in the basement next to the bike cage.\n")
    real_publish = writer.publish

    def killed(*args, **kwargs):
        raise SystemExit("killed before publishing")

    monkeypatch.setattr(writer, "publish", killed)
    with pytest.raises(SystemExit):
        ingest(config, embedder=embedder)
    assert current_generation(config.store_path) == first
    monkeypatch.setattr(writer, "publish", real_publish)
    result = ingest(config, embedder=embedder)
    assert result.sources["d"].unchanged == 2  # nothing left to ingest, but the store still gets published
    assert current_generation(config.store_path) != first
    assert "basement" in Searcher(config, embedder).search("where are the showers", limit=1)[0].text
