"""Each Slack channel's "about" document: topic, purpose, renames and pins, with who and when, cited to the channel.

A generated export holds every kind of channel event (and what the real export lacks: edits of a pinned
message, a pin of a message outside the export, unpins, private channels); the real houstondatavis export
must answer the two questions of issue 11 from its about documents, through real ingest and search.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors import load_config
from ingest.pipeline import ingest
from server.search import Searcher
from store.filters import Filters
from tests.conftest import load_all, shared, write_config
from tests.test_ingest import CountingEmbedder
from tests.test_slack_connector import DAY, T0, USERS, WORKSPACE, msg, slack, slack_source, texts, ts

OLD = T0 - 400 * DAY  # a message from before the export's first day


def event(user: str, at: float, subtype: str, **extra) -> dict:
    return msg(user, at, f"<@{user}> did something to the channel", subtype=subtype, **extra)


def pin(user: str, at: float, target: float, copy: str, subtype: str = "pinned_item") -> dict:
    return event(user, at, subtype, item_type="C",
                 attachments=[{"ts": ts(target), "text": copy, "author_name": "Ann", "channel_id": "C1"}])


GENERAL = {
    "2016-03-01.json": [
        msg("U1", T0, "The deploy checklist is at <https://wiki.acme.example/deploy|the wiki>"),
        event("U1", T0 + 60, "channel_topic", topic="Release train: Tuesdays"),
        pin("U2", T0 + 500, T0, "The deploy checklist is at the wiki"),
        pin("U2", T0 + 600, OLD, "Kickoff notes are in the <https://drive.acme.example/k|drive>"),
        event("U1", T0 + 700, "channel_name", old_name="announcements", name="general"),
    ],
    "2016-03-02.json": [
        {"type": "message", "subtype": "message_changed", "ts": ts(T0 + DAY),
         "message": msg("U1", T0, "The deploy checklist moved to <https://wiki.acme.example/v2|the new wiki>")},
        event("U2", T0 + DAY, "channel_topic", topic="Release train: Thursdays"),
        event("U3", T0 + DAY + 60, "channel_purpose", purpose=""),
        pin("U1", T0 + DAY + 120, OLD, "Kickoff notes", subtype="unpinned_item"),
        event("U1", T0 + DAY + 180, "channel_archive"),
        event("U1", T0 + DAY + 240, "channel_unarchive"),
    ],
}


def write_export(root: Path, general: dict | None = None) -> Path:
    """#general with every event, #random with none, a private channel whose topic is private too."""
    channels = [
        {"id": "C1", "name": "general", "created": T0 - 100 * DAY, "creator": "U1", "previous_names": ["announcements"],
         "topic": {"value": "Release train: Thursdays", "creator": "U2", "last_set": T0 + DAY},
         "purpose": {"value": "", "creator": "U3", "last_set": T0 + DAY + 60},
         "pins": [{"id": ts(T0), "type": "C", "user": "U2", "created": T0 + 500}]},
        {"id": "C2", "name": "random", "created": T0 - 100 * DAY, "creator": "U1",
         "topic": {"value": "", "creator": "", "last_set": 0}, "purpose": {"value": "", "creator": "", "last_set": 0}},
    ]
    files = {
        "users.json": USERS, "channels.json": channels,
        "groups.json": [{"id": "G1", "name": "secret-plans", "is_private": True,
                         "purpose": {"value": "the Initech deal", "creator": "U1", "last_set": T0}}],
        "general": general or GENERAL,
        "random": {"2016-03-01.json": [msg("U3", T0, "lunch?")]},
        "secret-plans": {"2016-03-01.json": [event("U1", T0, "group_topic", topic="closing Friday")]},
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if name.endswith(".json"):
            (root / name).write_text(json.dumps(content))
            continue
        (root / name).mkdir(exist_ok=True)
        for day, messages in content.items():
            (root / name / day).write_text(json.dumps(messages))
    return root


def test_about_holds_topic_purpose_renames_and_pins_with_who_and_when(tmp_path):
    docs, failed = load_all(slack(write_export(tmp_path / "export"), workspace_url=WORKSPACE))
    assert failed == {}
    about = docs["C1/about"]
    assert texts(about) == [
        "About #general (formerly #announcements): topic, purpose, renames, pins, archiving. "
        "Created by Ann on 2015-11-22 14:02 UTC.",
        "Topic: Release train: Thursdays (set by Bob Stone on 2016-03-02 14:02 UTC)",
        "Formerly named #announcements",
        # the pinned message as it reads now (edited after the pin), looked up by its ts in the day files
        "Pinned by Bob Stone on 2016-03-01 14:10 UTC: Ann (2016-03-01 14:02): "
        "The deploy checklist moved to the new wiki (https://wiki.acme.example/v2)",
        "Ann (2016-03-01 14:03): set the channel topic: Release train: Tuesdays",
        "Bob Stone (2016-03-01 14:10): pinned a message: Ann (2016-03-01 14:02): "
        "The deploy checklist moved to the new wiki (https://wiki.acme.example/v2)",
        # not in the export: the copy Slack put in the pin event
        "Bob Stone (2016-03-01 14:12): pinned a message: Ann (2015-01-26 14:02): "
        "Kickoff notes are in the drive (https://drive.acme.example/k)",
        "Ann (2016-03-01 14:13): renamed the channel from #announcements to #general",
        "Bob Stone (2016-03-02 14:02): set the channel topic: Release train: Thursdays",
        "carol (2016-03-02 14:03): cleared the channel purpose",
        "Ann (2016-03-02 14:04): unpinned a message: Ann (2015-01-26 14:02): Kickoff notes",
        "Ann (2016-03-02 14:05): archived the channel",
        "Ann (2016-03-02 14:06): unarchived the channel",
    ]
    assert about.title == "About #general (formerly #announcements): topic, purpose, renames, pins, archiving"
    assert about.context == "#general"
    assert about.citation.uri == f"{WORKSPACE}/archives/C1" and about.blocks[1].citation == about.citation
    rename = next(b for b in about.blocks if "renamed" in b.text)
    assert rename.citation.uri == f"{WORKSPACE}/archives/C1/p{ts(T0 + 700).replace('.', '')}"
    assert rename.people == ("Ann",) and set(about.authors) == {"Ann", "Bob Stone", "carol"}
    assert (f"{about.created:%F}", f"{about.updated:%F %H:%M}") == ("2015-11-22", "2016-03-02 14:06")
    assert all(b.locator.start is None for b in about.blocks)  # about the channel, not a stretch of its talk
    # the events stay out of the conversation itself; a channel with nothing to say about itself has no about
    assert not any("topic" in b.text for nid, d in docs.items() if nid != "C1/about" for b in d.blocks)
    assert "C2/about" not in docs and "G1/about" not in docs
    assert load_all(slack(tmp_path / "export"))[0]["C1/about"].citation.uri == "slack://general"

    private = load_all(slack(tmp_path / "export", private=True, access=["staff"]))[0]
    assert texts(private["G1/about"]) == [
        "About #secret-plans: topic, purpose.","Purpose: the Initech deal (set by Ann on 2016-03-01 14:02 UTC)",
                                              "Ann (2016-03-01 14:02): set the channel topic: closing Friday"]
    assert private["G1/about"].access == ("acme:private", "acme:private:secret-plans")
    assert private["C1/about"].access == ("staff",)


def test_about_is_embedded_again_only_when_what_it_reads_changes(tmp_path, embedder):
    export = write_export(tmp_path / "export")
    config = load_config(write_config(tmp_path, slack_source("acme", export, workspace_url=WORKSPACE)))
    counting = CountingEmbedder(embedder)
    first = ingest(config, embedder=counting).sources["acme"]
    assert (first.added, first.failed) == (3, 0)  # #general's about, its burst, #random's burst

    (export / "general" / "2016-03-05.json").write_text(json.dumps([msg("U2", T0 + 4 * DAY, "retro on Friday")]))
    talk = ingest(config, embedder=counting).sources["acme"]
    assert (talk.added, talk.updated, talk.unchanged) == (1, 0, 3)  # a new burst; the about is the same

    (export / "general" / "2016-03-06.json").write_text(json.dumps([
        event("U3", T0 + 5 * DAY, "channel_topic", topic="Release train: Fridays from April"),
        {"type": "message", "subtype": "message_changed", "ts": ts(T0 + 5 * DAY + 1),
         "message": msg("U1", T0, "The deploy checklist is in the runbook")},  # the pinned message, edited again
    ]))
    counting.embedded = 0
    changed = ingest(config, embedder=counting).sources["acme"]
    assert (changed.added, changed.updated, changed.unchanged) == (0, 2, 2)  # the about and the edited burst
    searcher = Searcher(config, embedder)
    hit = searcher.search("when does the release train leave now", limit=1)[0]
    assert hit.title.startswith("About #general") and hit.citation.startswith(f"{WORKSPACE}/archives/C1")
    assert "carol (2016-03-06 14:02): set the channel topic: Release train: Fridays from April" in hit.text
    assert "Pinned by Bob Stone on 2016-03-01 14:10 UTC: Ann (2016-03-01 14:02): " \
           "The deploy checklist is in the runbook" in searcher.fetch(hit.doc_id).text


# --- the real houstondatavis export ------------------------------------------------------------------------

HDV = "https://houstondatavis.slack.com"


def test_houstondatavis_channels_say_what_they_are_about():
    docs, failed = load_all(slack(shared("slack", "houstondatavis"), workspace_url=HDV))
    abouts = {d.context: d for nid, d in docs.items() if nid.endswith("/about")}
    assert failed == {} and len(abouts) == 15  # all 16 channels but #design-thinking, which says nothing of itself
    general, meetup, datajam = (texts(abouts[c]) for c in ("#general", "#meetup-", "#datajam"))
    assert "Topic: Next Data Jam Feb 13th 2016 (set by Neeraj Tandon on 2016-01-15 21:08 UTC)" in general
    assert "Neeraj Tandon (2016-01-15 21:08): set the channel topic: Next Data Jam Feb 13th 2016" in general
    assert "Neeraj Tandon (2016-06-14 00:22): renamed the channel from #random to #meetup-" in meetup
    assert abouts["#meetup-"].title == "About #meetup- (formerly #random): topic, purpose, renames"
    assert "Micah Stubbs (2016-01-16 03:01): cleared the channel topic" in meetup
    assert "Pinned by Neeraj Tandon on 2015-10-13 16:57 UTC: Neeraj Tandon (2015-10-13 16:56): New data jam event " \
           "posted. Come join us this Saturday! http://www.meetup.com/Houston-Data-Visualization-Meetup/events/" \
           "226018977/" in datajam
    tutorials = texts(abouts["#tutorials"])
    assert "Micah Stubbs (2015-06-09 14:31): renamed the channel from #tuts to #tutorials" in tutorials
    assert abouts["#general"].citation.uri == f"{HDV}/archives/C061A2UGJ"
    assert not any("<@" in t or "&amp;" in t for d in abouts.values() for t in texts(d))


@pytest.fixture(scope="module")
def houstondatavis(tmp_path_factory, embedder) -> Searcher:
    folder = tmp_path_factory.mktemp("hdv")
    config = load_config(write_config(folder, slack_source("hdv", shared("slack", "houstondatavis"),
                                                           workspace_url=HDV)))
    assert ingest(config, embedder=embedder).sources["hdv"].failed == 0
    return Searcher(config, embedder)


@pytest.mark.slow
@pytest.mark.parametrize(("question", "answer"), [
    ("what did #general's topic say about the next Data Jam in January 2016?",
     "Neeraj Tandon (2016-01-15 21:08): set the channel topic: Next Data Jam Feb 13th 2016"),
    ("what was #meetup- called before, and who renamed it?",
     "Neeraj Tandon (2016-06-14 00:22): renamed the channel from #random to #meetup-"),
])
def test_issue_questions_are_answered_by_the_about_document(houstondatavis, question, answer):
    hits = houstondatavis.search(question, limit=3)
    about = next(h for h in hits if answer in h.text)
    assert about.title.startswith("About #") and about.citation.startswith(f"{HDV}/archives/C")
    assert about.citation.count("/") == 4  # the channel, not one message
    by_him = houstondatavis.search(question, limit=3, filters=Filters(people=["Neeraj Tandon"]))
    assert any(answer in h.text for h in by_him)  # who changed the channel is one of its people


@pytest.mark.slow
def test_about_documents_are_never_read_on_into(houstondatavis):
    hits = houstondatavis.search("new data jam event posted, come join us this Saturday", limit=5)
    burst = next(h for h in hits if not h.title.startswith("About"))
    around = houstondatavis.fetch(burst.id, neighbours=3)
    assert "pinned a message" not in around.text and "Pinned by" not in around.text
