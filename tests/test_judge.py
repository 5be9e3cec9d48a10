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


# Two real houstondatavis bursts (#datajam) that the rule once called a contradiction: "2016-06-13 vs 2016-07-11
# (about “j kim”)". Only when they were said differs, and the meetup links they post differ in their event id.
GUITAR = ("javier (2016-06-13 23:55): :guitar:\n"
          "J. Kim (2016-06-13 23:56): http://www.meetup.com/Houston-Data-Visualization-Meetup/events/231227184/")
NEXT = "J. Kim (2016-07-11 22:54): http://www.meetup.com/Houston-Data-Visualization-Meetup/events/232548862/"


def test_when_something_was_said_is_not_a_fact():
    assert disagreements(GUITAR, NEXT) == []
    assert judge_offline(passage(GUITAR, name="june"), passage(NEXT, name="july"), similarity=0.85).relation == "none"
    # an e-mail or chat header, a Teams transcript's date line, a weekday header
    assert disagreements("Jun 13, 2016 at 10:02\nThe review deadline is March 3, 2026.",
                         "Jul 1, 2016 at 09:15\nThe review deadline is March 3, 2026.") == []
    assert disagreements("Community Call\nJuly 18, 2024,\nJason: welcome to the call.",
                         "Community Call\nJuly 17, 2025, 4:27PM\nJason: welcome to the call.") == []
    assert disagreements("Call notes\nWednesday, August 09, 2023\nThe agenda is posted.",
                         "Call notes\nThursday, September 21, 2023\nThe agenda is posted.") == []


def test_facts_said_in_messages_still_disagree_and_a_stamp_ends_their_subject():
    assert disagreements("Ann (2016-06-13 10:02): the refund window for orders is 30 days",
                         "Bob (2016-07-11 09:00): the refund window for orders is 45 days") == [
        "30 days vs 45 days (about “refund window orders”)"]  # not “ann …”: the stamp ends the subject
    # an event's day and hour without a year is what is said, not when
    assert disagreements("The next data jam is on October 11th at 6:00 PM.",
                         "The next data jam is on October 18th at 6:00 PM.") == [
        "October 11th vs October 18th (about “next data jam”)"]


def test_a_repost_is_a_duplicate_but_messages_differing_in_an_id_are_not():
    repost = NEXT.replace("2016-07-11 22:54", "2016-07-12 08:01")
    assert judge_offline(passage(NEXT, name="first"), passage(repost, name="again"), similarity=0.9).relation \
        == "duplicate"
    other_event = NEXT.replace("232548862", "231227184")
    assert judge_offline(passage(NEXT, name="one"), passage(other_event, name="two"), similarity=0.9).relation \
        == "none"


def test_templated_pages_that_embed_alike_but_list_other_things_are_not_duplicates():
    employee = passage("InSite guides: How To Set Effective Goals; Aligning Individual and Organizational Goals; "
                       "Employee Guide for Writing a Self-Assessment; Supervisors Award Guide", name="employee")
    supervisor = passage("InSite guides: Managers Guide for the Mid-Year Progress Review; How To Set Effective "
                         "Goals; Managers Guide for Effectively Addressing Poor Performance; Supervisors Award Guide",
                         name="supervisor")
    assert judge_offline(employee, supervisor, similarity=0.96).relation == "none"
    assert judge_offline(employee, passage(employee.text + " Ask HR.", name="copy"), similarity=0.96).relation \
        == "duplicate"
