"""`corpus check`: question files, the offline rule, Claude's judgement through the stub, reports, exit codes."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from connectors import load_config
from corpus.claude import Claude
from corpus.errors import ConfigError
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.check import CheckResult, Evidence, check, judge_offline
from server.check_report import clip, to_html, to_markdown
from server.questions import Question, load_questions
from server.search import Searcher
from tests.anthropic_stub import KEY, MessagesStub
from tests.conftest import REPO, SAMPLE, docs_source, shared, write_config

QUESTIONS = REPO / "sample" / "questions" / "northwind.md"


def test_question_files_in_markdown_yaml_and_toml(tmp_path):
    md = load_questions(QUESTIONS)
    assert md[0] == Question("How does the on-call hand-off work?", "Engineering")
    meal = next(q for q in md if q.text.startswith("What is the meal"))
    assert (meal.section, meal.answer) == ("People", "45 EUR per day")
    assert next(q for q in md if q.text.startswith("How much")).source == "handbook"

    (tmp_path / "q.yaml").write_text("IT:\n  - How often do we get a new laptop?\n  - question: Who runs IT?\n"
                                     "    source: handbook\n")
    assert load_questions(tmp_path / "q.yaml") == [Question("How often do we get a new laptop?", "IT"),
                                                   Question("Who runs IT?", "IT", source="handbook")]
    (tmp_path / "q.toml").write_text('[[questions]]\nquestion = "Who runs IT?"\nanswer = "Rafael"\n')
    assert load_questions(tmp_path / "q.toml") == [Question("Who runs IT?", answer="Rafael")]

    (tmp_path / "bad.toml").write_text('[[questions]]\nquestion = "Who?"\nexpected = "x"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: question 1: unknown key 'expected'"):
        load_questions(tmp_path / "bad.toml")
    (tmp_path / "empty.md").write_text("# Nothing here\n\nJust prose.\n")
    with pytest.raises(ConfigError, match="no questions found"):
        load_questions(tmp_path / "empty.md")
    (tmp_path / "q.csv").write_text("question\nWho?\n")
    with pytest.raises(ConfigError, match="must be a .md, .yaml or .toml"):
        load_questions(tmp_path / "q.csv")


@pytest.fixture(scope="module")
def sample_corpus(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("check")
    config = load_config(write_config(folder, docs_source("handbook", SAMPLE)))
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    searcher = Searcher(config, embedder)
    yield config, searcher
    searcher.replica.close()


QUIZ = [
    Question("Which team owns billing-api?"),
    Question("What is the meal expense limit when travelling?", answer="45 EUR per day"),
    Question("What is the meal expense limit when travelling?", answer="30 EUR per day", source="handbook"),
    Question("How do I apply for a parking permit for my electric scooter on Mars?"),
    Question("Who is the owner of billing-api?", source="elsewhere"),
]


def test_offline_verdicts_follow_the_evidence_and_say_why(sample_corpus):
    _, searcher = sample_corpus
    result = check(searcher, QUIZ, Claude(load_config_claude(), environ={}))
    verdicts = [o.verdict for o in result.outcomes]
    # the last is answered (its "Ownership summary" passage among the hits) but not from the source it names
    assert verdicts == ["answered", "answered", "partly", "missing", "partly"]
    owns = result.outcomes[0]
    assert owns.evidence[0].citation.endswith("ledgerline-architecture.docx")
    assert owns.evidence[0].found_by == "dense and keyword" and owns.evidence[0].similarity > 0.5
    assert "100% of the expected answer's words" in " ".join(result.outcomes[1].reasons)
    assert "expected source 'elsewhere' is not among the top passages" in result.outcomes[4].reasons
    assert result.coverage() == pytest.approx((1 + 1 + 0.5 + 0 + 0.5) / 5)
    assert result.mode.startswith("offline (no API key") and "retrieval evidence only" in result.mode


def load_config_claude(**update):
    from corpus.config import ClaudeSettings

    return ClaudeSettings(max_retries=0, **update)


def test_claude_answers_with_verbatim_quotes_or_is_not_trusted(sample_corpus):
    _, searcher = sample_corpus

    def reply(body):
        prompt = body["messages"][0]["content"]
        if "Which team owns billing-api" in prompt:
            passage = prompt.split("<passage>\n", 1)[1].split("\n</passage>")[0]
            words = " ".join(passage.split()[:8])
            return json.dumps({"verdict": "answered", "answer": "The Payments team.",
                               "quotes": [{"passage": 1, "text": words}]})
        if "meal" in prompt:
            return json.dumps({"verdict": "answered", "answer": "100 EUR.",
                               "quotes": [{"passage": 1, "text": "meals are covered up to 100 EUR per day"}]})
        if "Mars" in prompt:
            return json.dumps({"verdict": "missing", "answer": "Probably at the front desk.", "quotes": []})
        return "Sure! The answer is in passage 2."

    with MessagesStub(reply) as stub:
        claude = Claude(load_config_claude(base_url=stub.url), environ={"ANTHROPIC_API_KEY": KEY})
        result = check(searcher, QUIZ, claude)
    owns, meal, _, mars, malformed = result.outcomes
    assert owns.judged_by == "claude" and owns.verdict == "answered" and owns.answer == "The Payments team."
    assert len(owns.quotes) == 1 and owns.quotes[0].citation.endswith("ledgerline-architecture.docx")
    assert meal.judged_by == "offline"  # an invented quote is not evidence
    assert "Claude's quotes were not found in the passages" in meal.reasons[0]
    assert mars.judged_by == "claude" and mars.verdict == "missing" and mars.answer is None
    assert malformed.judged_by == "offline" and "malformed reply" in result.mode
    assert "<passage>" in stub.requests[0]["messages"][0]["content"]


def test_cli_reports_json_and_min_coverage(sample_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config, _ = sample_corpus
    base = ["--config", str(config.root / "corpus.toml"), "check", str(QUESTIONS)]
    assert main([*base, "--report", str(tmp_path / "r.md")]) == 0
    out = capsys.readouterr().out
    assert "coverage" in out and "mode: offline (no API key" in out
    markdown = (tmp_path / "r.md").read_text()
    assert markdown.index("## Coverage by section") < markdown.index("## Questions, gaps first")
    first_question = markdown.split("## Questions, gaps first", 1)[1]
    assert first_question.index("**MISSING**") < first_question.index("**ANSWERED**")  # gaps first

    assert main([*base, "--report", str(tmp_path / "r.html"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["questions"]) == 10 and 0 < data["coverage"] < 1
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page and "Coverage by section" in page

    assert main([*base, "--min-coverage", "99%"]) == 1
    assert "is below --min-coverage 99%" in capsys.readouterr().err
    assert main([*base, "--min-coverage", "0.1"]) == 0



def test_passages_are_cut_at_a_word_end_with_an_ellipsis():
    text = "Fill out the form before you leave, so that the current\n  team can hand over your accounts."
    assert clip(text, 55) == "Fill out the form before you leave, so that the current…"
    assert clip(text, 52) == "Fill out the form before you leave, so that the…"  # never "the cur"
    assert clip("Short and whole.", 55) == "Short and whole."
    assert clip("x" * 300, 200) == "x" * 200 + "…"


def evidence(rank: int, similarity: float, text: str, relevance: float) -> Evidence:
    return Evidence(id=f"d{rank}:0", doc_id=f"d{rank}", title=f"Page {rank}", source="handbook",
                    citation=f"file:///p{rank}.md", citation_label=f"p{rank}.md", text=text,
                    similarity=similarity, found_by="dense and keyword" if rank != 2 else "dense", rank=rank,
                    coverage=1.0, relevance=relevance)


def test_the_passage_a_verdict_rests_on_is_shown_first_and_its_signals_in_words():
    ranked = [evidence(n, s, f"passage {n} " + "words about travel approval " * 12, r)
              for n, s, r in ((1, 0.43, 0.3), (2, 0.42, 0.2), (3, 0.41, 0.2), (4, 0.40, 0.1), (5, 0.58, 0.9))]
    outcome = judge_offline(Question("Who approves my travel?"), ranked, "likely")
    assert outcome.verdict == "answered" and outcome.rests_on == "d5:0"
    assert [e.rank for e in outcome.evidence] == [5, 1, 2, 3, 4]
    assert outcome.reasons[0] == "rests on “Page 5” (search rank 5), relevance 0.90: close in meaning to the " \
                                 "question (similarity 0.58)"
    assert outcome.brief == "relevance 0.90; close in meaning; 100% of key terms; found by both meaning and " \
                            "keyword search"
    result = CheckResult("offline", [outcome])
    markdown = to_markdown(result, "t")
    evidence_lines = [line for line in markdown.splitlines() if line.startswith("  - [")]
    assert len(evidence_lines) == 3 and evidence_lines[0].startswith("  - [p5.md](file:///p5.md) (the verdict rests "
                                                                     "on this passage; search rank 5, close in "
                                                                     "meaning (0.58)")
    assert all(line.endswith("…") and line[:-1].split()[-1] in {"words", "about", "travel", "approval"}
               for line in evidence_lines)
    assert "similar ·" not in markdown and "/2 terms" not in markdown
    page = to_html(result, "t")
    assert page.index("p5.md") < page.index("p1.md") and "the verdict rests on this passage" in page


def test_claude_verdict_rests_on_the_passage_it_quotes(sample_corpus):
    _, searcher = sample_corpus
    question = Question("Which team owns billing-api?")

    def reply(body):
        prompt = body["messages"][0]["content"]
        passages = [p.split("\n</passage>")[0] for p in prompt.split("<passage>\n")[1:]]
        return json.dumps({"verdict": "answered", "answer": "See the quote.",
                           "quotes": [{"passage": 0, "text": " ".join(passages[-1].split()[:6])},
                                      {"passage": 3, "text": " ".join(passages[2].split()[:6])}]})

    with MessagesStub(reply) as stub:
        claude = Claude(load_config_claude(base_url=stub.url), environ={"ANTHROPIC_API_KEY": KEY})
        outcome = check(searcher, [question], claude).outcomes[0]
    assert outcome.judged_by == "claude" and len(outcome.quotes) == 1  # passage 0 is no passage, not the last one
    basis = outcome.evidence[0]
    assert outcome.rests_on == basis.id and outcome.quotes[0].citation == basis.citation
    assert outcome.quotes[0].text in " ".join(basis.text.split())  # the third passage Claude read
    hits = searcher.search(question.text, limit=5)
    rank = next(n for n, hit in enumerate(hits, start=1) if basis.id in {hit.id, *(p.id for p in hit.more)})
    assert basis.rank == rank and outcome.reasons[0].startswith(f"rests on “{basis.title}” (search rank {rank})")


@pytest.mark.slow
def test_who_approves_my_travel_on_the_18f_handbook_against_a_chosen_source(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    travel = shared("docs", "18f-handbook")
    config_file = write_config(tmp_path, docs_source("travel", travel,
                                                     include=["pages/travel-and-leave/travel-and-leave-policies/*"])
                               + docs_source("northwind", SAMPLE))
    assert main(["--config", str(config_file), "ingest"]) == 0
    questions = tmp_path / "q.md"
    questions.write_text("## Travel\n\n- Who approves my travel?\n")
    base = ["--config", str(config_file), "check", str(questions), "--report", str(tmp_path / "r.md")]
    capsys.readouterr()

    assert main([*base, "--source", "handbok"]) == 2
    assert "unknown source 'handbok'; the sources are: travel, northwind" in capsys.readouterr().err

    assert main([*base, "--source", "travel", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sources"] == ["travel"]
    outcome = data["questions"][0]
    assert {e["source"] for e in outcome["evidence"]} == {"travel"}
    first = outcome["evidence"][0]
    assert outcome["rests_on"] == first["id"] and first["relevance"] == max(e["relevance"]
                                                                               for e in outcome["evidence"])
    assert "approv" in first["text"].lower()  # the most relevant passage speaks of approval,
    assert any("approver" in e["text"] for e in outcome["evidence"])  # and the 18F travel guide's approvers are there
    report = (tmp_path / "r.md").read_text()
    assert "- checked against: sources travel only" in report
    shown = [line for line in report.splitlines() if line.startswith("  - [")]
    assert "the verdict rests on this passage" in shown[0] and first["citation"] in shown[0]
    assert f"rests on “{first['title']}” (search rank {first['rank']})" in report
    assert all(f"): {clip(e['text'])}" in line for e, line in zip(outcome["evidence"], shown, strict=False))
