"""Contextual chunks through the real anthropic SDK against a local Messages API stub, and without a key."""

from __future__ import annotations

import sqlite3

import pytest

from connectors import load_config
from ingest.pipeline import ingest
from ingest.progress import Progress
from tests.anthropic_stub import KEY, MessagesStub
from tests.conftest import SAMPLE, docs_source, write_config


def situate(body: dict) -> str:
    chunk = body["messages"][0]["content"].split("</chunk>")[0]
    return f"Situated: this passage ({len(chunk.split())} words) is from the Northwind onboarding handbook."


def contextual_config(tmp_path, stub_url: str | None = None):
    extra = f'[claude]\ncontextualize = true\nbase_url = "{stub_url}"\nmax_retries = 0\n' if stub_url else \
        "[claude]\ncontextualize = true\n"
    return load_config(write_config(tmp_path, docs_source("handbook", SAMPLE, include=["*.md"]), extra))


def indexed_texts(store) -> list[str]:
    with sqlite3.connect(store / "manifest.sqlite") as db:
        return [row[0] for row in db.execute("SELECT text FROM chunk_text")]


@pytest.mark.slow
def test_claude_context_is_embedded_cached_and_counted(tmp_path, embedder, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with MessagesStub(situate) as stub:
        config = contextual_config(tmp_path, stub.url)
        first = ingest(config, embedder=embedder, progress=Progress(interval=999))
        calls_after_first = len(stub.requests)
        again = ingest(config, full=True, embedder=embedder, progress=Progress(interval=999))

    chunks = first.total("chunks")
    assert chunks > 0 and calls_after_first == chunks
    assert first.claude_usage["written"] == chunks and first.claude_usage["cached"] == 0
    assert first.claude_usage["input_tokens"] > 0 and first.claude_usage["output_tokens"] > 0
    assert first.claude_usage["cache_write_tokens"] > 0 and first.claude_usage["cache_read_tokens"] > 0
    assert first.contextual.startswith("Claude (claude-haiku-4-5): ")
    assert f"{chunks} written by Claude" in first.contextual and "≈ $" in first.contextual
    # The document rides in a cached system block; the chunk is the user turn.
    request = stub.requests[0]
    assert request["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "<document>" in request["system"][-1]["text"]
    # A rebuild from scratch asks Claude nothing: every sentence comes from the cache.
    assert len(stub.requests) == calls_after_first
    assert again.claude_usage["cached"] == chunks and again.claude_usage["calls"] == 0
    assert f"{chunks} from cache" in again.contextual
    texts = indexed_texts(config.store_path)
    assert len(texts) == chunks and all("Situated: this passage" in t for t in texts)
    assert all(embedder.count_tokens([t])[0] <= embedder.max_tokens for t in texts)


def test_without_a_key_ingest_says_so_and_keeps_headers_only(tmp_path, embedder, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = contextual_config(tmp_path)
    result = ingest(config, embedder=embedder, progress=Progress(interval=999))
    assert result.contextual == "offline (no API key: $ANTHROPIC_API_KEY is not set): deterministic headers only"
    assert result.total("chunks") > 0
    assert not any("Situated" in t for t in indexed_texts(config.store_path))


@pytest.mark.slow
def test_a_claude_outage_never_blocks_ingest(tmp_path, embedder, monkeypatch):
    from tests.anthropic_stub import Fail

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with MessagesStub(lambda body: Fail(500)) as stub:
        config = contextual_config(tmp_path, stub.url)
        result = ingest(config, embedder=embedder, progress=Progress(interval=999))
    assert result.total("chunks") > 0 and result.total("failed") == 0
    assert "HTTP 500 after retries" in result.contextual and "then offline" in result.contextual
    # Three failures in a row switch Claude off; calls already in flight (4 at most) still finish.
    assert 3 <= len(stub.requests) <= 3 + 3 < result.total("chunks")
    assert result.claude_usage["missing"] == result.total("chunks")


SECRET = "AKIA" + "QUESTIONKEY12345"


def ask_back(body: dict) -> str:
    """Likely questions: one in words the handbook never uses for its meals passage, one quoting a secret, and a
    fourth."""
    chunk = body["messages"][0]["content"].split("</chunk>")[0]
    if "45 EUR per day" in chunk:
        return (f"Q: What per diem do I get when I sleep away from home?\nQ: Is key {SECRET} still valid?\n"
                "Q: Who pays?\nQ: A quokka fourth?")
    return "Q: What does this part of the handbook say?"


@pytest.mark.slow
def test_likely_questions_are_keyword_indexed_not_embedded_and_cached(tmp_path, embedder, monkeypatch):
    from server.search import Searcher

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    extra = '[claude]\nlikely_questions = true\nbase_url = "{url}"\nmax_retries = 0\n'
    docs = docs_source("handbook", SAMPLE, include=["*.md"])
    (tmp_path / "plain").mkdir()
    plain = load_config(write_config(tmp_path / "plain", docs))
    plain_run = ingest(plain, embedder=embedder, progress=Progress(interval=999))
    with MessagesStub(ask_back) as stub:
        config = load_config(write_config(tmp_path, docs, extra.format(url=stub.url)))
        first = ingest(config, embedder=embedder, progress=Progress(interval=999))
        asked = len(stub.requests)
        ingest(config, full=True, embedder=embedder, progress=Progress(interval=999))
    assert asked == first.total("chunks") == plain_run.total("chunks")  # no room kept for a context sentence
    assert len(stub.requests) == asked  # the rebuild took every reply from the cache
    assert "starting with \"Q: \"" in stub.requests[0]["messages"][0]["content"]
    assert f"{asked} with likely questions" in first.contextual
    texts = indexed_texts(config.store_path)
    assert sum("What does this part of the handbook say?" in t for t in texts) == asked - 1
    assert not any(SECRET in t for t in texts) and not any("quokka" in t for t in texts)  # masked; three at most

    searcher, before = Searcher(config, embedder), Searcher(plain, embedder)
    hits = searcher.search("per diem when sleeping away from home", limit=1, mode="keyword")
    assert hits and "45 EUR per day" in hits[0].text and "per diem" not in hits[0].text
    assert all("45 EUR per day" not in h.text for h in before.search("per diem when sleeping away from home", limit=1,
                                                                      mode="keyword"))


def test_a_reply_splits_into_its_sentences_and_at_most_three_questions():
    from ingest.contextualize import split_reply

    reply = "\n".join(("Part of the travel policy.", "Q: How much for meals?", "It sits under Travel.",
                       "q: Breakfast too?", "Q:", "Q: c?", "Q: d?"))
    assert split_reply(reply) == ("Part of the travel policy. It sits under Travel.",
                                  ["How much for meals?", "Breakfast too?", "c?"])
    assert split_reply("Only a sentence.") == ("Only a sentence.", [])
