"""Reading on from a Slack hit: `fetch` with neighbours continues into the channel's conversation before and
after the hit's document, in time order, across bursts and threads, and never into what the caller may not read.

Real ingest, real Chroma, real model: #datajam of the real houstondatavis export, and generated exports for
the attack (two DMs that read alike) and for a store written before the conversation timeline existed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from connectors import load_config
from corpus.errors import CorpusError
from ingest.pipeline import ingest
from server.search import Searcher
from store import timeline
from store.filters import Filters
from tests.conftest import shared, write_config
from tests.test_slack_connector import T0, USERS, msg, slack_source

HDV = "https://houstondatavis.slack.com"
MINUTE = 60


@pytest.fixture(scope="module")
def datajam(tmp_path_factory, embedder) -> Searcher:
    folder = tmp_path_factory.mktemp("datajam")
    config = load_config(write_config(folder, slack_source("hdv", shared("slack", "houstondatavis"),
                                                           workspace_url=HDV, channels=["datajam"])))
    assert ingest(config, embedder=embedder).sources["hdv"].failed == 0
    return Searcher(config, embedder)


def chunks_in_time(searcher: Searcher) -> list[tuple[str, str, dict]]:
    """Every chunk said in the store's conversations, (id, text, metadata), in the order they were said."""
    with searcher.replica.reading() as snapshot:
        got = snapshot.store.collection.get(include=["documents", "metadatas"])
    rows = [row for row in zip(got["ids"], got["documents"], got["metadatas"], strict=True) if "start" in row[2]]
    return sorted(rows, key=lambda row: row[2]["start"])


def single_chunk_documents(said: list[tuple[str, str, dict]]) -> list[int]:
    """Positions in ``said`` of chunks that are a whole document, with another document before and after."""
    per_doc: dict[str, int] = {}
    for _, _, meta in said:
        per_doc[meta["doc_id"]] = per_doc.get(meta["doc_id"], 0) + 1
    return [i for i, (_, _, meta) in enumerate(said) if per_doc[meta["doc_id"]] == 1 and 2 <= i < len(said) - 2]


@pytest.mark.slow
def test_a_slack_hit_reads_on_into_the_conversation_around_it(datajam):
    said = chunks_in_time(datajam)
    at = single_chunk_documents(said)[0]
    hit_id, hit_text, hit_meta = said[at]
    alone = datajam.fetch(hit_meta["doc_id"]).text  # the whole document: what neighbours gave before
    assert alone == hit_text

    around = datajam.fetch(hit_id, neighbours=1)
    (_, before, before_meta), (_, after, after_meta) = said[at - 1], said[at + 1]
    assert around.text == (f"[{before_meta['title']} · {before_meta['citation_uri']}]\n{before}\n\n"
                           f"[{hit_meta['title']} · {hit_meta['citation_uri']}]\n{hit_text}\n\n"
                           f"[{after_meta['title']} · {after_meta['citation_uri']}]\n{after}")
    assert (around.doc_id, around.title, around.citation) == (hit_meta["doc_id"], hit_meta["title"],
                                                              hit_meta["citation_uri"])
    wider = datajam.fetch(hit_id, neighbours=2).text
    order = [wider.index(text) for _, text, _ in said[at - 2:at + 3]]
    assert order == sorted(order) and len(wider) > len(around.text) > len(alone)
    assert datajam.fetch(hit_id, neighbours=0).text == hit_text


@pytest.mark.slow
def test_within_a_long_document_neighbours_stay_in_it(datajam):
    said = chunks_in_time(datajam)
    counts: dict[str, int] = {}
    for _, _, meta in said:
        counts[meta["doc_id"]] = counts.get(meta["doc_id"], 0) + 1
    long_doc = max(counts, key=counts.get)
    assert counts[long_doc] >= 3
    middle = datajam.fetch(f"{long_doc}:1", neighbours=1)
    assert (middle.first_chunk, middle.last_chunk) == (0, 2) and not middle.text.startswith("[")
    last = datajam.fetch(f"{long_doc}:{counts[long_doc] - 1}", neighbours=1)
    assert last.text.startswith("[") and last.text.count("\n[") == 1  # its own document, then the next one


# --- the attack: a neighbour the caller may not read is never shown ----------------------------------------

def dm_export(root: Path) -> Path:
    """Two private DMs whose labels read alike ("DM Ann, Bob Stone": two people show as Ann), so they share
    one place in time, with their messages interleaved ten minutes apart, one burst each."""
    root.mkdir(parents=True)
    users = [*USERS, {"id": "U4", "name": "ann2", "profile": {"display_name": "Ann"}}]
    files = {"users.json": users, "channels.json": [], "dms.json": [
        {"id": "D1", "members": ["U1", "U2"]}, {"id": "D2", "members": ["U4", "U2"]}]}
    for name, content in files.items():
        (root / name).write_text(json.dumps(content))
    for dm, user, offset in (("D1", "U1", 0), ("D2", "U4", 5)):
        (root / dm).mkdir()
        (root / dm / "2016-03-01.json").write_text(json.dumps(
            [msg(user, T0 + (offset + 10 * i) * MINUTE, f"{dm} secret number {i}") for i in range(5)]))
    return root


def test_neighbours_never_show_what_the_caller_may_not_read(tmp_path, embedder):
    config = load_config(write_config(tmp_path, slack_source("acme", dm_export(tmp_path / "export"), private=True,
                                                             gap_minutes=1)))
    assert ingest(config, embedder=embedder).sources["acme"].added == 10
    searcher = Searcher(config, embedder)
    reader = Filters(groups=["acme:private:D1"])
    hit = searcher.search("D1 secret number 2", limit=1, filters=reader)[0]
    assert hit.text.endswith("D1 secret number 2")

    mine = searcher.fetch(hit.id, neighbours=3, filters=reader).text
    assert all(f"D1 secret number {i}" in mine for i in range(5)) and "D2" not in mine
    # the same fetch for someone who may read both DMs does interleave them: the filter is what kept D2 out
    both = searcher.fetch(hit.id, neighbours=3, filters=Filters(groups=["acme:private"])).text
    assert "D2 secret number 1" in both and "D2 secret number 2" in both
    with pytest.raises(CorpusError, match="no document or chunk"):
        searcher.fetch(hit.id, neighbours=3, filters=Filters(groups=["acme:private:D2"]))


# --- a store written before the timeline -------------------------------------------------------------------

def test_a_store_from_before_the_timeline_is_placed_in_time_when_the_writer_opens_it(tmp_path, embedder, capsys):
    config = load_config(write_config(tmp_path, slack_source("acme", dm_export(tmp_path / "export"), private=True,
                                                             gap_minutes=1)))
    ingest(config, embedder=embedder)
    manifest = tmp_path / "store" / "manifest.sqlite"
    with sqlite3.connect(manifest) as db:
        db.execute("DROP TABLE chunk_timeline")
        first = db.execute("SELECT chunk_id FROM chunk_meta ORDER BY chunk_id").fetchone()[0]
        assert timeline.around(db, first, first, 1, 1, Filters()) == ([], [])  # a generation from before: no error
    capsys.readouterr()

    def said() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err

    again = ingest(config, embedder=embedder).sources["acme"]
    assert (again.unchanged, again.added, again.updated) == (10, 0, 0)
    assert "upgraded the store's indexes: 10 conversation chunks placed in time" in said()
    searcher = Searcher(config, embedder)
    hit = searcher.search("D1 secret number 2", limit=1, filters=Filters(groups=["acme:private:D1"]))[0]
    assert hit.text.endswith("D1 secret number 2")
    text = searcher.fetch(hit.id, neighbours=1).text
    assert "D2 secret number 1" in text and "D1 secret number 2" in text and "D2 secret number 2" in text
    ingest(config, embedder=embedder)
    assert "upgraded" not in said()  # once
