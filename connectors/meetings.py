"""``kind = "meetings"``: a folder of recordings (transcribed with faster-whisper) and transcripts.

One document per meeting. A transcript next to a recording (same stem: .vtt, .srt, .docx, .txt, .md)
is that meeting's words, so the recording is not transcribed; citations still point into the
recording, at the second a stretch of conversation starts.

Notes, agendas and chat logs beside a meeting (``20240718_Notes.md`` with ``20240718.mp4``; see
connectors/meeting_notes.py) are documents of that meeting: its title and date, cited to their own file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import Field, field_validator

from connectors import dates, meeting_notes, speaker_names, transcripts
from connectors import diarize as diarization
from connectors.base import ConnectorContext, Skipped, file_digest, walk_files
from connectors.transcripts import Segment, Transcript
from connectors.whisper import PACKAGED, Transcriber, Transcription
from corpus.config import SourceSettings
from corpus.errors import ItemError
from corpus.records import Block, Citation, Document, Item, Locator, document_id
from corpus.urls import check_template, file_uri, with_query

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
    recording_url: str | None = Field(default=None, description="where each meeting's recording plays, with "
                                      "{path} or {path_noext}; citations add ?t=<seconds>")
    diarize: bool = Field(default=diarization.AVAILABLE, description="speaker turns for recordings without a "
                          "transcript; on by default when resemblyzer is installed")
    speaker_threshold: float = Field(default=diarization.THRESHOLD, gt=0, lt=2, description="how unlike two "
                                     "voices must be to count as two speakers: higher finds fewer")
    speakers: dict[str, dict[str, str]] = Field(default_factory=dict, description='names per recording, '
                                                'e.g. {"call.wav" = {"Speaker 1" = "Ann Lee"}}')

    @field_validator("recording_url")
    @classmethod
    def _recording_template(cls, value: str | None) -> str | None:
        return value if value is None else check_template(value)

    @field_validator("diarize")
    @classmethod
    def _diarizer_installed(cls, value: bool) -> bool:
        if value and not diarization.AVAILABLE:
            raise ValueError("needs resemblyzer (pip install resemblyzer), or set diarize = false")
        return value

    @field_validator("speakers")
    @classmethod
    def _speaker_labels(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        try:
            return {path: speaker_names.checked(names, path) for path, names in value.items()}
        except ItemError as exc:
            raise ValueError(str(exc)) from None


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
            note=self.note, word_timestamps=settings.diarize,
        )
        self.diarizer = diarization.Diarizer(
            self.transcriber.key, settings.speaker_threshold,
            cache_dir=context.workdir / "speakers" if context.workdir else None, note=self.note,
        ) if settings.diarize else None
        # What shapes a recording's words and speakers: part of its stamp and digest, so a change reloads it.
        self.words_key = self.transcriber.key + (f"+{self.diarizer.key}" if self.diarizer else "")
        self.git = dates.GitDates(settings.path)
        self._listings: dict[Path, tuple[int, list[_File]]] = {}  # folder: (its mtime, what _listing found)

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
                extra = "".join(f"+{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                                for p in (self._sidecar(item.path), self._names_file(item.path)) if p)
                item = Item(item.native_id, f"{item.stamp}{extra}+{self.words_key}", item.path)
            elif meeting_notes.role(item.path) and not isinstance(item, Skipped):
                # Notes and chat take their meeting's title and date: its files are part of the stamp.
                others = "".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns};"
                                 for p in self._meeting_files(item.path) if p != item.path)
                item = Item(item.native_id, f"{item.stamp}+{hashlib.sha256(others.encode()).hexdigest()[:16]}",
                            item.path)
            yield item

    def digest(self, item: Item) -> str:
        if meeting_notes.role(item.path):
            return _beside_digest(item.path, self._meeting(item.path))
        if not _is_media(item.path):
            return file_digest(item.path)
        return self._media_digest(file_digest(item.path), item.path)

    def _media_digest(self, audio_hash: str, recording: Path) -> str:
        extra = "".join(f"+{file_digest(p)}" for p in (self._sidecar(recording), self._names_file(recording)) if p)
        return hashlib.sha256(f"{audio_hash}{extra}+{self.words_key}".encode()).hexdigest()

    def load(self, item: Item) -> Document:
        path = item.path
        if path.stat().st_size == 0:
            raise ItemError("empty file")
        role = meeting_notes.role(path)
        if role == meeting_notes.NOTES:
            return self._notes_document(item)
        if role == meeting_notes.CHAT:
            try:  # Teams calls its transcripts "…_ChatTranscript" too
                transcript = transcripts.read(path)
            except ItemError:
                return self._chat_document(item)
            return self._document(item, transcript, self.digest(item))
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
            transcript = Transcript(self._speakers(item, audio_hash, result))
        return self._document(item, transcript, self._media_digest(audio_hash, path))

    def _speakers(self, item: Item, audio_hash: str, result: Transcription) -> list[Segment]:
        """The transcription cut into speaker turns and named where names are known; as it is without diarization."""
        if self.diarizer is None:
            return result.segments
        turns = self.diarizer.split(item.path, audio_hash, item.native_id, result.segments, result.duration)
        names = self._names(item)
        return [replace(t, speaker=names.get(t.speaker, t.speaker)) for t in turns]

    def _names(self, item: Item) -> dict[str, str]:
        """Names for a recording's speaker labels: its ``.speakers.toml``, over the source's ``speakers`` entry."""
        named = self.settings.speakers.get(item.native_id, {})
        names_file = self._names_file(item.path)
        return {**named, **speaker_names.read(names_file)} if names_file else named

    def _names_file(self, recording: Path) -> Path | None:
        candidate = speaker_names.sidecar(recording)
        return candidate if self.diarizer and candidate.is_file() and self._inside(candidate) else None

    def _sidecar(self, recording: Path) -> Path | None:
        """The transcript beside a recording; one linked from outside the source counts only when allowed."""
        for suffix in transcripts.SUFFIXES:
            candidate = recording.with_suffix(suffix)
            if candidate.is_file() and self._inside(candidate):
                return candidate
        return None

    def _folder(self) -> Path:
        path = self.settings.path
        return path if path.is_dir() else path.parent

    def _inside(self, path: Path) -> bool:
        return self.settings.follow_external_links or path.resolve().is_relative_to(self._folder().resolve())

    def _read_sidecar(self, sidecar: Path, item: Item) -> Transcript | None:
        """The sidecar's transcript; None (the recording is transcribed) when the file beside it is
        something else, such as meeting notes or a chat log saved under the recording's name."""
        try:
            return transcripts.read(sidecar)
        except ItemError as exc:
            self.note(f"{item.native_id}: {sidecar.name} beside it is not used ({exc}); transcribing the recording")
            return None

    def _listing(self, folder: Path) -> list[_File]:
        """The recordings, transcripts, notes and chat logs in ``folder``, with their meeting key and role;
        listed again only when the folder changed, not once for each notes file in it."""
        changed = folder.stat().st_mtime_ns
        cached = self._listings.get(folder)
        if cached is None or cached[0] != changed:
            cached = changed, [_File(p, meeting_notes.meeting_key(p), meeting_notes.role(p))
                               for p in sorted(folder.iterdir()) if p.suffix.lower() in {*MEDIA, *transcripts.SUFFIXES}
                               and not p.name.startswith(".") and p.is_file() and self._inside(p)]
            self._listings[folder] = cached
        return cached[1]

    def _meeting_files(self, path: Path) -> list[Path]:
        """``path`` and the other files of its meeting in its folder, those that name and date the meeting
        first: recordings, transcripts, chat logs (some are transcripts), then notes.

        A file belongs to the meeting whose name it shares once its role word is dropped; one whose name
        matches no recording or transcript joins the only one with the same date in its name, and a
        plain "notes.md" the only meeting in its folder.
        """
        listing = self._listing(path.parent)
        key = meeting_notes.meeting_key(path)
        named = {f.key for f in listing if f.role is None}
        if key not in named:
            day = _date_in_name(path.stem)
            same = {f.key for f in listing if f.role is None
                    and (not key or (day is not None and _date_in_name(f.path.stem) == day))}
            key = same.pop() if len(same) == 1 else key
        order = {None: 1, meeting_notes.CHAT: 2, meeting_notes.NOTES: 3}
        files = sorted((f for f in listing if f.path == path or f.key == key),
                       key=lambda f: (0 if _is_media(f.path) else order[f.role], f.path.name))
        return [f.path for f in files]

    def _meeting(self, path: Path) -> Document:
        """The meeting of a notes or chat file, as its recording or transcript names and dates it (no words:
        nothing is transcribed for this); a meeting with only notes and chat is called what its notes say."""
        files = self._meeting_files(path)
        for candidate in files:
            if meeting_notes.role(candidate) == meeting_notes.NOTES:
                break
            try:
                sidecar = self._sidecar(candidate) if _is_media(candidate) else candidate
                heard = transcripts.read(sidecar) if sidecar else Transcript([])
            except ItemError:
                if not _is_media(candidate):
                    continue  # a chat log, or a transcript too broken to name its meeting
                heard = Transcript([])
            return self._document(self._item(candidate), Transcript([], heard.title, heard.date), "")
        titles = (self._notes_title(p) for p in files if meeting_notes.role(p) == meeting_notes.NOTES)
        title = next((t for t in titles if t), None) or meeting_notes.meeting_name(files[0]) or path.parent.name
        return self._document(self._item(files[0]), Transcript([], title), "")

    def _notes_title(self, path: Path) -> str | None:
        try:
            return meeting_notes.read_notes(path, self.context.ingest.max_text_bytes).title
        except ItemError:
            return None

    def _item(self, path: Path) -> Item:
        return Item(path.relative_to(self._folder()).as_posix(), "", path)

    def _notes_document(self, item: Item) -> Document:
        notes = meeting_notes.read_notes(item.path, self.context.ingest.max_text_bytes)
        uri, label = self._cited(item)
        return self._beside(item, meeting_notes.NOTES, [
            Block(text, Locator(headings=headings),
                  Citation(uri, f"{label}, notes § {' › '.join(headings)}" if headings else f"{label}, notes"))
            for text, headings in notes.sections
        ])

    def _chat_document(self, item: Item) -> Document:
        messages = meeting_notes.read_chat(item.path, self.context.ingest.max_text_bytes)
        uri, label = self._cited(item)
        return self._beside(item, meeting_notes.CHAT, [
            Block(" ".join(filter(None, (f"[{m.when}]" if m.when else None, f"{m.speaker}:" if m.speaker else None,
                                         m.text))),
                  citation=Citation(uri, f"{label}, chat at {m.when}" if m.when else f"{label}, chat"),
                  people=(m.speaker,) if m.speaker else ())
            for m in messages
        ])

    def _cited(self, item: Item) -> tuple[str, str]:
        """A notes or chat file's own address (the source's ``url`` template, never ``recording_url``) and label."""
        return file_uri(item.path, item.native_id, self.settings.url), f"{self.settings.name}/{item.native_id}"

    def _beside(self, item: Item, role: str, blocks: list[Block]) -> Document:
        """Notes or chat as a document of their meeting: its title, date and context, cited to their own file."""
        meeting = self._meeting(item.path)
        uri, label = self._cited(item)
        return replace(
            meeting,
            id=document_id(self.settings.name, item.native_id),
            native_id=item.native_id,
            citation=Citation(uri, f"{label}, {role}"),
            blocks=tuple(blocks),
            digest=_beside_digest(item.path, meeting),
            context=f"{meeting.context}, {role}",
        )

    def _document(self, item: Item, transcript: Transcript, digest: str) -> Document:
        path = item.path
        date, date_source = self._date(path, transcript)
        uri = file_uri(path, item.native_id, self.settings.recording_url or self.settings.url)
        label = f"{self.settings.name}/{item.native_id}"
        blocks = tuple(
            Block(
                f"{speaker}: {text}" if speaker else text,
                Locator(start=start, end=end),
                Citation(self._at(uri, start), f"{label} at {clock(start)}"),
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
            date_source=date_source,
            access=self.settings.access,
            context=f"meeting of {date:%Y-%m-%d}",
        )

    def _at(self, uri: str, start: float) -> str:
        """``uri`` at ``start``: a recording_url takes ?t=<seconds> as video sites do; a file, #t=MM:SS."""
        return with_query(uri, "t", str(int(start))) if self.settings.recording_url else f"{uri}#t={clock(start)}"

    def _date(self, path: Path, transcript: Transcript) -> tuple[datetime, str]:
        """When the meeting was held, and where that date came from: what the transcript or the file name
        says comes before a commit, which records when the file was filed, not when people met."""
        if transcript.date is not None:
            return transcript.date, dates.TRANSCRIPT
        named = _date_in_name(path.stem)
        if named is not None:
            return named, dates.FILE_NAME
        committed = self.git.date(path)
        if committed is not None:
            return committed, dates.GIT
        return dates.mtime(path), dates.MTIME


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




class _File(NamedTuple):
    path: Path
    key: str  # meeting_notes.meeting_key
    role: str | None


def _beside_digest(path: Path, meeting: Document) -> str:
    """A notes or chat file's bytes and what it takes from its meeting, so either changing reloads it."""
    taken = f"{file_digest(path)}+{meeting.title}+{meeting.updated}+{meeting.date_source}"
    return hashlib.sha256(taken.encode()).hexdigest()


def _date_in_name(stem: str) -> datetime | None:
    """A date written into the file name (20240718, 2024-07-18), as exported recordings usually have."""
    found = re.search(r"(?<!\d)(20\d\d)-?(\d\d)-?(\d\d)(?!\d)", stem)
    if not found:
        return None
    try:
        return datetime(*map(int, found.groups()), tzinfo=UTC)
    except ValueError:
        return None
