"""A hit is a document's best passage with the document's next best in ``more``, within the result's budget.

On a real store: a leave policy whose sections all speak of annual leave, beside documents that mention it in
passing, searched as `corpus search` and the MCP tool do.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from connectors import load_config
from corpus.claude import Claude
from corpus.config import ClaudeSettings
from ingest.pipeline import ingest
from ingest.progress import Progress
from server import relevance, search
from server.check import check
from server.mcp_server import SearchResult, render_hits
from server.questions import Question
from server.search import Searcher
from store import keyword
from tests.anthropic_stub import KEY, MessagesStub
from tests.conftest import docs_source, write_config

SECTIONS = {
    "Earning annual leave": "Annual leave accrues every pay period: four hours a period in your first three years.",
    "Carrying annual leave over": "At most 240 hours of annual leave carry over into the next leave year.",
    "Asking for annual leave": "Ask for annual leave in HR Links at least three business days ahead.",
    "Annual leave when you go": "Unused annual leave is paid out with your last salary when you leave.",
    "Annual leave and holidays": "A federal holiday inside your annual leave is not counted as leave taken.",
}
RULES = ("Leave is planned with your team well ahead of time.", "Requests are approved by your supervisor in writing.",
         "Balances show on every pay statement you receive.", "Absence without approval is recorded as such.")


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("passages")
    docs = folder / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave policy\n\n" + "".join(f"## {h}\n\n{t}\n\n" for h, t in SECTIONS.items()))
    (docs / "calendar.md").write_text("# Team calendar\n\nPut your annual leave on the team calendar too.\n")
    (docs / "laptop.md").write_text("# Laptops\n\nLaptops go back to IT on your last day.\n")
    parts = (f"## Part {n}\n\nAnnual leave rules. {(rule + ' ') * 16}\n\n" for n, rule in enumerate(RULES))
    (docs / "long.md").write_text("# Long rules\n\n" + "".join(parts))
    config = load_config(write_config(folder, docs_source("handbook", docs), extra="[chunking]\nmin_tokens = 8\n"))
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    searcher = Searcher(config, embedder)
    yield searcher
    searcher.replica.close()


def _passages(hit) -> list:
    return [hit, *hit.more]


def test_a_hit_carries_further_passages_of_its_document_each_cited(searcher):
    (hit,) = searcher.search("annual leave", limit=1, filters=search.NO_FILTERS)
    assert hit.title == "Leave policy" and len(hit.more) == search.PASSAGES - 1
    for passage in hit.more:
        assert passage.id.startswith(hit.doc_id + ":") and passage.id != hit.id
        assert passage.section in SECTIONS and passage.section != hit.section
        assert passage.citation != hit.citation and "#" in passage.citation
        assert passage.text in SECTIONS[passage.section]


def test_every_matching_passage_is_shown_once_and_a_full_hit_lets_its_document_take_another(searcher):
    hits = searcher.search("annual leave", limit=5)
    leave = [p for hit in hits if hit.title == "Leave policy" for p in _passages(hit)]
    assert sorted(p.section for p in leave) == sorted(SECTIONS)  # all five sections, none twice
    first, second = (hit for hit in hits if hit.title == "Leave policy")
    assert len(_passages(first)) == search.PASSAGES and len(_passages(second)) == len(SECTIONS) - search.PASSAGES
    assert hits.index(first) < hits.index(second)


def test_further_passages_stay_within_the_results_budget(searcher):
    """Long passages: one hit asked for has room for its own passage only; three have room for more."""
    (alone,) = searcher.search("annual leave rules planned with your team", limit=1)
    assert alone.title == "Long rules" and alone.more == []
    hits = searcher.search("annual leave rules planned with your team", limit=3)
    carried = sum(len(p.text) + len(p.citation) for hit in hits for p in _passages(hit))
    assert any(hit.more for hit in hits) and carried <= search.RESULT_CHARS * 3


def test_a_hit_shows_its_most_relevant_passages_relevance_and_the_verdict_reads_them_all(searcher):
    """A hit led by a passage that does not answer, carrying one that does, is as relevant as the one that does."""
    query = "How many hours of annual leave carry over into the next leave year?"
    (calendar,) = searcher.search("team calendar", limit=1)
    answer = next(p for hit in searcher.search("annual leave", limit=5) for p in _passages(hit)
                  if p.section == "Carrying annual leave over")
    with searcher.replica.reading() as snapshot:
        terms, vector = keyword.query_terms(snapshot.db, query), searcher.vectors.vector(query)
        (lead,) = relevance.judged(snapshot, query, terms, vector, [replace(calendar, more=[])]).hits
        (alone,) = relevance.judged(snapshot, query, terms, vector, [replace(calendar, id=answer.id, more=[])]).hits
        carried = relevance.judged(snapshot, query, terms, vector, [replace(calendar, more=[answer])])
    assert lead.relevance < alone.relevance == carried.hits[0].relevance
    assert carried.closest_similarity == alone.similarity > lead.similarity


def test_the_model_reads_each_further_passage_quoted_and_cited(searcher):
    found = searcher.find("annual leave", limit=1)
    text = render_hits(SearchResult(query="annual leave", hits=found.hits, answer_in_corpus=found.answer_in_corpus))
    for passage in found.hits[0].more:
        assert f"id={passage.id}\n" in text and passage.citation in text
        assert f"> {passage.text}" in text


def test_the_check_reads_a_hits_further_passages_each_on_its_own(searcher):
    """An expected answer in a further passage is found there, offline and by Claude, and cited to that passage."""
    lead = searcher.search("annual leave", limit=5)[0]
    further = lead.more[0]
    question = Question("annual leave", answer=further.text)
    offline = check(searcher, [question], Claude(ClaudeSettings(), environ={})).outcomes[0]
    assert offline.verdict == "answered" and offline.rests_on == further.id
    assert offline.evidence[0].citation == further.citation and offline.evidence[0].rank == 1
    own = [e.relevance for e in offline.evidence if e.rank == 1]  # each passage's own; the hit shows the best
    assert len(own) == search.PASSAGES and len(set(own)) > 1 and max(own) == lead.relevance

    def reply(body):
        prompt = body["messages"][0]["content"]
        passages = [p.split("\n</passage>")[0] for p in prompt.split("<passage>\n")[1:]]
        return json.dumps({"verdict": "answered", "answer": "As quoted.",
                           "quotes": [{"passage": passages.index(further.text) + 1, "text": further.text}]})

    with MessagesStub(reply) as stub:
        claude = Claude(ClaudeSettings(max_retries=0, base_url=stub.url), environ={"ANTHROPIC_API_KEY": KEY})
        judged = check(searcher, [Question("annual leave")], claude).outcomes[0]
    assert judged.judged_by == "claude" and judged.rests_on == further.id
    assert judged.quotes[0].citation == further.citation


def test_a_sessions_check_keeps_the_most_relevant_passages_that_fit_its_room(searcher):
    question, offline = Question("annual leave"), Claude(ClaudeSettings(), environ={})
    full = check(searcher, [question], offline).outcomes[0].evidence
    best = max(full, key=lambda e: e.relevance)
    room = sum(len(e.text) for e in full) // 2
    kept = check(searcher, [question], offline, room=room).outcomes[0].evidence
    assert best in kept and sum(len(e.text) for e in kept) <= room < sum(len(e.text) for e in full)
    assert [e.id for e in full if e in kept] == [e.id for e in kept]  # in the order the full check gives them
    assert check(searcher, [question], offline, room=1).outcomes[0].evidence == [best]  # the best, whatever its size
