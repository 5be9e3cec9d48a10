"""server.relevance: a relevance with a meaning on every hit, a verdict on every result, a result within budget.

On a real slice of the 18F handbook (its getting-started and travel-and-leave pages), searched as `corpus
search` and the MCP tool do.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from connectors import load_config
from corpus.claude import Claude
from corpus.config import ClaudeSettings
from ingest.pipeline import ingest
from ingest.progress import Progress
from server import relevance
from server.check import check
from server.mcp_server import SearchResult, render_hits
from server.questions import Question
from server.search import Searcher
from store import keyword
from tests.conftest import docs_source, shared, write_config

ANSWERABLE = "Who has to approve my travel before I book a trip?"
UNANSWERABLE = "Is there a chess club I can join after work?"
NAMED = "How do I get approval for travel and book my flight, hotel and rental car in Concur?"  # a tool it names
ELSEWHERE = NAMED[:-1] + " for a trip to Zanzibar?"  # and a place it never names
BUDGET_TOKENS = 2500  # a limit-5 result, characters / 4 (issue 12)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    handbook = shared("docs", "18f-handbook")
    folder = tmp_path_factory.mktemp("relevance")
    config = load_config(write_config(folder, docs_source(
        "handbook", handbook, include=["pages/getting-started/**", "pages/travel-and-leave/**"])))
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    searcher = Searcher(config, embedder)
    yield searcher
    searcher.replica.close()


def test_relevance_is_between_0_and_1_and_rises_with_each_signal():
    similarities, coverages = np.linspace(-1, 1, 41), np.linspace(0, 1, 21)
    grid = np.array([[relevance.relevance(s, c) for c in coverages] for s in similarities])
    assert ((grid >= 0) & (grid <= 1)).all()
    assert (np.diff(grid, axis=0) > 0).all() and (np.diff(grid, axis=1) > 0).all()
    assert [relevance.match(v) for v in (relevance.STRONG, relevance.PARTIAL, relevance.PARTIAL - 0.01)] == \
        ["strong", "partial", "weak"]


def test_the_verdict_rises_with_closeness_and_with_the_words_held():
    order = ["unlikely", "possible", "likely"]
    for similarity in np.linspace(0, 1, 21):
        verdicts = [order.index(relevance.verdict(similarity, held)) for held in np.linspace(0, 1, 21)]
        assert verdicts == sorted(verdicts)
    for held in np.linspace(0, 1, 21):
        verdicts = [order.index(relevance.verdict(similarity, held)) for similarity in np.linspace(0, 1, 21)]
        assert verdicts == sorted(verdicts)
    assert relevance.verdict(0.3, 1.0) == "unlikely"  # far in meaning, whatever words match
    assert relevance.verdict(0.65, 0.2) == "unlikely"  # close in meaning, but what it asks about is named nowhere
    assert relevance.verdict(0.75, 0.9) == "likely"


def test_a_name_is_a_word_capitalised_inside_a_sentence_or_one_with_a_digit():
    assert relevance.names("What is the parental leave policy for the Berlin office?") == {"berlin": "Berlin"}
    assert relevance.names("Who gives the keynote at PowerShell Summit 2027?") == \
        {"powershell": "PowerShell", "summit": "Summit", "2027": "2027"}
    # a sentence's first word is capitalised whatever it is, and "I" is no name
    assert relevance.names("Where do I park? Visitors use the garage. I'm told Bay 4 is free") == \
        {"bay": "Bay", "4": "4"}
    assert relevance.names("how do i request leave") == {}
    assert relevance.names("Which tools did the March 2016 meetup cover on Tuesday?") == {"2016": "2016"}
    # written in capitals or title case, a capital is no sign of a name
    assert relevance.names("WHAT IS THE TRAVEL POLICY FOR BERLIN IN 2027?") == {"2027": "2027"}
    assert relevance.names("Concur Travel Approval") == {}


def test_a_name_no_first_hit_holds_puts_the_verdict_a_step_lower():
    assert [relevance.verdict(0.7, 0.8, unmatched) for unmatched in (False, True)] == ["likely", "possible"]
    assert [relevance.verdict(0.6, 0.6, unmatched) for unmatched in (False, True)] == ["possible", "unlikely"]
    assert relevance.verdict(0.3, 0.2, True) == "unlikely"


def share(db, query: str, rowids: list[int]) -> np.ndarray:
    weights, held = relevance.words(keyword.query_terms(db, query), np.array(rowids))
    return weights @ held / weights.sum()


def _rows(db, expression: str) -> list[int]:
    return [r for (r,) in db.execute("SELECT rowid FROM chunk_text WHERE chunk_text MATCH ? LIMIT 5", (expression,))]


@pytest.mark.slow
def test_coverage_is_the_idf_weighted_share_of_the_query_words_a_passage_holds(searcher):
    with searcher.replica.reading() as snapshot:
        db = snapshot.db
        both, common, rare = _rows(db, "leave AND approve"), _rows(db, "leave NOT approve"), \
            _rows(db, "approve NOT leave")
        count = "SELECT count(*) FROM chunk_text WHERE chunk_text MATCH ?"
        assert db.execute(count, ("approve",)).fetchone()[0] < db.execute(count, ("leave",)).fetchone()[0]
        assert both and common and rare
        query = "approve leave"
        held = share(db, query, both + common + rare)
        assert held[:len(both)] == pytest.approx(1.0)
        assert max(held[len(both):len(both) + len(common)]) < min(held[len(both) + len(common):]) < 1
        assert (held[len(both):] > 0).all()
        # a word the corpus never uses is the rarest of all: a passage cannot hold it, so no passage covers it
        unknown = share(db, f"{query} zyzzyvas", both)
        assert (unknown < 0.5).all() and (unknown > 0).all()


def result(found: relevance.Found, query: str) -> SearchResult:
    return SearchResult(query=query, hits=found.hits, answer_in_corpus=found.answer_in_corpus,
                        closest_similarity=found.closest_similarity, words_held=found.words_held,
                        unmatched_names=found.unmatched_names)


@pytest.mark.slow
def test_a_question_naming_what_no_hit_holds_is_a_step_less_likely(searcher):
    named, elsewhere = searcher.find(NAMED, limit=5), searcher.find(ELSEWHERE, limit=5)
    assert named.unmatched_names == [] and elsewhere.unmatched_names == ["Zanzibar"]
    steps = list(relevance.VERDICTS)
    unnamed = relevance.verdict(elsewhere.closest_similarity, elsewhere.words_held)
    assert unnamed != "unlikely" and steps.index(elsewhere.answer_in_corpus) == steps.index(unnamed) - 1
    assert named.answer_in_corpus == relevance.verdict(named.closest_similarity, named.words_held) != "unlikely"
    assert "no first hit names Zanzibar)" in render_hits(result(elsewhere, ELSEWHERE)).splitlines()[0]
    (outcome,) = check(searcher, [Question(ELSEWHERE)], Claude(ClaudeSettings(), environ={})).outcomes
    assert outcome.verdict == "missing"
    assert "search calls an answer in the corpus unlikely: no first hit names Zanzibar" in outcome.reasons


@pytest.mark.slow
def test_an_answerable_question_is_likely_and_an_unanswerable_one_unlikely(searcher):
    found = searcher.find(ANSWERABLE, limit=5)
    assert found.answer_in_corpus == "likely"
    best = max(found.hits, key=lambda h: h.relevance)
    assert best.match == "strong" and "approv" in best.text.lower()
    assert all(0 <= h.relevance <= 1 and -1 <= h.similarity <= 1 and 0 <= h.coverage <= 1 for h in found.hits)
    missing = searcher.find(UNANSWERABLE, limit=5)
    assert missing.hits and missing.answer_in_corpus == "unlikely"
    assert max(h.relevance for h in missing.hits) < best.relevance
    assert missing.closest_similarity < found.closest_similarity and missing.words_held < found.words_held
    text = render_hits(result(missing, UNANSWERABLE))
    assert text.startswith("answer in the corpus: unlikely (the corpus probably does not say; closest similarity")
    assert "relevance 0." in text and searcher.search(UNANSWERABLE, limit=5) == missing.hits


@pytest.mark.slow
def test_corpus_check_reads_the_same_signal(searcher):
    result = check(searcher, [Question(ANSWERABLE), Question(UNANSWERABLE)], Claude(ClaudeSettings(), environ={}))
    answered, missing = result.outcomes
    assert (answered.verdict, missing.verdict) == ("answered", "missing")
    hits = searcher.search(ANSWERABLE, limit=5)
    assert answered.evidence[0].relevance == max(h.relevance for h in hits)
    assert answered.brief.startswith(f"relevance {answered.evidence[0].relevance:.2f}; ")
    assert "search calls an answer in the corpus unlikely" in missing.reasons


@pytest.mark.slow
@pytest.mark.parametrize("query", [ANSWERABLE, UNANSWERABLE, "leave", "What should I do in my first week, "
                                   "which classes do I take, how do I log in, and when do I get my PIV card?"])
def test_a_limit_5_result_stays_within_its_token_budget(searcher, query):
    found = searcher.find(query, limit=5)
    assert len(found.hits) == 5
    assert query != "leave" or sum(len(hit.more) for hit in found.hits) >= 3  # further passages are counted too
    reply = result(found, query)
    assert len(render_hits(reply)) / 4 <= BUDGET_TOKENS
    assert len(json.dumps(reply.model_dump(mode="json"))) / 4 <= BUDGET_TOKENS


def test_how_much_and_how_many_ask_nothing_the_corpus_lacks(tmp_path, embedder):
    """In a small store "much" is a word no passage uses, so it weighed most and turned an answered question
    "unlikely"; it only frames the question, as "how" does."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "oncall.md").write_text("# On-call\n\nEngineers on the on-call rotation receive a stipend of 300 EUR "
                                    "for each week they carry the pager, paid with the next salary.\n")
    (docs / "meals.md").write_text("# Meals\n\nMeals on business trips are reimbursed up to 40 EUR a day; "
                                   "receipts go into the expense tool within thirty days.\n")
    config = load_config(write_config(tmp_path, docs_source("handbook", docs)))
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    searcher = Searcher(config, embedder)
    try:
        for question in ("How much is the on-call stipend?", "How many EUR is the on-call stipend?"):
            found = searcher.find(question, limit=5)
            assert found.hits[0].text.count("stipend") and found.answer_in_corpus != "unlikely", question
    finally:
        searcher.replica.close()
