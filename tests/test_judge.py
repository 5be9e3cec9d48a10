"""The offline rule of `corpus dream`: disagreements it must find, and look-alikes it must leave alone."""

from __future__ import annotations

from ingest.judge import Passage, disagreements, judge_offline


def passage(text: str, updated: float | None = None, name: str = "a") -> Passage:
    return Passage(chunk_id=f"{name}:0", doc_id=name, title=name, text=text, citation=f"file:///{name}.md",
                   updated=updated, date=None)


def test_differing_amounts_dates_and_owners_on_the_same_subject_disagree():
    assert disagreements("Refunds are possible within 30 days of purchase.",
                         "Refunds are possible within 45 days of purchase.") == [
        "30 days vs 45 days (about “refunds possible”)"]
    assert disagreements("The launch review deadline is March 3, 2026.",
                         "The launch review deadline is April 14, 2026.")
    assert disagreements("The billing service is owned by Maria Gomez.", "The billing service is owned by John Park.")


def test_look_alikes_are_left_alone():
    # section and step numbers, the same amount written differently, names without a role, different subjects
    assert disagreements("See section 1.2 of the guide, step 3.", "See section 1.3 of the guide, step 4.") == []
    assert disagreements("Leave counts toward the 12 week allotment.", "You get 12 Weeks of leave in total.") == []
    assert disagreements("Join Google Docs or Google Sheets.", "Join Google Drive or Google Slides.") == []
    assert disagreements("The laptop budget is $1,500.", "The monitor stipend is $300.") == []


def test_newer_passage_that_announces_a_change_supersedes():
    old = passage("The daily meal allowance on trips is $60.", updated=1_700_000_000, name="old")
    new = passage("As of March the daily meal allowance on trips is now $75.", updated=1_770_000_000, name="new")
    verdict = judge_offline(old, new, similarity=0.97)
    assert verdict.relation == "superseded" and verdict.newer is new
    silent = passage("The daily meal allowance on trips is $75.", updated=1_770_000_000, name="other")
    assert judge_offline(old, silent, similarity=0.97).relation == "conflict"  # no word of a change: a conflict
    assert judge_offline(old, passage(old.text, name="copy"), similarity=0.99).relation == "duplicate"
    assert judge_offline(old, passage("Trips need approval.", name="x"), similarity=0.8).relation == "none"
