"""``kind = "slack"``: a Slack workspace export (zip or folder) as threads and bursts of conversation.

A thread (parent and replies, wherever the replies' day files are) is one document; other messages
are grouped per conversation into bursts split at a quiet gap or a message cap. Native ids are the
conversation id and the first ts, so a newer export of the same workspace updates documents instead
of duplicating them, and an item's stamp is a hash of its rendered content: only conversations that
changed are embedded again. Each channel's topic, purpose, renames and pins are one more document,
its "about" document (``<id>/about``), read from the same day files on every listing, so it changes
whenever any of them does. Private channels, DMs and group DMs are read only with ``private = true``
and then carry their own access groups instead of the source's.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from connectors import dates
from connectors.base import ConnectorContext
from connectors.limits import too_large
from connectors.slack_about import About, channel_about
from connectors.slack_export import SlackExport
from connectors.slack_text import BOT_SUBTYPE, CONTENT_SUBTYPES, Names, author, is_bot, message_text
from corpus.config import SourceSettings
from corpus.errors import ConfigError, ItemError
from corpus.records import Block, Citation, Document, Item, Locator, document_id

_OPENING_CHARS = 80
ABOUT = "about"  # native id of a channel's about document: <conversation id>/about


class Settings(SourceSettings):
    cites_files: ClassVar[bool] = False  # messages are cited by permalink (workspace_url)

    kind: Literal["slack"]
    workspace_url: str | None = Field(default=None, description="e.g. https://acme.slack.com, for permalinks")
    channels: tuple[str, ...] = ()  # globs on conversation names; empty: all
    exclude_channels: tuple[str, ...] = ()
    private: bool = False  # private channels, DMs and group DMs too
    bots: bool = False  # bot messages and message attachments
    # a quiet channel answers hours later, often the same day: at 4 h, "it was zeroMQ" (7 h 26 min after the
    # question, in houstondatavis #tools) left its question's document and neither was found by the other's words
    gap_minutes: int = Field(default=720, ge=1)
    max_burst_messages: int = Field(default=50, ge=1)
    max_unpacked_mb: int = Field(default=2048, ge=1)
    max_members: int = Field(default=200_000, ge=1)

    @field_validator("workspace_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("use the workspace's address, e.g. https://acme.slack.com")
        return value.rstrip("/") if value else value


def connector(settings: Settings, context: ConnectorContext | None = None) -> SlackConnector:
    return SlackConnector(settings, context)


@dataclass(frozen=True)
class Conversation:
    id: str
    name: str  # what the channel globs match; a DM's id
    folder: str  # its folder in the export
    label: str  # how a reader names it: "#general", "DM Ann, Bob"
    access: tuple[str, ...]
    record: dict = field(default_factory=dict, compare=False)  # its entry in channels.json (topic, purpose, pins)


@dataclass(frozen=True)
class Message:
    ts: str
    thread_ts: str | None
    author: str
    text: str

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(float(self.ts), UTC)

    @property
    def line(self) -> str:
        return f"{self.author} ({self.when:%Y-%m-%d %H:%M}): {self.text}"


class SlackConnector:
    def __init__(self, settings: Settings, context: ConnectorContext | None = None):
        self.settings = settings
        self.cap = (context or ConnectorContext()).ingest.max_text_bytes
        self._conversations: dict[str, Conversation] = {}
        self._broken: dict[str, str] = {}  # native id of an unreadable file -> reason
        # One conversation's documents, kept from listing to loading. Items are loaded in listing
        # order, so each conversation is parsed at most twice and memory holds one at a time.
        self._cached: tuple[str, dict[str, Document]] | None = None
        self._export: SlackExport | None = None
        self._names: Names | None = None

    def items(self) -> Iterator[Item]:
        s = self.settings
        self._export = export = SlackExport(s.path, s.max_unpacked_mb, s.max_members, self.cap)
        self._broken = {}
        for name, stamp in export.unsafe:
            self._broken[name] = "refused: unsafe path in zip (absolute or '..'); not read"
            yield Item(native_id=name, stamp=stamp, path=s.path)
        self._conversations, self._names = self._list_conversations(export)
        for conversation in self._conversations.values():
            docs, broken = self._read(conversation)
            self._cached = (conversation.id, docs)
            for native_id, (stamp, reason) in broken.items():
                self._broken[native_id] = reason
                yield Item(native_id=native_id, stamp=stamp, path=s.path)
            for native_id, doc in docs.items():
                yield Item(native_id=native_id, stamp=doc.digest, path=s.path)

    def digest(self, item: Item) -> str:
        return item.stamp  # already a hash of the rendered content

    def load(self, item: Item) -> Document:
        if self._export is None:
            for _ in self.items():  # load() without a listing first
                pass
        if item.native_id in self._broken:
            raise ItemError(self._broken[item.native_id])
        conversation = self._conversations.get(item.native_id.split("/", 1)[0])
        if conversation is None:
            raise ItemError("conversation no longer in the export (or out of scope)")
        if self._cached is None or self._cached[0] != conversation.id:
            self._cached = (conversation.id, self._read(conversation)[0])
        try:
            return self._cached[1][item.native_id]
        except KeyError:
            raise ItemError("no longer in the export") from None

    def _list_conversations(self, export: SlackExport) -> tuple[dict[str, Conversation], Names]:
        """Conversations in scope, by id, and the names that render their messages."""
        users = _records(export, "users.json")
        lists = {name: _records(export, name) if export.has(name) else [] for name in
                 ("channels.json", "groups.json", "mpims.json", "dms.json")}
        names = Names.from_export(users, [c for records in lists.values() for c in records])
        source = self.settings.name
        found: dict[str, Conversation] = {}
        for listing, records in lists.items():
            for record in records:
                private = listing != "channels.json" or bool(record.get("is_private"))
                if private and not self.settings.private:
                    continue
                cid = str(record["id"])
                name = str(record.get("name") or cid)
                if listing == "dms.json":
                    members = ", ".join(names.users.get(m, m) for m in record.get("members") or [])
                    label = f"DM {members}".strip()
                elif listing == "mpims.json":
                    label = "group DM " + ", ".join(names.users.get(m, m) for m in record.get("members") or [])
                else:
                    label = f"#{name}"
                access = (f"{source}:private", f"{source}:private:{name}") if private else self.settings.access
                if self._in_scope(name):
                    found[cid] = Conversation(cid, name, name if listing != "dms.json" else cid, label, access, record)
        return found, names

    def _in_scope(self, name: str) -> bool:
        s = self.settings
        if s.channels and not any(fnmatch.fnmatchcase(name, g) for g in s.channels):
            return False
        return not any(fnmatch.fnmatchcase(name, g) for g in s.exclude_channels)

    def _read(self, conversation: Conversation) -> tuple[dict[str, Document], dict[str, tuple[str, str]]]:
        """The conversation's documents by native id, and its unreadable day files with (stamp, reason)."""
        export = self._export
        latest: dict[str, dict] = {}  # ts -> message; a later copy (an edit) replaces an earlier one
        deleted: set[str] = set()
        broken: dict[str, tuple[str, str]] = {}
        for name in export.day_files(conversation.folder):
            try:
                raw = export.read(name)
            except ItemError as exc:
                broken[name] = (export.stamp(name), str(exc))
                continue
            stamp = hashlib.sha1(raw).hexdigest()
            try:
                day = json.loads(raw)
                if not isinstance(day, list):
                    raise ValueError(f"expected a list of messages, found {type(day).__name__}")
            except ValueError as exc:
                broken[name] = (stamp, f"not a Slack day file: {' '.join(str(exc).split())[:160]}")
                continue
            bad = []
            for number, entry in enumerate(day, start=1):
                if isinstance(entry, dict) and entry.get("subtype") == "message_deleted":
                    deleted.add(str(entry.get("deleted_ts")))
                    continue
                if isinstance(entry, dict) and entry.get("subtype") == "message_changed":
                    entry = entry.get("message")  # the edited message, whole, under its original ts
                if isinstance(entry, dict) and _valid_ts(entry.get("ts")):
                    latest[str(entry["ts"])] = entry
                else:
                    bad.append(number)
            if bad:
                broken[name] = (stamp, f"{len(bad)} malformed message(s) skipped (number {', '.join(map(str, bad[:5]))}"
                                       f"{' …' if len(bad) > 5 else ''}: not a message object with a ts)")
        kept = {ts: raw for ts, raw in latest.items() if ts not in deleted}
        messages = sorted((m for raw in kept.values() if (m := self._message(raw))), key=lambda m: float(m.ts))
        about = channel_about(conversation.label, conversation.record, kept, self._names)
        documents = {}
        for doc in [*self._documents(conversation, messages), *([self._about(conversation, about)] if about else [])]:
            size = sum(len(b.text) for b in doc.blocks)  # a thread gathers replies from many day files
            if size > self.cap:
                broken[doc.native_id] = (doc.digest, str(too_large(size, self.cap)))
            else:
                documents[doc.native_id] = doc
        return documents, broken

    def _message(self, raw: dict) -> Message | None:
        """The message as a reader sees it, or None for noise, deleted messages and (by default) bots."""
        if raw.get("hidden") or raw.get("subtype") not in CONTENT_SUBTYPES | {BOT_SUBTYPE}:
            return None
        if is_bot(raw) and not self.settings.bots:
            return None
        text = message_text(raw, self._names, self.settings.bots)
        if not text:
            return None
        thread_ts = raw.get("thread_ts")
        return Message(str(raw["ts"]), str(thread_ts) if thread_ts else None, author(raw, self._names), text)

    def _documents(self, conversation: Conversation, messages: list[Message]) -> Iterator[Document]:
        roots = {m.thread_ts for m in messages if m.thread_ts and m.thread_ts != m.ts}
        threads: dict[str, list[Message]] = {}
        burst: list[Message] = []
        gap = self.settings.gap_minutes * 60
        for message in messages:
            if message.thread_ts in roots:
                threads.setdefault(message.thread_ts, []).append(message)
                continue
            if burst and (float(message.ts) - float(burst[-1].ts) > gap
                          or len(burst) >= self.settings.max_burst_messages):
                yield self._document(conversation, burst, thread=False)
                burst = []
            burst.append(message)
        if burst:
            yield self._document(conversation, burst, thread=False)
        for thread_ts, replies in threads.items():
            yield self._document(conversation, replies, thread=True, native_ts=thread_ts)

    def _document(self, conversation: Conversation, messages: list[Message], thread: bool,
                  native_ts: str | None = None) -> Document:
        first, last = messages[0], messages[-1]
        blocks = tuple(
            Block(
                text=m.line,
                locator=Locator(start=float(m.ts), end=float(m.ts)),
                citation=self._citation(conversation, m),
                people=(m.author,),
            )
            for m in messages
        )
        title = f"{conversation.label} {first.when:%Y-%m-%d}{' thread' if thread else ''}: {_opening(first.text)}"
        return self._assemble(conversation, f"{conversation.id}/{native_ts or first.ts}", title, blocks,
                              first.when, last.when)

    def _about(self, conversation: Conversation, about: About) -> Document:
        """The channel's about document, cited to the channel; an event's line cites its message.

        Its lines carry no time locator: the document is about the channel, not a stretch of its conversation,
        so reading on from a message never lands in it.
        """
        channel = self._channel_citation(conversation)
        blocks = []
        for fact in about.facts:
            if fact.ts is None:
                blocks.append(Block(text=fact.text, citation=channel))
            else:
                event = Message(fact.ts, None, fact.who or "someone", fact.text)
                blocks.append(Block(text=event.line, citation=self._citation(conversation, event),
                                    people=(event.author,)))
        dated = [fact.when for fact in about.facts if fact.when]
        return self._assemble(conversation, f"{conversation.id}/{ABOUT}", about.title, tuple(blocks),
                              min(dated, default=None), max(dated, default=None), channel)

    def _assemble(self, conversation: Conversation, native_id: str, title: str, blocks: tuple[Block, ...],
                  created: datetime | None, updated: datetime | None, citation: Citation | None = None) -> Document:
        """The document, with a digest of all it renders: its stamp, so only what changed is embedded again."""
        content = json.dumps([title, conversation.access, [(b.text, b.citation.uri, b.people) for b in blocks]])
        return Document(
            id=document_id(self.settings.name, native_id),
            source=self.settings.name,
            kind="slack",
            native_id=native_id,
            title=title,
            citation=citation or blocks[0].citation,
            blocks=blocks,
            digest=hashlib.sha256(content.encode()).hexdigest(),
            created=created,
            updated=updated,
            date_source=dates.SLACK,
            authors=tuple(dict.fromkeys(person for b in blocks for person in b.people)),
            access=conversation.access,
            context=conversation.label,
        )

    def _channel_citation(self, conversation: Conversation) -> Citation:
        label = f"{conversation.label} (channel details)"
        base = self.settings.workspace_url
        if not base:
            return Citation(f"slack://{conversation.name}", label)
        return Citation(f"{base}/archives/{conversation.id}", label)

    def _citation(self, conversation: Conversation, message: Message) -> Citation:
        label = f"{conversation.label}, {message.when:%Y-%m-%d %H:%M} UTC"
        base = self.settings.workspace_url
        if not base:
            return Citation(f"slack://{conversation.name}/{message.ts}", label)
        uri = f"{base}/archives/{conversation.id}/p{message.ts.replace('.', '')}"
        if message.thread_ts and message.thread_ts != message.ts:
            uri += f"?thread_ts={message.thread_ts}&cid={conversation.id}"
        return Citation(uri, label)


def _records(export: SlackExport, name: str) -> list[dict]:
    records = export.read_json(name)
    if not isinstance(records, list) or not all(isinstance(r, dict) and r.get("id") for r in records):
        raise ConfigError(f"{export.path}: {name} is not a list of objects with an id")
    return records


def _valid_ts(value: object) -> bool:
    try:
        return float(str(value)) > 0
    except ValueError:
        return False


def _opening(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _OPENING_CHARS else line[:_OPENING_CHARS].rsplit(" ", 1)[0] + " …"
