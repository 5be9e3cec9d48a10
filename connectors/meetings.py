"""``kind = "meetings"``: a folder of recordings (transcribed with faster-whisper) and transcripts.

One document per meeting. A transcript next to a recording (same stem: .vtt, .srt, .docx, .txt, .md)
is that meeting's words, so the recording is not transcribed; citations still point into the
recording, at the second a stretch of conversation starts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from connectors import transcripts
from connectors.base import ConnectorContext, Skipped, file_digest, walk_files
from connectors.transcripts import Segment, Transcript
from connectors.whisper import PACKAGED, Transcriber
from corpus.config import SourceSettings
from corpus.errors import ItemError
from corpus.records import Block, Citation, Document, Item, Locator, document_id

# Recordings are recognised by these extensions; PyAV decodes whatever codec is inside.
MEDIA = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".wma", ".webm", ".mp4", ".mkv", ".mov",
         ".avi"}
TURN_SECONDS = 90.0  # one speaker's consecutive segments form a block, cut at this length
TURN_WORDS = 150  # or at about this many words: ~200 word pieces, so a block fits the model's 256 with its header
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Settings(SourceSettings):
    kind: Literal["meetings"]
    include: tuple[str, ...] = ()  # globs relative to path; empty: every recording and transcript
    exclude: tuple[str, ...] = ()
    follow_external_links: bool = False  # read symbolic links that resolve outside path
    whisper_model: str = Field(default=PACKAGED, description="faster-whisper size name or local CTranslate2 folder")
    language: str = Field(default="en", description='"auto": detected per recording')
    device: str = "auto"
    compute_type: str | None = Field(default=None, description="default: int8 on CPU, float16 on GPU")
    beam_size: int = Field(default=5, ge=1, le=20)


def connector(settings: Settings, context: ConnectorContext | None = None) -> MeetingsConnector:
    return MeetingsConnector(settings, context or ConnectorContext())


class MeetingsConnector:
    def __init__(self, settings: Settings, context: ConnectorContext):
        self.settings = settings
        self.context = context
        self.transcriber = Transcriber(
            settings.whisper_model, None if settings.language == "auto" else settings.language, settings.device,
            settings.compute_type, settings.beam_size,
            cache_dir=context.workdir / "transcripts" if context.workdir else None,
            note=self.note,
        )

    def note(self, line: str) -> None:
        self.context.note(f"{self.settings.name}: {line}")

    def items(self) -> Iterator[Item]:
        opts = self.settings
        listed = list(walk_files(opts.path, opts.include, opts.exclude, {*MEDIA, *transcripts.SUFFIXES},
                                 opts.follow_external_links))
        sidecars = {s for i in listed if _is_media(i.path) and (s := self._sidecar(i.path)) is not None}
        for item in listed:
            if item.path in sidecars:
                continue  # read as part of its recording's meeting
            if _is_media(item.path) and not isinstance(item, Skipped):
                # What the meeting's words come from is part of the stamp: the sidecar transcript and
                # the transcription settings, so changing either reloads the meeting.
                sidecar = self._sidecar(item.path)
                stat = sidecar.stat() if sidecar else None
                extra = f"+{stat.st_size}:{stat.st_mtime_ns}" if stat else ""
                item = Item(item.native_id, f"{item.stamp}{extra}+{self.transcriber.key}", item.path)
            yield item

    def digest(self, item: Item) -> str:
        if not _is_media(item.path):
            return file_digest(item.path)
        return self._media_digest(file_digest(item.path), self._sidecar(item.path))

    def _media_digest(self, audio_hash: str, sidecar: Path | None) -> str:
        extra = f"+{file_digest(sidecar)}" if sidecar else ""
        return hashlib.sha256(f"{audio_hash}{extra}+{self.transcriber.key}".encode()).hexdigest()

    def load(self, item: Item) -> Document:
        path = item.path
        if path.stat().st_size == 0:
            raise ItemError("empty file")
        if not _is_media(path):
            return self._document(item, transcripts.read(path), file_digest(path))
        audio_hash = file_digest(path)  # hashed once: the cache key and the document digest both use it
        sidecar = self._sidecar(path)
        transcript = self._read_sidecar(sidecar, item) if sidecar is not None else None
        if transcript is None:
            result = self.transcriber.transcribe(path, audio_hash, item.native_id)
            if not result.segments:
                seconds = f"{result.duration:.1f}" if result.duration < 10 else f"{result.duration:.0f}"
                raise ItemError(f"no speech found in {seconds} s of audio (silence or noise only)")
            transcript = Transcript(result.segments)
        return self._document(item, transcript, self._media_digest(audio_hash, sidecar))

    def _sidecar(self, recording: Path) -> Path | None:
        """The transcript beside a recording; one linked from outside the source counts only when allowed."""
        root = self.settings.path.resolve()
        root = root if root.is_dir() else root.parent
        for suffix in transcripts.SUFFIXES:
            candidate = recording.with_suffix(suffix)
            if candidate.is_file() and (self.settings.follow_external_links
                                        or candidate.resolve().is_relative_to(root)):
                return candidate
        return None

    def _read_sidecar(self, sidecar: Path, item: Item) -> Transcript | None:
        """The sidecar's transcript; None (the recording is transcribed) when the file beside it is
        something else, such as meeting notes or a chat log saved under the recording's name."""
        try:
            return transcripts.read(sidecar)
        except ItemError as exc:
            self.note(f"{item.native_id}: {sidecar.name} beside it is not used ({exc}); transcribing the recording")
            return None

    def _document(self, item: Item, transcript: Transcript, digest: str) -> Document:
        path = item.path
        date = transcript.date or _date_in_name(path.stem) or datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        uri = path.resolve().as_uri()
        label = f"{self.settings.name}/{item.native_id}"
        blocks = tuple(
            Block(
                f"{speaker}: {text}" if speaker else text,
                Locator(start=start, end=end),
                Citation(f"{uri}#t={clock(start)}", f"{label} at {clock(start)}"),
                (speaker,) if speaker else (),
            )
            for speaker, start, end, text in turns(transcript.segments)
        )
        return Document(
            id=document_id(self.settings.name, item.native_id),
            source=self.settings.name,
            kind="meetings",
            native_id=item.native_id,
            title=transcript.title or path.stem.replace("_", " ").strip() or path.name,
            citation=Citation(uri, label),
            blocks=blocks,
            digest=digest,
            created=date,
            updated=date,
            access=self.settings.access,
            context=f"meeting of {date:%Y-%m-%d}",
        )


def turns(segments: list[Segment], window: float = TURN_SECONDS,
          max_words: int = TURN_WORDS) -> list[tuple[str | None, float, float, str]]:
    """(speaker, start, end, text): one speaker's consecutive segments merged, cut every ``window`` seconds
    or ``max_words`` words.

    A block is then a stretch of one person talking, its citation lands close to any sentence in it, and
    it fits a chunk whole, so no chunk starts mid-turn without the speaker's name. A long segment (a Teams
    turn of several minutes) is cut at sentence ends; its parts keep the turn's times.
    """
    merged: list[tuple[str | None, float, float, list[str]]] = []
    for s in segments:
        for part in _sentence_groups(s.text, max_words):
            last = merged[-1] if merged else None
            if (last is not None and last[0] == s.speaker and s.end - last[1] <= window
                    and sum(len(t.split()) for t in last[3]) + len(part.split()) <= max_words):
                merged[-1] = (last[0], last[1], max(last[2], s.end), [*last[3], part])
            else:
                merged.append((s.speaker, s.start, s.end, [part]))
    return [(speaker, start, end, " ".join(texts)) for speaker, start, end, texts in merged]


def _sentence_groups(text: str, max_words: int) -> list[str]:
    """Consecutive sentences packed up to ``max_words``; a longer sentence stays whole (the chunker cuts it)."""
    groups: list[list[str]] = []
    count = 0
    for sentence in _SENTENCE_END.split(text):
        words = len(sentence.split())
        if groups and count + words <= max_words:
            groups[-1].append(sentence)
            count += words
        else:
            groups.append([sentence])
            count = words
    return [" ".join(g) for g in groups]


def clock(seconds: float) -> str:
    """MM:SS, or HH:MM:SS from an hour on: the Media Fragments ``#t=`` forms players understand."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in MEDIA




def _date_in_name(stem: str) -> datetime | None:
    """A date written into the file name (20240718, 2024-07-18), as exported recordings usually have."""
    found = re.search(r"(?<!\d)(20\d\d)-?(\d\d)-?(\d\d)(?!\d)", stem)
    if not found:
        return None
    try:
        return datetime(*map(int, found.groups()), tzinfo=UTC)
    except ValueError:
        return None
