"""Slack message markup rendered as a reader sees it in the app: names, not ids; labels, not raw markup.

Pure functions over parsed JSON, so the connector and its tests share one idea of what a message says.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urlparse

from connectors.links import labelled

# Subtypes that carry what someone said; topic, purpose, name, archive and pin events go to the channel's
# about document (slack_about.py), and the rest (joins, bot_add, tombstones …) is noise for a reader.
# bot_message is let through only when the source asks for bots.
CONTENT_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "file_comment", "file_mention", "me_message"})
BOT_SUBTYPE = "bot_message"
_SPECIAL = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}
_TOKEN = re.compile(r"<([^<>\n]+)>")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@dataclass(frozen=True)
class Names:
    """What ids in message markup stand for, and the contact details that must never be rendered."""

    users: dict[str, str]
    channels: dict[str, str]
    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()  # digits only

    @classmethod
    def from_export(cls, users: list, channels: list) -> Names:
        emails, phones = set(), set()
        for user in users:
            profile = user.get("profile") or {}
            emails.update(str(v).lower() for k, v in profile.items() if "email" in k and v)
            phones.update(_digits(str(v)) for k, v in profile.items() if "phone" in k and len(_digits(str(v))) >= 7)
        return cls(
            users={u["id"]: display_name(u) for u in users if u.get("id")},
            channels={c["id"]: str(c.get("name") or c["id"]) for c in channels if c.get("id")},
            emails=frozenset(emails),
            phones=frozenset(phones),
        )


def display_name(user: dict) -> str:
    """The name Slack shows: the display name, else the full name, else the handle."""
    profile = user.get("profile") or {}
    for value in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
        if value and str(value).strip():
            return str(value).strip()
    return str(user.get("id") or "someone")


def is_bot(msg: dict) -> bool:
    return msg.get("subtype") == BOT_SUBTYPE or bool(msg.get("bot_id"))


def author(msg: dict, names: Names) -> str:
    user = msg.get("user") or (msg.get("comment") or {}).get("user")
    if user in names.users:
        return names.users[user]
    profile = msg.get("user_profile") or msg.get("bot_profile") or {}
    for value in (msg.get("username"), profile.get("display_name"), profile.get("real_name"), profile.get("name")):
        if value:
            return str(value)
    return user or ("bot" if is_bot(msg) else "someone")


def render(text: str, names: Names) -> str:
    """Markup to plain text: ``<@U1>`` to ``@Ann``, ``<url|label>`` to ``label (url)``, entities decoded."""
    rendered = _TOKEN.sub(lambda m: _token(m.group(1), names), text or "")
    return _scrub(html.unescape(rendered), names).strip()


def _token(body: str, names: Names) -> str:
    target, _, label = body.partition("|")
    if target.startswith("@"):
        return "@" + names.users.get(target[1:], label or target[1:])
    if target.startswith("#"):
        return "#" + names.channels.get(target[1:], label or target[1:])
    if target.startswith("!"):
        word = target[1:]
        if word in _SPECIAL:
            return _SPECIAL[word]
        if word.startswith("subteam^"):
            return label if label.startswith("@") else "@" + (label or "team")
        return label or ("@" + word)  # <!date^…|fallback> and anything newer: the fallback is what readers see
    if target.startswith(("mailto:", "tel:")):
        return label or target.partition(":")[2]
    if _private_file_url(target):
        return label or "[file]"
    return labelled(label, target)


def _private_file_url(url: str) -> bool:
    """Slack file download links carry the exporter's access token: their URL is never kept."""
    host = urlparse(url).hostname or ""
    return host.startswith("files.slack.com") or "t=xox" in url


def _scrub(text: str, names: Names) -> str:
    """Contact details from users.json stay out of the corpus even when someone pasted them."""
    if names.emails:
        text = _EMAIL.sub(lambda m: "[email]" if m.group(0).lower() in names.emails else m.group(0), text)
    if names.phones:
        text = _PHONE.sub(lambda m: "[phone]" if _digits(m.group(0)) in names.phones else m.group(0), text)
    return text


def message_text(msg: dict, names: Names, bots: bool) -> str:
    """What the message says, with shared files by title and, for bots, their attachments."""
    parts = [render(str(msg.get("text") or ""), names)]
    comment = msg.get("comment")
    if isinstance(comment, dict) and comment.get("comment") and not parts[0]:
        parts[0] = render(str(comment["comment"]), names)
    files = msg.get("files") or ([msg["file"]] if isinstance(msg.get("file"), dict) else [])
    for file in files:
        if not isinstance(file, dict):
            continue
        title = str(file.get("title") or file.get("name") or "").strip()
        if title and title not in parts[0]:
            parts.append(f"[file: {title}]")
    if bots:
        for attachment in msg.get("attachments") or []:
            if isinstance(attachment, dict):
                parts.extend(_attachment(attachment, names))
    return "\n".join(p for p in parts if p)


def _attachment(attachment: dict, names: Names) -> list[str]:
    parts = [render(str(attachment.get(key) or ""), names) for key in ("pretext", "title")]
    parts.append(render(str(attachment.get("text") or attachment.get("fallback") or ""), names))
    return [p for p in parts if p]
