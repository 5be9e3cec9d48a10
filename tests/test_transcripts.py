"""Existing transcripts on real files: WebVTT/SRT edge cases, the PowerShell Teams transcripts, Teams .docx."""

from __future__ import annotations

from datetime import datetime

import pytest

from connectors.meetings import clock, turns
from connectors.transcripts import Segment, read
from corpus.errors import ItemError
from tests.conftest import shared


def vtt(name: str):
    return shared("transcripts", "webvtt-py-fixtures", name)


def call(name: str):
    return shared("transcripts", "powershell-community-call", name)


def test_valid_webvtt_and_srt_fixtures_are_read_cue_by_cue():
    sample = read(vtt("sample.vtt")).segments
    assert len(sample) == 16 and sample[0] == Segment(0.5, 7.0, "Caption text #1")
    assert [s.text for s in read(vtt("sample.srt")).segments] == [f"Caption text #{n}" for n in range(1, 6)]
    assert read(vtt("sample.srt")).segments[4] == Segment(21.58, 23.88, "Caption text #5")
    bom = read(vtt("captions_with_bom.vtt")).segments
    assert [s.text for s in bom] == [f"Caption text #{n}" for n in range(1, 5)]
    # cue identifiers, NOTE blocks and header metadata are not caption text
    assert [s.text for s in read(vtt("using_identifiers.vtt")).segments] == [f"Caption text #{n}" for n in range(1, 7)]
    comments = read(vtt("comments.vtt")).segments
    assert len(comments) == 3 and comments[0].start == 135.0
    assert "Det är inte varmt" in comments[0].text and not any("Kyle" in s.text for s in comments)
    assert [s.text for s in read(vtt("metadata_headers_multiline.vtt")).segments] == ["Caption text #1",
                                                                                      "Caption text #2"]
    youtube = read(vtt("youtube_dl.vtt")).segments
    assert all("<" not in s.text and "::cue" not in s.text for s in youtube)
    assert youtube[0].start == 4 * 60 + 46.07
    assert "this will happen is I'm telling" in [s.text for s in youtube]


def test_teams_voice_tags_name_the_speakers_with_unpadded_times():
    segments = read(vtt("teams_timeframe.vtt")).segments
    assert segments == [Segment(0.0, 0.57, "There you go.", "Yuri Bakulin"),
                        Segment(0.21, 1.13, "Why hello there, Yuri.", "Adrian Petrescu")]


@pytest.mark.parametrize(("name", "reason"), [
    ("empty.vtt", "empty file"),
    ("invalid.vtt", "invalid WebVTT: the first line is not 'WEBVTT'"),
    ("invalid_timeframe.vtt", "invalid WebVTT: line 6: bad cue timing '00:00:07.000 --> 00:00:1d.890'"),
    ("missing_timeframe.srt", "invalid SRT: line 5: a subtitle without a timing line"),
])
def test_broken_captions_each_get_one_clear_reason(name, reason):
    with pytest.raises(ItemError) as failure:
        read(vtt(name))
    assert str(failure.value) == reason


def test_zoom_style_speaker_prefixes(tmp_path):
    zoom = tmp_path / "zoom.vtt"
    zoom.write_text("WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\nSheila Smith: Let's start with the budget.\n\n"
                    "2\n00:00:04.500 --> 00:00:06.000\nDiane: Agreed, budget first.\n")
    assert [(s.speaker, s.text) for s in read(zoom).segments] == [
        ("Sheila Smith", "Let's start with the budget."), ("Diane", "Agreed, budget first.")]
    # one "Note: ..." line among plain captions is punctuation, not a speaker
    plain = tmp_path / "plain.vtt"
    plain.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nNote: bring snacks.\n\n"
                     "00:00:02.000 --> 00:00:03.000\nSee you then.\n\n00:00:03.000 --> 00:00:04.000\nBye now.\n")
    assert all(s.speaker is None for s in read(plain).segments)


def test_teams_download_transcripts_keep_speakers_times_title_and_date():
    july = read(call("20240718_ChatTranscript.md"))
    assert july.title == "PowerShell_OpenSSH Community Call-20240718"
    assert july.date == datetime(2024, 7, 18)
    first = july.segments[0]
    assert (first.speaker, first.start) == ("Jason Helmick", 3 * 60 + 34)
    assert first.text.startswith("Good morning, good afternoon and good evening.")
    assert first.end == july.segments[1].start  # a turn lasts until the next speaker starts
    assert len({s.speaker for s in july.segments}) >= 8
    # the header's date wins over the file name's
    assert read(call("20241017_ChatTranscript.md")).date == datetime(2024, 9, 19)
    june = read(call("20260618_ChatTranscript.md"))
    assert june.date == datetime(2026, 6, 18, 16, 28)
    assert june.title.startswith("PowerShellOpenSSH Community Call-20260618")
    assert not any("started transcription" in s.text for s in june.segments)
    assert june.segments[0].speaker == "Jason Helmick" and june.segments[0].start == 94


def test_teams_cues_without_a_webvtt_header_after_a_pasted_chat():
    september = read(call("20230921_ChatTranscript.md"))
    speakers = {s.speaker for s in september.segments}
    assert "Team Room 40/3125 (8)" in speakers and len(speakers) == 14
    assert september.segments[0] == Segment(
        132.75, 135.8, "You can see all of us joining from a conference room here.", "Team Room 40/3125 (8)")
    assert september.segments[-1].end == 58 * 60 + 56.96
    assert not any("codeofconduct" in s.text for s in september.segments)  # the chat preamble is not speech


@pytest.mark.parametrize("name", ["20201217_ChatTranscript.txt", "20230817_ChatTranscript.txt",
                                  "20250320_ChatTranscript.md"])
def test_chat_logs_and_the_corrupted_stub_are_not_transcripts(name):
    with pytest.raises(ItemError, match="not a transcript"):
        read(call(name))


def test_teams_docx_transcript(tmp_path):
    docx = read(shared("docs", "unstructured-example-docs", "teams_chat.docx"))
    assert docx.segments == [Segment(0.0, 1.51, "OK. Yeah.", "Some Body"), Segment(3.27, 4.25, "Umm.", "James Bond")]
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ItemError, match=r"^cannot read \.docx"):
        read(broken)


def test_turns_merge_one_speakers_segments_and_cut_long_monologues():
    segments = [Segment(0, 5, "Hi.", "A"), Segment(5, 9, "Budget first.", "A"), Segment(9, 12, "Yes.", "B")]
    segments += [Segment(12 + 10 * i, 22 + 10 * i, f"Point {i}.", "A") for i in range(12)]
    got = turns(segments, window=90)
    assert got[0] == ("A", 0, 9, "Hi. Budget first.")
    assert got[1] == ("B", 9, 12, "Yes.")
    assert [(g[0], g[1]) for g in got[2:]] == [("A", 12), ("A", 102)]  # 120 s of A, cut at 90 s
    assert clock(754.9) == "12:34" and clock(3723) == "01:02:03"


def test_a_long_turn_is_cut_at_sentence_ends_and_keeps_its_times():
    sentence = "We shipped the adapters module and renamed it for the preview release today."  # 13 words
    parts = turns([Segment(60, 240, " ".join([sentence] * 30), "Sid")], max_words=150)
    assert len(parts) == 3 and all((p[0], p[1], p[2]) == ("Sid", 60, 240) for p in parts)
    assert all(len(p[3].split()) <= 150 and p[3].endswith("today.") for p in parts)
    assert " ".join(p[3] for p in parts) == " ".join([sentence] * 30)
