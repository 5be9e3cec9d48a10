"""Names for diarized speakers, proposed by Claude from how people address each other in the meeting.

A guess about who someone is must not become a fact in the corpus on its own: each proposal is written as a
comment into the recording's ``.speakers.toml``, with the words it rests on, and takes effect only when a
person removes the ``#`` and ingests again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from connectors import speaker_names
from connectors.base import ConnectorContext, Skipped
from connectors.meetings import MEDIA, MeetingsConnector
from corpus.claude import Claude
from corpus.config import Config
from corpus.errors import ItemError
from corpus.records import Document
from corpus.redact import redact

MAX_CHARS = 24_000  # of transcript sent per meeting: introductions and names come early
SYSTEM = ("You read a meeting transcript whose speakers are labelled 'Speaker 1', 'Speaker 2' and so on, and say "
          "who each label is, only where the transcript shows it: someone introduces themselves ('This is Ann'), "
          "is greeted or addressed by name ('Thanks, Bob'), or is named by another speaker in a way that makes "
          "the label clear. Never guess from topic, role or style. Reply with one JSON object mapping each label "
          'you can name to {"name": "...", "evidence": "the words that show it"}; leave out the others.')


@dataclass(frozen=True)
class Proposal:
    source: str
    path: str  # the recording's id in its source
    written: dict[str, str]  # label: proposed name, as written to the sidecar
    sidecar: str


def propose(config: Config, claude: Claude, sources: list[str] | None = None,
            note: Callable[[str], None] = lambda line: None) -> list[Proposal]:
    """Ask Claude about every diarized recording with unnamed speakers; write what it proposes."""
    proposals = []
    for source in config.sources:
        wanted = not sources or source.name in sources
        if source.kind != "meetings" or not getattr(source, "diarize", False) or not wanted:
            continue
        meetings = MeetingsConnector(source, ConnectorContext(workdir=config.store_path, note=note,
                                                              ingest=config.ingest))
        for item in meetings.items():
            if isinstance(item, Skipped) or item.path.suffix.lower() not in MEDIA:
                continue
            try:
                document = meetings.load(item)
            except ItemError as exc:
                note(f"{source.name}/{item.native_id}: {exc}")
                continue
            unnamed = sorted({p for b in document.blocks for p in b.people if speaker_names.is_label(p)})
            if not unnamed or not claude.available:
                continue
            names = _ask(claude, document, unnamed)
            sidecar = speaker_names.sidecar(item.path)
            written = speaker_names.propose(sidecar, names)
            if written:
                proposals.append(Proposal(source.name, item.native_id, {s: names[s][0] for s in written},
                                          str(sidecar)))
    return proposals


def _ask(claude: Claude, document: Document, unnamed: list[str]) -> dict[str, tuple[str, str]]:
    """{label: (name, evidence)} for the labels Claude could name from the transcript."""
    transcript = redact("\n".join(b.text for b in document.blocks))[:MAX_CHARS]
    reply = claude.ask_json(f"Labels to name: {', '.join(unnamed)}\n\nTranscript:\n{transcript}", system=SYSTEM)
    found = {}
    for label, value in (reply or {}).items():
        if label in unnamed and isinstance(value, dict) and isinstance(value.get("name"), str):
            name = " ".join(value["name"].split())
            if 0 < len(name) <= 80:
                found[label] = (name, str(value.get("evidence", "")))
    return found
