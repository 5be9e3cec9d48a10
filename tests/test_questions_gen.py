"""`corpus questions`: offline on the 18F handbook into a file `corpus check` runs; with Claude through the stub
(the document cached, every question with its source, a malformed reply falling back and saying so); the open
gap themes' questions join the file."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from cli.main import main
from connectors import load_config
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.questions import load_questions
from store.questionlog import QuestionLog
from tests.anthropic_stub import KEY, MessagesStub
from tests.conftest import docs_source, shared, write_config

HANDBOOK_PARTS = ["pages/getting-started/**", "pages/hiring-staying-or-changing-jobs/**"]

LEAVE = """# Parental leave

## How much leave do I get?

Employees get 16 weeks of paid parental leave, to be taken within the first year after the birth or adoption.

## Who approves it?

Your manager approves parental leave in Workday; HR confirms the dates.
"""

LAPTOPS = """# Laptops

Every new hire receives a MacBook Pro on their first day. Lost laptops are reported in #it-help within one hour.
"""


@pytest.fixture(scope="module")
def handbook(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("handbook")
    config = write_config(folder, docs_source("handbook", shared("docs", "18f-handbook"), include=HANDBOOK_PARTS))
    ingest(load_config(config), embedder=embedder, progress=Progress(interval=999))
    return config


@pytest.mark.slow  # a real corpus: two folders of the 18F handbook ingested
def test_offline_questions_from_the_handbook_are_a_file_corpus_check_runs(handbook, tmp_path, capsys):
    out = tmp_path / "questions.md"
    assert main(["--config", str(handbook), "questions", "--per-source", "12", "--out", str(out), "--offline"]) == 0
    questions = load_questions(out)
    assert len(questions) == 12
    assert all(q.source == "handbook" and q.text.endswith("?") and q.section.startswith("handbook: ")
               for q in questions)
    assert sum(q.answer is not None for q in questions) >= 10
    assert len({q.section for q in questions}) >= 6  # spread over the documents, not one page's headings
    assert any(not q.text.startswith("What does the handbook say about") for q in questions)  # FAQ-shaped first
    capsys.readouterr()

    assert main(["--config", str(handbook), "check", str(out), "--offline", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["questions"]) == 12
    assert result["answered"] >= 8, [(q["question"]["text"], q["verdict"]) for q in result["questions"]]


@pytest.fixture
def small(tmp_path, embedder):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "leave.md").write_text(LEAVE)
    (tmp_path / "docs" / "laptops.md").write_text(LAPTOPS)
    config = write_config(tmp_path, docs_source("wiki", tmp_path / "docs"))
    ingest(load_config(config), embedder=embedder, progress=Progress(interval=999))
    return config


def _document(body: dict) -> str:
    cached = [b for b in body.get("system") or [] if b.get("cache_control")]
    return cached[0]["text"] if cached else ""


def test_claude_writes_questions_per_document_cached_with_sources_and_a_malformed_reply_falls_back(
        small, tmp_path, monkeypatch, capsys):
    def reply(body: dict) -> str:
        document = _document(body)
        if 'title="Laptops"' in document:
            return "I would ask about laptops, mostly."  # not JSON: the offline questions stand in
        return json.dumps({"questions": [
            {"question": "How long is parental leave?", "answer": "16 weeks of paid parental leave"},
            {"question": "Can I bring my dog?", "answer": "dogs are welcome on Fridays"},  # not in the document
        ]})

    out = tmp_path / "claude.md"
    with MessagesStub(reply) as stub:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        config = small.read_text().replace('[corpus]', f'[claude]\nbase_url = "{stub.url}"\n\n[corpus]')
        small.write_text(config)
        assert main(["--config", str(small), "questions", "--per-source", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out

    assert len(stub.requests) == 2
    for body in stub.requests:
        document = _document(body)
        assert document.startswith("<document title=") and body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        assert document not in body["messages"][0]["content"]  # the document only in the cached prefix
    questions = load_questions(out)
    assert all(q.source == "wiki" for q in questions)
    texts = [q.text for q in questions]
    assert "How long is parental leave?" in texts and "Can I bring my dog?" not in texts
    assert next(q for q in questions if q.text == "How long is parental leave?").answer == \
        "16 weeks of paid parental leave"
    assert any(q.section == "wiki: Laptops" for q in questions)  # the fallback's offline questions
    text = out.read_text()
    assert re.search(r"Note: wiki: Laptops: Claude's reply did not fit .*offline questions instead", text)
    assert "Claude's reply did not fit" in printed and "malformed reply" in text


def test_open_gap_themes_join_the_questions(small, tmp_path):
    log = QuestionLog(tmp_path / "store")
    now = datetime.now(UTC)
    for n, question in enumerate(["Is there a company gym?", "Do we get a gym membership?",
                                  "Does the company pay for the gym?"]):
        log.record(question, f"person-{n}", verdict="unlikely", top_relevance=0.0, time=now - timedelta(hours=n))
    log.flush()
    out = tmp_path / "questions.md"
    assert main(["--config", str(small), "questions", "--per-source", "2", "--out", str(out), "--offline"]) == 0
    questions = load_questions(out)
    gap = [q for q in questions if q.section.startswith("Asked but not answered: ")]
    assert {q.text for q in gap} == {"Is there a company gym?", "Do we get a gym membership?",
                                     "Does the company pay for the gym?"}
    assert "gym" in gap[0].section and all(q.source is None for q in gap)
    assert len(questions) == 2 + 3
