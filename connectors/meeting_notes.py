"""Notes, agendas and chat logs kept beside a meeting: what was decided and typed, read with the meeting.

A file is one of these by its name: a role word (notes, minutes, agenda; chat, chat log, chat transcript)
at the start or end of its name, the rest of the name being its meeting's (``20240718_Notes.md`` belongs
with ``20240718.mp4``). Teams names real transcripts "…_ChatTranscript" too, so a chat-named file is
read as a transcript first (by the meetings connector) and as a chat log only when it is not one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from connectors import markdown
from connectors.limits import read_file
from connectors.text import decode, paragraphs
from corpus.errors import ItemError

NOTES, CHAT = "notes", "chat"
TEXT_SUFFIXES = {".md", ".txt"}
_SEP = r"[\s_.-]+"
_ROLE_WORD = r"(?P<word>notes?|minutes|agenda|chat(?:[\s_-]?(?:log|transcript|history|messages))?)"
_ROLE_LAST = re.compile(rf"(?i)^(?P<rest>.*?)(?:^|{_SEP}){_ROLE_WORD}$")
_ROLE_FIRST = re.compile(rf"(?i)^{_ROLE_WORD}{_SEP}(?P<rest>.*)$")

# Teams chat as copied out of a meeting: "[Thursday 9:24 AM] Name" headers, or (newer clients) a preview
# line "… by Name", the name, and "Thursday 10:02 AM" on lines of their own.
_DAY = r"(?:(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day|Yesterday|Today)"
_TIME = re.compile(r"\d{1,2}:\d{2}(?:\s?[AP]M)?", re.I)
_HEADER = re.compile(r"^\[(?P<when>[^\]]{0,40}\d{1,2}:\d{2}[^\]]{0,10})\]\s*(?P<name>\S.{0,100})$")
_STAMP = re.compile(rf"^(?:{_DAY} \d{{1,2}}:\d{{2}}(?:\s?[AP]M)?|\d{{1,2}}:\d{{2}}\s?[AP]M)$", re.I)
_EVENT = re.compile(rf"^{_DAY} (?P<when>\d{{1,2}}:\d{{2}}(?:\s?[AP]M)?)\s+(?P<text>\S.*)$", re.I)
_PREVIEW = re.compile(r"(?:^|\s)by (?P<name>\S.*)$")
_QUOTED_AT = re.compile(r"^\d{1,2}/\d{1,2}/\d{2,4},? \d{1,2}:\d{2}(?:\s?[AP]M)?$", re.I)
_REACTIONS = re.compile(r"^\s+(?:[\w-]+ \d+\s*)+$|^\s*\d+ [\w ]+ reactions?\.\s*$", re.I)
_COUNT = re.compile(r"^\s*\d+\s*$")  # the bare count Teams writes under "2 Like reactions."
_NOT_A_NAME = re.compile(r"[!?:;,]$|\w{2,}\.$|://|^[#*>\[-]")


@dataclass(frozen=True)
class Notes:
    title: str | None  # the notes' own title (first heading): what a meeting with only notes is called
    sections: list[tuple[str, tuple[str, ...]]]  # (text, headings under that title)


@dataclass(frozen=True)
class ChatMessage:
    speaker: str | None  # None: a meeting event ("Recording has stopped")
    when: str | None  # the time of day as the log writes it ("9:24 AM"); None in logs without times
    text: str


def role(path: Path) -> str | None:
    """NOTES or CHAT when the file's name says it is one; None for recordings and transcripts."""
    if path.suffix.lower() not in TEXT_SUFFIXES:
        return None
    found = _ROLE_LAST.match(path.stem) or _ROLE_FIRST.match(path.stem)
    if not found:
        return None
    return CHAT if found["word"].lower().startswith("chat") else NOTES


def meeting_name(path: Path) -> str:
    """The name the file shares with its meeting: the stem without its role word ("" for "notes.md")."""
    stem = path.stem
    if role(path) is not None:
        found = _ROLE_LAST.match(stem) or _ROLE_FIRST.match(stem)
        stem = found["rest"]
    return re.sub(_SEP, " ", stem).strip()


def meeting_key(path: Path) -> str:
    """``meeting_name`` compared loosely: "Standup 2024-07-18" and "standup_2024_07_18" are one meeting."""
    return meeting_name(path).lower()


def read_notes(path: Path, cap: int) -> Notes:
    """Markdown notes by section (headings kept, the title heading dropped), or plain-text paragraphs."""
    text = decode(read_file(path, cap))
    if path.suffix.lower() == ".txt":
        sections = [(p, ()) for p in paragraphs(text)]
        title = None
    else:
        doc = markdown.parse(text)
        title = doc.title
        sections = [(b.text, _below(b.headings, title)) for b in doc.blocks]
    if not any(t.strip() for t, _ in sections):
        raise ItemError("notes without text (empty or headings only)")
    return Notes(title, sections)


def _below(headings: tuple[str, ...], title: str | None) -> tuple[str, ...]:
    return headings[1:] if headings and headings[0] == title else headings


def read_chat(path: Path, cap: int) -> list[ChatMessage]:
    """Who wrote what and when, in order; ItemError when nothing in the file reads as a chat message."""
    text = decode(read_file(path, cap)).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    timed = any(_HEADER.match(line.strip()) or _is_stamp(lines, i) for i, line in enumerate(lines))
    messages = _timed(lines) if timed else _untimed(text)
    if not any(m.speaker for m in messages):
        raise ItemError("no speech or chat messages in it: no timed cues, no 'Name  M:SS' lines, no named "
                        "messages (a corrupted or cut-off export?)")
    return messages


def _is_stamp(lines: list[str], index: int) -> bool:
    """A time on a line of its own right under a name: the newer Teams header."""
    return bool(_STAMP.match(lines[index].strip())) and index > 0 and bool(lines[index - 1].strip())


def _timed(lines: list[str]) -> list[ChatMessage]:
    opened: list[tuple[str | None, str | None, list[str]]] = [(None, None, [])]  # text before any header
    skip = -1
    for index, line in enumerate(lines):
        body = opened[-1][2]
        if index == skip:
            continue
        if header := _HEADER.match(line.strip()):
            opened.append((header["name"].strip(), _time(header["when"]), []))
        elif _is_stamp(lines, index) and body and body[-1] == lines[index - 1]:
            name = body.pop().strip()  # the line above the time
            preview = _PREVIEW.search(name)
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if preview and following == preview["name"]:
                name, skip = following, index + 1  # "preview by Name / time / Name"
            elif body and _PREVIEW.search(body[-1].strip()):
                body.pop()  # "preview by Name / Name / time": the preview repeats the message
            opened.append((name, _time(line), []))
        elif event := _EVENT.match(line.strip()):
            if body and body[-1].strip() == event["text"]:
                body.pop()  # Teams shows an event twice: as a line, then with its time
            opened.append((None, _time(event["when"]), [event["text"]]))
        else:
            body.append(line)
    messages = [ChatMessage(speaker, when, _message_text(body)) for speaker, when, body in opened]
    return [m for m in messages if m.text]


def _time(when: str) -> str | None:
    found = _TIME.search(when)
    return found.group(0).upper() if found else None


def _message_text(body: list[str]) -> str:
    """The message without reaction counts and 'Edited'; a quoted message it replies to reads as such."""
    kept: list[str] = []
    after_reactions = False
    for line in body:
        if _REACTIONS.match(line) or (after_reactions and _COUNT.match(line)):
            after_reactions = True
            continue
        after_reactions = False
        if line.strip() and not (not kept and line.strip() == "Edited"):
            kept.append(line.strip())
    if len(kept) >= 3 and _QUOTED_AT.match(kept[1]):
        kept = [f'(replying to {kept[0]}: "{kept[2]}")', *kept[3:]]
    return " ".join(kept)


def _untimed(text: str) -> list[ChatMessage]:
    """Logs without times: a block whose first line is a name starts a message; a single-line block
    continues the message before it (a second paragraph)."""
    messages: list[tuple[str, list[str]]] = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if len(lines) > 1 and _looks_like_name(lines[0]):
            messages.append((lines[0], lines[1:]))
        elif lines and messages:
            messages[-1][1].extend(lines)
    return [ChatMessage(speaker, None, " ".join(body)) for speaker, body in messages]


def _looks_like_name(line: str) -> bool:
    return len(line) <= 60 and len(line.split()) <= 6 and not _NOT_A_NAME.search(line)
