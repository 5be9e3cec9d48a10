"""Chunks follow structure and never exceed what the model reads, measured in its own tokenizer."""

from __future__ import annotations

import pytest

from connectors.docs import DocsConnector, Settings
from corpus.errors import ItemError
from corpus.records import Block, Citation, Document, Locator
from ingest.chunker import Chunker
from tests.conftest import shared


def _doc(*blocks: Block, title: str = "Guide") -> Document:
    return Document(id="d1", source="s", kind="docs", native_id="g.md", title=title,
                    citation=Citation("file:///g.md", "s/g.md"), blocks=blocks, digest="x")


@pytest.fixture(scope="module")
def chunker(embedder):
    return Chunker(embedder, max_tokens=embedder.max_tokens, min_tokens=48, overlap_tokens=32)


def test_small_sections_merge_and_carry_the_first_sections_citation(chunker):
    a = Block("Short intro.", Locator(headings=("Intro",)), Citation("u#intro", "intro"))
    b = Block("Another short part.", Locator(headings=("Next",)), Citation("u#next", "next"))
    (chunk,) = chunker.chunk(_doc(a, b))
    assert chunk.text == "Short intro.\nAnother short part."
    assert chunk.citation.uri == "u#intro"
    assert chunk.header == "Guide | Intro"


def test_big_enough_sections_stay_apart(chunker):
    long_a = Block("Alpha policy sentence number one is here. " * 8, Locator(headings=("A",)))
    long_b = Block("Beta policy sentence number two is here. " * 8, Locator(headings=("B",)))
    chunks = chunker.chunk(_doc(long_a, long_b))
    assert [c.locator.headings for c in chunks] == [("A",), ("B",)]


def test_long_block_splits_at_sentences_with_overlap(chunker, embedder):
    sentences = [f"Rule {i} says that expense number {i} needs a receipt from the vendor." for i in range(80)]
    chunks = chunker.chunk(_doc(Block(" ".join(sentences), Locator(headings=("Receipts",)))))
    assert len(chunks) > 2
    for chunk in chunks:
        assert embedder.count_tokens([chunk.embed_text])[0] <= embedder.max_tokens
        assert chunk.text.split("\n")[0].startswith("Rule ")  # cut at a sentence boundary
    rebuilt = chunks[0].text.split("\n")
    for before, after in zip(chunks, chunks[1:], strict=False):
        head, tail = after.text.split("\n"), before.text.split("\n")
        overlap = next(k for k in range(1, 4) if tail[-k:] == head[:k])  # trailing sentences repeated
        assert embedder.count_tokens([" ".join(head[:overlap])])[0] <= 32
        rebuilt += head[overlap:]
    assert rebuilt == sentences


def test_run_on_text_without_sentences_is_cut_by_word_pieces(chunker, embedder):
    chunks = chunker.chunk(_doc(Block("x1y2z3 " * 900)))
    assert len(chunks) > 3
    assert all(embedder.count_tokens([c.embed_text])[0] <= embedder.max_tokens for c in chunks)


def test_people_and_time_spans_are_kept(chunker):
    turns = [Block(f"Turn {i}.", Locator(start=float(i * 10), end=float(i * 10 + 9)), people=(f"P{i % 2}",))
             for i in range(3)]
    (chunk,) = chunker.chunk(_doc(*turns))
    assert (chunk.locator.start, chunk.locator.end) == (0.0, 29.0)
    assert chunk.people == ("P0", "P1")


@pytest.mark.slow
def test_no_chunk_of_the_18f_handbook_exceeds_the_model_limit(chunker, embedder):
    connector = DocsConnector(Settings(name="18f", kind="docs", path=shared("docs", "18f-handbook")))
    chunks = []
    for item in connector.items():
        try:
            chunks.extend(chunker.chunk(connector.load(item)))
        except ItemError:
            continue
    assert len(chunks) > 1500
    counts = embedder.count_tokens([c.embed_text for c in chunks])
    assert max(counts) <= embedder.max_tokens
    # chunks are actually filled, not one paragraph each
    assert sum(counts) / len(counts) > 80
