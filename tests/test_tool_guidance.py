"""The tools tell the model what exists: unknown names are errors that list the valid ones, a person is
found by any part of their name, sources name their people, and the server says how to search and cite.

The access attack first: a caller without the `hr` group must not learn a hidden person's name or a hidden
source's name from an error, a match or a listing.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from connectors import load_config
from corpus.errors import CorpusError
from ingest.pipeline import ingest
from server.search import Searcher
from store.filters import Filters
from tests.conftest import docs_source, write_config

PAGES = {
    "wiki/travel.md": ("Sydney Smith", "# Travel\n\nTravel is approved by your team lead before you book anything."),
    "wiki/laptops.md": ("Alex Kim", "# Laptops\n\nLaptops are ordered through the IT desk on your first day."),
    "wiki/oncall.md": ("Sydney Smith, Alex Kim", "# On-call\n\nThe on-call rota changes every Monday morning."),
    "hr/review.md": ("Dana Whitfield", "# Reviews\n\nSalary reviews happen in March after the calibration round."),
}


@pytest.fixture(scope="module")
def config(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("guidance")
    for name, (authors, body) in PAGES.items():
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"---\nauthors: [{authors}]\n---\n{body}\n")
    config = load_config(write_config(folder, docs_source("wiki", folder / "wiki")
                                      + docs_source("hr", folder / "hr", access=["hr"])))
    ingest(config, embedder=embedder)
    return config


@pytest.fixture(scope="module")
def searcher(config, embedder):
    return Searcher(config, embedder)


def _error(call) -> str:
    with pytest.raises(CorpusError) as raised:
        call()
    return str(raised.value)


def test_a_misspelt_source_or_kind_is_an_error_naming_the_valid_ones(searcher):
    message = _error(lambda: searcher.search("travel", filters=Filters(sources=["wkii"])))
    assert "'wkii'" in message and "wiki" in message and "hr" in message
    message = _error(lambda: searcher.search("travel", filters=Filters(kinds=["slak"])))
    assert "'slak'" in message and "docs, meetings, slack" in message.replace("beir, ", "")
    assert searcher.search("travel", filters=Filters(kinds=["slack"])) == []  # a kind with no source here
    assert searcher.search("travel", filters=Filters(sources=["wiki"]))  # a right name still searches


def test_a_person_is_found_by_any_part_of_their_name_in_any_case(searcher):
    def titles(*people: str) -> set[str]:
        return {h.title for h in searcher.search("what should I know", limit=20, filters=Filters(people=people))}

    full = titles("Sydney Smith")
    assert full == {"Travel", "On-call"}
    assert titles("sydney") == titles("SMITH") == titles("  sydney   smith ") == full
    assert titles("Kim") == {"Laptops", "On-call"}
    message = _error(lambda: searcher.search("travel", filters=Filters(people=["Sidney"])))
    assert "'Sidney'" in message and "list_sources" in message


def test_sources_name_their_most_present_people(searcher):
    people = {s.name: s.people for s in searcher.sources()}
    assert people["wiki"][:2] in (["Alex Kim", "Sydney Smith"], ["Sydney Smith", "Alex Kim"])  # as written
    assert people["hr"] == ["Dana Whitfield"]


def test_a_caller_without_the_group_learns_no_hidden_name(searcher):
    eng = ["eng"]
    assert all("Dana Whitfield" not in s.people for s in searcher.sources(eng))
    hidden = _error(lambda: searcher.search("reviews", filters=Filters(people=["Dana"], groups=eng)))
    missing = _error(lambda: searcher.search("reviews", filters=Filters(people=["Zork"], groups=eng)))
    assert hidden.replace("Dana", "X") == missing.replace("Zork", "X")
    hidden = _error(lambda: searcher.search("reviews", filters=Filters(sources=["hr"], groups=eng)))
    missing = _error(lambda: searcher.search("reviews", filters=Filters(sources=["zz"], groups=eng)))
    assert hidden.replace("'hr'", "X") == missing.replace("'zz'", "X")
    assert "hr" not in hidden.replace("'hr'", "X")
    # the hr group does see the person and the source
    assert searcher.search("reviews", filters=Filters(people=["dana"], sources=["hr"], groups=["hr"]))


@pytest.mark.slow
def test_the_server_says_how_to_search_read_on_and_cite(config):
    params = StdioServerParameters(command=sys.executable, cwd=str(config.root),
                                   args=["-m", "cli.main", "--config", str(config.root / "corpus.toml"), "serve",
                                         "--standalone"])

    async def run():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            started = await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
            misspelt = await session.call_tool("search", {"query": "travel", "sources": ["wkii"]})
            by_first_name = await session.call_tool("search", {"query": "travel", "people": ["sydney"]})
            listed = await session.call_tool("list_sources", {})
            return started.instructions, tools, misspelt, by_first_name, listed

    instructions, tools, misspelt, by_first_name, listed = asyncio.run(run())
    for words in ("fetch", "before and after", "cite", "note:", "list_sources", "any part of a person's name"):
        assert words in instructions, words
    assert "superseded" in tools["search"].description and "conflicts with" in tools["search"].description
    assert misspelt.is_error and "'wkii'" in misspelt.content[0].text and "wiki" in misspelt.content[0].text
    assert not by_first_name.is_error and by_first_name.structured_content["hits"][0]["title"] == "Travel"
    assert "people: " in listed.content[0].text and "Sydney Smith" in listed.content[0].text
