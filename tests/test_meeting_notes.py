"""Notes, agendas and chat logs as documents of their meeting: the real PowerShell community-call folder
end to end, the real chat logs line by line, and how a notes file finds its meeting by name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from connectors import load_config
from connectors.base import ConnectorContext
from connectors.meeting_notes import CHAT, NOTES, meeting_name, read_chat, role
from connectors.meetings import MeetingsConnector, Settings
from corpus.errors import ItemError
from ingest.pipeline import ingest
from server.search import Searcher
from tests.conftest import load_all, shared, write_config

CAP = 50 << 20


def call(name: str) -> Path:
    return shared("transcripts", "powershell-community-call", name)


def connector(folder: Path) -> MeetingsConnector:
    return MeetingsConnector(Settings(name="meetings", kind="meetings", path=folder), ConnectorContext())


@pytest.mark.parametrize(("name", "expected"), [
    ("20240718_Notes.md", (NOTES, "20240718")),
    ("Standup 2024-07-18 - Agenda.md", (NOTES, "Standup 2024 07 18")),
    ("minutes_standup.txt", (NOTES, "standup")),
    ("20230817_ChatTranscript.txt", (CHAT, "20230817")),
    ("standup chat log.txt", (CHAT, "standup")),
    ("notes.md", (NOTES, "")),
    ("standup.md", (None, "standup")),
    ("keynotes.md", (None, "keynotes")),  # a role word only counts as a word of its own
    ("notes.mp4", (None, "notes")),  # a recording is never notes
])
def test_the_name_says_the_role_and_the_meeting(name, expected):
    assert (role(Path(name)), meeting_name(Path(name))) == expected


def test_a_teams_chat_copy_keeps_who_wrote_what_and_when():
    messages = read_chat(call("20230817_ChatTranscript.txt"), CAP)
    first = messages[0]
    assert (first.speaker, first.when) == ("Jason Helmick", "9:24 AM")
    assert first.text.startswith("Hello and welcome to the August 2023 PowerShell Community Call")
    # the newer copy format: "preview by Name", the name, the time on its own line; a reply quotes its question
    platyps = next(m for m in messages if m.speaker == "Aditya Patwardhan" and m.when == "9:58 AM")
    assert platyps.text == ('(replying to James Brundage: "Is PlatyPS still being updated?") '
                            "Yes, I plan to get back to it starting next week.")
    adapters = next(m for m in messages if m.when == "10:20 AM")  # there the name comes after the time
    assert adapters.speaker == "Steven Bucher" and adapters.text.startswith("(Previously known as JSON adapters")
    assert not any("reaction" in m.text or " like 1" in m.text or " by Mikey" in m.text for m in messages)
    assert [m.when for m in messages if m.speaker is None] == ["10:30 AM", "3:48 PM"]  # recording stopped, ended
    assert messages[-3].text == "Thanks everyone!"


def test_a_chat_log_without_times_keeps_who_wrote_what():
    messages = read_chat(call("20201217_ChatTranscript.txt"), CAP)
    assert (messages[0].speaker, messages[0].when, messages[0].text) == ("Kvprasoon", None, "Hello everyone😀")
    # a message of two paragraphs stays one message
    lts = next(m for m in messages if m.text.startswith("Yes it is going to be an LTS"))
    assert lts.speaker == "Joey Aiello" and "Are you in 7.0.x and being bugged" in lts.text
    assert {"Jon J.", "b", "Steve Lee (POWERSHELL)"} <= {m.speaker for m in messages}
    assert all(m.speaker for m in messages)


def test_the_corrupted_stub_is_no_chat_either():
    with pytest.raises(ItemError, match="no speech or chat messages in it"):
        read_chat(call("20250320_ChatTranscript.md"), CAP)


def test_notes_and_chat_beside_a_recording_are_documents_of_that_meeting(tmp_path):
    (tmp_path / "Standup.mp4").write_bytes(b"not decoded: its transcript is beside it")
    shutil.copy(call("20240718_ChatTranscript.md"), tmp_path / "Standup.md")
    shutil.copy(call("20240718_Notes.md"), tmp_path / "Standup_Notes.md")
    shutil.copy(call("20201217_ChatTranscript.txt"), tmp_path / "Standup chat.txt")
    meetings = connector(tmp_path)
    assert [i.native_id for i in meetings.items()] == ["Standup chat.txt", "Standup.mp4", "Standup_Notes.md"]
    notes = meetings.load(next(i for i in meetings.items() if i.native_id == "Standup_Notes.md"))
    chat = meetings.load(next(i for i in meetings.items() if i.native_id == "Standup chat.txt"))
    for document in (notes, chat):  # the recording's meeting: named and dated by its Teams transcript
        assert document.kind == "meetings" and document.title == "PowerShell_OpenSSH Community Call-20240718"
        assert document.updated.date().isoformat() == "2024-07-18"
    assert notes.citation.uri.endswith("/Standup_Notes.md")
    assert notes.citation.label == "meetings/Standup_Notes.md, notes"
    summer = next(b for b in notes.blocks if "summer hours" in b.text)
    assert summer.citation.label == "meetings/Standup_Notes.md, notes § Meeting Notes: › Community Call Adjustments:"
    assert summer.locator.headings == ("Meeting Notes:", "Community Call Adjustments:")
    assert chat.blocks[0].text == "Kvprasoon: Hello everyone😀" and chat.blocks[0].people == ("Kvprasoon",)
    assert chat.blocks[0].citation.label == "meetings/Standup chat.txt, chat"


def test_a_notes_file_finds_its_meeting_by_date_or_folder(tmp_path):
    shutil.copy(call("20241017_ChatTranscript.md"), tmp_path / "Community Call 2024-10-17.md")
    shutil.copy(call("20241017_Notes.md"), tmp_path / "20241017_Notes.md")  # same date, other name
    retro = tmp_path / "retro"
    retro.mkdir()
    shutil.copy(call("20240718_ChatTranscript.md"), retro / "recording.md")
    shutil.copy(call("20240718_Notes.md"), retro / "agenda.md")  # a plain "agenda" in a meeting's own folder
    loaded, failed = load_all(connector(tmp_path))
    assert failed == {}
    assert loaded["20241017_Notes.md"].title == loaded["Community Call 2024-10-17.md"].title
    assert loaded["20241017_Notes.md"].updated == loaded["Community Call 2024-10-17.md"].updated
    assert loaded["retro/agenda.md"].title == "PowerShell_OpenSSH Community Call-20240718"
    assert loaded["retro/agenda.md"].citation.label == "meetings/retro/agenda.md, notes"


def test_notes_alone_are_a_meeting_and_two_meetings_on_one_day_are_not_guessed(tmp_path):
    shutil.copy(call("20250320_Notes.md"), tmp_path / "20250320_Notes.md")
    shutil.copy(call("20240718_ChatTranscript.md"), tmp_path / "standup 2024-07-18.md")
    shutil.copy(call("20240718_ChatTranscript.md"), tmp_path / "retro 2024-07-18.md")
    shutil.copy(call("20240718_Notes.md"), tmp_path / "20240718_Notes.md")
    loaded, failed = load_all(connector(tmp_path))
    assert failed == {}
    alone = loaded["20250320_Notes.md"]
    assert alone.title == "PowerShell OpenSSH Community Call Notes - March 20, 2025"  # what the notes call it
    assert (alone.updated.date().isoformat(), alone.date_source) == ("2025-03-20", "file name")
    assert alone.context == "meeting of 2025-03-20, notes"
    assert loaded["20240718_Notes.md"].title == "PowerShell OpenSSH Community Call Notes - July 18, 2024"


def test_a_changed_transcript_header_reloads_its_notes(tmp_path):
    transcript = tmp_path / "20240718_ChatTranscript.md"
    shutil.copy(call("20240718_ChatTranscript.md"), transcript)
    shutil.copy(call("20240718_Notes.md"), tmp_path / "20240718_Notes.md")
    meetings = connector(tmp_path)
    before = {i.native_id: (i.stamp, meetings.digest(i)) for i in meetings.items()}
    text = transcript.read_text()
    transcript.write_text(text.replace("# PowerShell_OpenSSH Community Call-20240718", "# July community call"))
    os.utime(transcript, ns=(1, 1))
    after = {i.native_id: (i.stamp, meetings.digest(i)) for i in meetings.items()}
    stamp, digest = after["20240718_Notes.md"]
    assert stamp != before["20240718_Notes.md"][0] and digest != before["20240718_Notes.md"][1]
    assert meetings.load(next(i for i in meetings.items() if i.native_id == "20240718_Notes.md")).title == (
        "July community call")


@pytest.fixture(scope="module")
def community_calls(tmp_path_factory, embedder):
    """The real folder ingested as the README's meetings example: one source, nothing excluded."""
    folder = tmp_path_factory.mktemp("calls")
    source = f'[[sources]]\nname = "meetings"\nkind = "meetings"\npath = "{call("")}"\n'
    config = load_config(write_config(folder, source))
    stats = ingest(config, embedder=embedder).sources["meetings"]
    return config, stats, Searcher(config, embedder)


@pytest.mark.slow
def test_the_community_call_folder_fails_only_on_the_corrupted_stub(community_calls, embedder):
    config, stats, _ = community_calls
    assert (stats.added, stats.failed) == (15, 1)
    (failure,) = stats.failures
    assert failure[0] == "20250320_ChatTranscript.md" and "no speech or chat messages" in failure[1]
    again = ingest(config, embedder=embedder).sources["meetings"]
    assert (again.added, again.updated, again.unchanged, again.failed) == (0, 0, 15, 1)


@pytest.mark.slow
def test_a_question_only_the_notes_answer(community_calls):
    searcher = community_calls[2]
    hit = searcher.search("Who demonstrated Azure Trusted Signing?", limit=3)[0]
    assert hit.kind == "meetings" and "Jordan demonstrated" in hit.text  # March 2025: the transcript is corrupt
    assert hit.citation.endswith("/20250320_Notes.md") and hit.citation_label == "meetings/20250320_Notes.md, notes"
    assert (hit.title, hit.date) == ("PowerShell OpenSSH Community Call Notes - March 20, 2025", "2025-03-20")


@pytest.mark.slow
def test_chat_hits_say_who_wrote_and_when(community_calls):
    searcher = community_calls[2]
    hit = searcher.search("Is there a DSC Discord channel?", limit=3)[0]
    assert "20230817_ChatTranscript.txt, chat at " in hit.citation_label and hit.date == "2023-08-17"
    assert "Mikey Lombardi" in hit.people and "] Mikey Lombardi: " in hit.text
    assert hit.title == "PowerShell Community Call - August 17 2023"  # the meeting's notes name it
