"""What a Slack channel says about itself: topic, purpose and name over time, who set them and when, and its pins.

Slack records these as channel events in the day files (``channel_topic``, ``channel_name``, ``pinned_item`` …)
and as the channel's record in channels.json (the current topic and purpose with who set them, the pins).
They answer "what did the topic say?" or "what was this channel called before?", so they are gathered into
one "about" document per channel instead of being dropped with joins and other noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.slack_text import Names, author, message_text, render

# event subtype -> what it changed; private channels exported by older Slack use group_* names
_EVENTS = {f"{prefix}_{what}": what for prefix in ("channel", "group")
           for what in ("topic", "purpose", "name", "archive", "unarchive")}
_EVENTS |= {"pinned_item": "pin", "unpinned_item": "unpin"}
EVENT_SUBTYPES = frozenset(_EVENTS)
# what a fact is about -> how the title names it, in the title's order
_SUBJECTS = {"topic": "topic", "purpose": "purpose", "name": "renames", "pin": "pins", "archive": "archiving"}


@dataclass(frozen=True)
class Fact:
    """One line of a channel's about document: when it became true, and ``ts`` and ``who`` for an event message."""

    text: str
    subject: str | None = None  # a key of _SUBJECTS; None for the opening line
    when: datetime | None = None
    ts: str | None = None
    who: str | None = None


@dataclass(frozen=True)
class About:
    """A channel's about document: a title naming what it holds (and former names), and its lines."""

    title: str
    facts: list[Fact]


def channel_about(label: str, record: dict, messages: dict[str, dict], names: Names) -> About | None:
    """The channel as it stands (from its record), then its events in time order; None when it says nothing.

    ``messages`` are the channel's messages by ts, events included and deleted messages left out: a pin shows
    the pinned message's text from there (as last edited), else the copy Slack put in the pin event.
    """
    ordered = sorted(messages.values(), key=lambda raw: float(raw["ts"]))
    events = [_event(raw, messages, names) for raw in ordered if raw.get("subtype") in EVENT_SUBTYPES]
    current = [fact for fact in (_setting("topic", record.get("topic"), names),
                                 _setting("purpose", record.get("purpose"), names)) if fact]
    former = [str(n) for n in record.get("previous_names") or [] if n]
    if former:
        current.append(Fact("Formerly named " + ", ".join(f"#{n}" for n in former), "name"))
    for pin in record.get("pins") or []:
        if isinstance(pin, dict) and pin.get("id"):
            by = names.users.get(str(pin.get("user")), "")
            current.append(Fact(f"Pinned{f' by {by}' if by else ''}{_on(pin.get('created'))}: "
                                f"{_pinned(str(pin['id']), messages, names, {})}", "pin", _when(pin.get("created"))))
    if record.get("is_archived"):
        current.append(Fact("The channel is archived.", "archive"))
    if not current and not events:
        return None
    former += [str(raw.get("old_name")) for raw in ordered if _EVENTS.get(raw.get("subtype")) == "name"
               and raw.get("old_name") and str(raw.get("old_name")) not in former]
    held = {fact.subject for fact in (*current, *events)}
    title = (f"About {label}{' (formerly ' + ', '.join(f'#{n}' for n in former) + ')' if former else ''}: "
             + ", ".join(name for subject, name in _SUBJECTS.items() if subject in held))
    creator = names.users.get(str(record.get("creator")), "")
    created = f" Created{f' by {creator}' if creator else ''}{_on(record.get('created'))}." \
        if creator or _on(record.get("created")) else ""
    return About(title, [Fact(f"{title}.{created}", None, _when(record.get("created"))), *current, *events])


def _setting(subject: str, setting: object, names: Names) -> Fact | None:
    if not isinstance(setting, dict) or not str(setting.get("value") or "").strip():
        return None
    by = names.users.get(str(setting.get("creator")), "")
    when = _on(setting.get("last_set"))
    told = f" (set{f' by {by}' if by else ''}{when})" if by or when else ""
    return Fact(f"{subject.capitalize()}: {render(str(setting['value']), names)}{told}", subject,
                _when(setting.get("last_set")))


def _event(raw: dict, messages: dict[str, dict], names: Names) -> Fact:
    what = _EVENTS[str(raw["subtype"])]
    if what in ("topic", "purpose") and what not in raw:  # without the field Slack writes, its sentence says it
        said = render(str(raw.get("text") or ""), names) or f"changed the channel {what}"
    elif what in ("topic", "purpose"):
        value = render(str(raw[what] or ""), names)
        said = f"set the channel {what}: {value}" if value else f"cleared the channel {what}"
    elif what == "name":
        said = f"renamed the channel from #{raw.get('old_name') or '?'} to #{raw.get('name') or '?'}"
    elif what in ("archive", "unarchive"):
        said = f"{what}d the channel"
    else:
        attachment = next((a for a in raw.get("attachments") or [] if isinstance(a, dict) and a.get("ts")), {})
        said = f"{what}ned a message: {_pinned(str(attachment.get('ts') or ''), messages, names, attachment)}"
    return Fact(said, what.removeprefix("un"), _when(raw["ts"]), str(raw["ts"]), author(raw, names))


def _pinned(ts: str, messages: dict[str, dict], names: Names, copy: dict) -> str:
    """The pinned message as a reader sees it: who said what when."""
    raw = messages.get(ts)
    if raw is not None:
        return f"{author(raw, names)}{_at(ts)}: {message_text(raw, names, bots=True)}"
    if copy.get("text"):  # the message is not in the export: Slack copied it into the pin event
        who = copy.get("author_name") or copy.get("author_subname") or "someone"
        return f"{who}{_at(ts)}: {render(str(copy['text']), names)}"
    return f"a message{_at(ts)} that is not in the export"


def _when(value: object) -> datetime | None:
    try:
        seconds = float(str(value))
        return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None
    except (ValueError, OverflowError, OSError):  # not a number, or not a time (channels.json is not ours)
        return None


def _on(value: object) -> str:
    when = _when(value)
    return f" on {when:%Y-%m-%d %H:%M} UTC" if when else ""


def _at(ts: str) -> str:
    when = _when(ts)
    return f" ({when:%Y-%m-%d %H:%M})" if when else ""
