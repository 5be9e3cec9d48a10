"""Existing meeting transcripts read as they are: WebVTT, SRT, and Microsoft Teams text or .docx.

Every format becomes the same list of timed, speaker-attributed segments, so the meetings connector
builds its documents one way whatever the transcript came from.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from connectors.text import decode
from corpus.errors import ItemError

SUFFIXES = (".vtt", ".srt", ".docx", ".txt", ".md")  # a sidecar is looked for in this order


@dataclass(frozen=True)
class Segment:
    start: float  # seconds into the meeting
    end: float
    text: str
    speaker: str | None = None
    words: tuple[tuple[float, float], ...] = ()  # (start, end) of each word of ``text``, when Whisper timed them


@dataclass(frozen=True)
class Transcript:
    segments: list[Segment]
    title: str | None = None
    date: datetime | None = None


# Cue times: 00:01:02.500 (WebVTT), 00:01:02,500 (SRT), 1:02.5, and Teams' unpadded 0:1:2.50.
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
_TAG = re.compile(r"<[^>]*>")
# Zoom writes the speaker into the cue text: "Sheila Smith: Let's start."
_NAME_PREFIX = re.compile(r"^([A-Z][\w'.()-]*(?: [\w'.()-]+){0,4}):\s+(\S.*)$")
# Teams "Download transcript" text: a "Name   M:SS" line, then that speaker's lines.
_TEAMS_SPEAKER = re.compile(r"^(\S.{0,100}?)(?:\s{2,}|\t)(\d{1,2}:\d{2}(?::\d{2})?)\s*$")
_TEAMS_EVENT = re.compile(r"^.{1,100} (?:started|stopped) transcription$")
_HEADER_DATE = re.compile(r"([A-Z][a-z]+ \d{1,2}, \d{4})(?:,\s*(\d{1,2}:\d{2}\s*[AP]M))?")
_DURATION = re.compile(r"^(?:\d+h\s*)?(?:\d+m\s*)?(?:\d+s)?$")
_WORDS_PER_SECOND = 2.5  # to estimate when the last turn of a Teams text transcript ends


def read(path: Path) -> Transcript:
    """The transcript in ``path``; ItemError with the reason when it is not a readable transcript."""
    suffix = path.suffix.lower()
    data = path.read_bytes()
    if not data.strip():
        raise ItemError("empty file")
    text = _docx_text(path) if suffix == ".docx" else decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if suffix == ".vtt":
        transcript = Transcript(_webvtt(text))
    elif suffix == ".srt":
        transcript = Transcript(_srt(text))
    else:
        transcript = _teams(text)
    if not transcript.segments:
        raise ItemError("transcript has no cues with text")
    return transcript


def _webvtt(text: str) -> list[Segment]:
    lines = text.split("\n")
    if not lines[0].lstrip("\ufeff").startswith("WEBVTT"):
        raise ItemError("invalid WebVTT: the first line is not 'WEBVTT'")
    segments = []
    for start, end, cue in _cues(lines, "WebVTT"):
        raw = " ".join(cue)
        voice = _VOICE.search(raw)
        body = html.unescape(_TAG.sub("", raw)).strip()
        if body:
            segments.append(Segment(start, end, " ".join(body.split()), voice.group(1).strip() if voice else None))
    return _zoom_speakers(_drop_rolling_repeats(segments))


def _srt(text: str) -> list[Segment]:
    line_number = 1
    for block in re.split(r"\n[ \t]*\n", text.strip("\n")):
        head = block.strip("\n").split("\n")[:2]
        if not any("-->" in line for line in head):
            raise ItemError(f"invalid SRT: line {line_number}: a subtitle without a timing line")
        line_number += block.count("\n") + 2
    return [Segment(start, end, " ".join(_TAG.sub("", " ".join(cue)).split())) for start, end, cue in _cues(
        text.split("\n"), "SRT")]


def _cues(lines: list[str], fmt: str) -> list[tuple[float, float, list[str]]]:
    """(start, end, text lines) per cue; identifiers, NOTE/STYLE blocks and headers fall outside cues."""
    cues: list[tuple[float, float, list[str]]] = []
    current: list[str] | None = None
    for number, line in enumerate(lines, start=1):
        if "-->" in line:
            timing = _TIMING.match(line)
            if timing is None:
                raise ItemError(f"invalid {fmt}: line {number}: bad cue timing {line.strip()[:60]!r}")
            groups = timing.groups()
            current = []
            cues.append((_seconds(*groups[:4]), _seconds(*groups[4:]), current))
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line.strip())
    return [(start, end, cue) for start, end, cue in cues if cue]


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str | None) -> float:
    # Standard formats always write three digits; Teams' unpadded "0:2:22.40" means 40 ms, so the
    # digits are milliseconds either way.
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis or 0) / 1000


def _drop_rolling_repeats(segments: list[Segment]) -> list[Segment]:
    """YouTube-style captions repeat the previous line in the next cue; keep each line once."""
    kept: list[Segment] = []
    for segment in segments:
        if kept and segment.text == kept[-1].text:
            kept[-1] = Segment(kept[-1].start, segment.end, kept[-1].text, kept[-1].speaker)
        else:
            kept.append(segment)
    return kept


def _zoom_speakers(segments: list[Segment]) -> list[Segment]:
    """'Name: text' cues name their speaker, when most cues do (else a colon is just punctuation)."""
    if any(s.speaker for s in segments):
        return segments
    matches = [_NAME_PREFIX.match(s.text) for s in segments]
    if sum(m is not None for m in matches) * 2 < len(segments):
        return segments
    return [Segment(s.start, s.end, m.group(2), m.group(1)) if m else s for s, m in zip(segments, matches,
                                                                                         strict=True)]


def _teams(text: str) -> Transcript:
    """A Teams transcript saved as text: the 'Name   M:SS' download format, or bare Teams cues."""
    lines = text.split("\n")
    if any(_TIMING.match(line) for line in lines):
        # Teams cues without a WEBVTT header: timing, speaker, text. Whatever precedes the first cue
        # (a pasted meeting chat) is not part of the spoken transcript.
        segments = []
        for start, end, cue in _cues(lines, "Teams transcript"):
            speaker, body = (cue[0], cue[1:]) if len(cue) > 1 else (None, cue)
            if " ".join(body).strip():
                segments.append(Segment(start, end, " ".join(" ".join(body).split()), speaker))
        return Transcript(segments)
    turns: list[tuple[str, float, list[str]]] = []
    header: list[str] = []
    for line in lines:
        line = line.strip()
        speaker = _TEAMS_SPEAKER.match(line)
        if speaker:
            turns.append((speaker.group(1).strip(), _clock(speaker.group(2)), []))
        elif not line or _TEAMS_EVENT.match(line):
            continue
        elif turns:
            turns[-1][2].append(line)
        else:
            header.append(line)
    if not turns:
        raise ItemError("not a transcript: no timed cues and no 'Name  M:SS' speaker lines (a chat log or notes?)")
    segments = []
    for index, (speaker, start, body) in enumerate(turns):
        words = " ".join(body).split()
        if not words:
            continue
        end = turns[index + 1][1] if index + 1 < len(turns) else start + len(words) / _WORDS_PER_SECOND
        segments.append(Segment(start, max(end, start), " ".join(words), speaker))
    title, date = _teams_header(header)
    return Transcript(segments, title, date)


def _clock(value: str) -> float:
    parts = [int(p) for p in value.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def _teams_header(lines: list[str]) -> tuple[str | None, datetime | None]:
    """Title and date from the lines above the first speaker: title, 'Transcript', date, duration."""
    title = date = None
    for line in lines:
        found = _HEADER_DATE.search(line)
        if found and date is None:
            day, clock = found.groups()
            try:
                date = datetime.strptime(f"{day} {clock.replace(' ', '')}" if clock else day,
                                         "%B %d, %Y %I:%M%p" if clock else "%B %d, %Y")
            except ValueError:  # a month name in another language: the file's date is used instead
                continue
        elif title is None and line.lower() != "transcript" and not _DURATION.match(line):
            title = line.lstrip("#").strip() or None
    return title, date


def _docx_text(path: Path) -> str:
    """Teams' .docx transcript: paragraphs of 'timing / speaker / text' or 'Name  M:SS' lines."""
    import docx

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises zip, XML and key errors for a broken file
        raise ItemError(f"cannot read .docx ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from exc
    return "\n\n".join(p.text for p in document.paragraphs)
