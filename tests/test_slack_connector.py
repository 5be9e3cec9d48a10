"""The Slack export connector on generated exports and the real ones in ../shared/data/slack.

Generated exports model what the real ones lack (threads across days, edits, a broken day file,
private conversations, hostile zips); the real ones check that we read what Slack actually writes.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from connectors import load_config
from connectors.slack import Settings, SlackConnector
from connectors.slack_text import Names, render
from corpus.errors import ConfigError
from ingest.pipeline import ingest
from server.search import Searcher
from store.filters import Filters
from tests.conftest import load_all, shared, write_config
from tests.test_ingest import CountingEmbedder, snapshot

WORKSPACE = "https://acme.slack.com"
T0 = 1456840920.0001  # 2016-03-01 14:02 UTC
DAY = 86400

USERS = [
    {"id": "U1", "name": "ann", "real_name": "Ann Lee",
     "profile": {"display_name": "Ann", "email": "ann.lee@acme.example", "phone": "+1 (555) 010-0200"}},
    {"id": "U2", "name": "bob", "real_name": "Bob Stone", "profile": {"display_name": "", "real_name": "Bob Stone",
                                                                       "email": "bob@acme.example"}},
    {"id": "U3", "name": "carol", "profile": {}},
]


def ts(seconds: float) -> str:
    return f"{seconds:.6f}"


def msg(user: str, at: float, text: str, **extra) -> dict:
    return {"type": "message", "user": user, "text": text, "ts": ts(at), **extra}


THREAD = ts(T0 + 60)
GENERAL = {
    "2016-03-01.json": [
        msg("U1", T0, "Deploys go through <#C2|random> first, ask <@U2> &amp; <@U3|carol>"),
        msg("U3", T0 + 30, "<@U3|carol> has joined the channel", subtype="channel_join"),
        msg("U2", T0 + 60, "Where is the runbook for <https://wiki.acme.example/oncall|on-call>?",
            thread_ts=THREAD, reply_count=2),
        msg("U1", T0 + 120, "It is pinned, <!here>", thread_ts=THREAD, parent_user_id="U2"),
        msg("U3", T0 + 180, "The pager rotation is weekly", edited={"user": "U3", "ts": ts(T0 + 200)}),
        {"type": "message", "subtype": "message_changed", "ts": ts(T0 + 200),
         "message": msg("U3", T0 + 180, "The pager rotation is weekly, handed over on Mondays")},
        msg("", T0 + 240, "Deployed build 42", subtype="bot_message", bot_id="B1", username="deploybot",
            attachments=[{"fallback": "build 42", "text": "all checks green"}]),
        msg("U1", T0 + 300, "here it is", files=[{
            "name": "runbook.pdf", "title": "On-call runbook",
            "url_private": "https://files.slack.com/files-pri/T1-F1/runbook.pdf?t=xoxe-1-2-3-secret"}]),
        msg("U2", T0 + 360, "This message was deleted.", subtype="tombstone", hidden=True),
        msg("U1", T0 + 420, "Welcome!", subtype="channel_topic"),
    ],
    "2016-03-02.json": [
        msg("U2", T0 + DAY, "Thanks, found it. Mail <mailto:ann.lee@acme.example|ann.lee@acme.example> for access",
            subtype="thread_broadcast", thread_ts=THREAD),
        msg("U1", T0 + DAY + 600, "Next week <!subteam^S1|@oncall> hands over <!date^1457000000^{date}|March 3rd>"),
        "not a message",
        {"type": "message", "user": "U1", "text": "no ts"},
        msg("U2", T0 + DAY + 700, "Deleted before the export", subtype=None),
        {"type": "message", "subtype": "message_deleted", "deleted_ts": ts(T0 + DAY + 700), "ts": ts(T0 + DAY + 800)},
    ],
    "2016-03-03.json": "[{not json",
}


def write_export(root: Path, general: dict | None = None) -> Path:
    """A small export in Slack's layout: public, archived, private and DM conversations."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "users.json": USERS,
        "channels.json": [
            {"id": "C1", "name": "general", "topic": {"value": "company-wide"}, "is_archived": False},
            {"id": "C2", "name": "random", "is_archived": True},
        ],
        "groups.json": [{"id": "G1", "name": "secret-plans", "is_private": True}],
        "dms.json": [{"id": "D1", "members": ["U1", "U2"]}],
        "mpims.json": [],
        "general": general or GENERAL,
        "random": {"2016-02-01.json": [msg("U3", T0 - 30 * DAY, "archived but still searchable")]},
        "secret-plans": {"2016-03-01.json": [msg("U1", T0, "the acquisition of Initech closes Friday")]},
        "D1": {"2016-03-01.json": [msg("U2", T0, "can you cover my pager shift")]},
    }
    for name, content in files.items():
        if isinstance(content, dict):
            (root / name).mkdir(exist_ok=True)
            for day, messages in content.items():
                (root / name / day).write_text(messages if isinstance(messages, str) else json.dumps(messages))
        else:
            (root / name).write_text(json.dumps(content))
    return root


def slack(path: Path, **options) -> SlackConnector:
    return SlackConnector(Settings(name="acme", kind="slack", path=path, **options))




def texts(doc) -> list[str]:
    return [b.text for b in doc.blocks]


def test_markup_renders_as_a_reader_sees_it():
    names = Names.from_export(USERS, [{"id": "C2", "name": "random"}])
    cases = {
        "<@U1> and <@U2|bob>": "@Ann and @Bob Stone",
        "<@U3|carol>, <@U9|ghost>, <@U8>": "@carol, @ghost, @U8",
        "see <#C2|random> and <#C2>": "see #random and #random",
        "<https://x.example/a?b=1&amp;c=2|the doc>": "the doc (https://x.example/a?b=1&c=2)",
        "<https://x.example>": "https://x.example",
        "<http://x.example|x.example>": "http://x.example",
        "<mailto:someone@else.example|someone@else.example>": "someone@else.example",
        "<!here> <!channel> <!everyone>": "@here @channel @everyone",
        "<!subteam^S1|@oncall> <!date^1457000000^{date}|March 3rd>": "@oncall March 3rd",
        "a &lt;b&gt; &amp; c": "a <b> & c",
        "<https://files.slack.com/files-pri/T1-F1/x.pdf?t=xoxe-1|x.pdf>": "x.pdf",
        "mail ann.lee@acme.example or call +1 (555) 010-0200": "mail [email] or call [phone]",
    }
    assert {raw: render(raw, names) for raw in cases} == cases


def test_threads_edits_noise_and_citations(tmp_path):
    docs, failed = load_all(slack(write_export(tmp_path / "export")))
    thread = docs[f"C1/{THREAD}"]
    assert texts(thread) == [
        "Bob Stone (2016-03-01 14:03): Where is the runbook for on-call (https://wiki.acme.example/oncall)?",
        "Ann (2016-03-01 14:04): It is pinned, @here",
        "Bob Stone (2016-03-02 14:02): Thanks, found it. Mail [email] for access",  # next day's file, once
    ]
    assert thread.title.startswith("#general 2016-03-01 thread: Where is the runbook")
    assert thread.citation.uri == f"slack://general/{THREAD}"
    assert thread.blocks[1].citation.label == "#general, 2016-03-01 14:04 UTC"
    assert thread.authors == ("Bob Stone", "Ann") and thread.blocks[0].people == ("Bob Stone",)
    assert thread.context == "#general" and thread.created.tzinfo is not None
    assert (thread.created.isoformat(), f"{thread.updated:%F}") == ("2016-03-01T14:03:00.000100+00:00", "2016-03-02")

    burst = docs[f"C1/{ts(T0)}"]
    assert texts(burst) == [
        "Ann (2016-03-01 14:02): Deploys go through #random first, ask @Bob Stone & @carol",
        "carol (2016-03-01 14:05): The pager rotation is weekly, handed over on Mondays",
        "Ann (2016-03-01 14:07): here it is\n[file: On-call runbook]",
    ]
    assert burst.blocks[0].locator.start == burst.blocks[0].locator.end == pytest.approx(T0)
    assert texts(docs[f"C1/{ts(T0 + DAY + 600)}"]) == ["Ann (2016-03-02 14:12): Next week @oncall hands over March 3rd"]
    assert texts(docs[f"C2/{ts(T0 - 30 * DAY)}"])[0].endswith("archived but still searchable")
    assert set(docs) == {f"C1/{THREAD}", f"C1/{ts(T0)}", f"C1/{ts(T0 + DAY + 600)}", f"C2/{ts(T0 - 30 * DAY)}",
                         "C1/about", "C2/about"}  # topic events and archiving: tests/test_slack_about.py
    everything = json.dumps([texts(d) for nid, d in docs.items() if not nid.endswith("/about")])
    for absent in ("joined", "Deployed build", "deleted", "Deleted", "Welcome", "xoxe", "files-pri", "ann.lee",
                   "Initech"):
        assert absent not in everything
    assert failed["general/2016-03-03.json"].startswith("not a Slack day file: ")
    assert failed == {"general/2016-03-03.json": failed["general/2016-03-03.json"], "general/2016-03-02.json":
                      "2 malformed message(s) skipped (number 3, 4: not a message object with a ts)"}


def test_bots_private_and_channel_globs_are_opt_in(tmp_path):
    export = write_export(tmp_path / "export")
    docs, _ = load_all(slack(export, bots=True, private=True, workspace_url=WORKSPACE + "/", access=["staff"]))
    bot = next(d for d in docs.values() if "deploybot" in d.authors)
    assert "deploybot (2016-03-01 14:06): Deployed build 42\nall checks green" in texts(bot)
    secret, dm = docs[f"G1/{ts(T0)}"], docs[f"D1/{ts(T0)}"]
    assert secret.access == ("acme:private", "acme:private:secret-plans")
    assert dm.access == ("acme:private", "acme:private:D1") and dm.context == "DM Ann, Bob Stone"
    assert docs[f"C1/{ts(T0)}"].access == ("staff",)
    reply = docs[f"C1/{THREAD}"].blocks[1].citation.uri
    assert reply == f"{WORKSPACE}/archives/C1/p{ts(T0 + 120).replace('.', '')}?thread_ts={THREAD}&cid=C1"
    assert docs[f"C1/{ts(T0)}"].citation.uri == f"{WORKSPACE}/archives/C1/p1456840920000100"

    only, _ = load_all(slack(export, private=True, channels=["gen*", "secret-*"], exclude_channels=["secret-*"]))
    assert {nid.split("/")[0] for nid in only} == {"C1"}


def test_bursts_split_at_quiet_gaps_and_at_the_cap(tmp_path):
    talk = [msg("U1", T0 + minute * 60, f"message {minute}") for minute in (0, 10, 20, 200, 210, 211, 212, 213)]
    docs, _ = load_all(slack(write_export(tmp_path / "export", {"2016-03-01.json": talk}),
                             gap_minutes=60, max_burst_messages=3))
    general = sorted((d for nid, d in docs.items() if nid.startswith("C1/") and nid != "C1/about"),
                     key=lambda d: d.created)
    assert [len(d.blocks) for d in general] == [3, 3, 2]
    assert general[1].native_id == f"C1/{ts(T0 + 200 * 60)}"


def test_an_answer_hours_later_stays_with_its_question(tmp_path):
    """A quiet channel: the answer comes ten hours after the question, the next talk thirteen after that."""
    talk = [msg("U1", T0, "have you gotten R to work in Jupyter on a mac? I got stuck on a dependency"),
            msg("U2", T0 + 3 * 3600, "do you have zeroMQ installed?"),
            msg("U1", T0 + 10 * 3600, "yes, it was zeroMQ"),
            msg("U2", T0 + 23 * 3600, "anyone going to the meetup tonight?")]
    docs, _ = load_all(slack(write_export(tmp_path / "export", {"2016-03-01.json": talk[:2],
                                                               "2016-03-02.json": talk[2:]})))
    general = sorted((d for nid, d in docs.items() if nid.startswith("C1/") and nid != "C1/about"),
                     key=lambda d: d.created)
    assert [[text.rpartition(": ")[2] for text in texts(d)] for d in general] == [
        [m["text"] for m in talk[:3]], [talk[3]["text"]]]


def zip_folder(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return target


def test_zip_reads_like_the_folder_and_refuses_unsafe_members(tmp_path):
    folder = write_export(tmp_path / "export")
    hostile = {"../../evil/2016-01-01.json": b"[]", "/etc/cron.d/x.json": b"[]", "general/../../up.json": b"[]"}
    archive = zip_folder(folder, tmp_path / "export.zip", hostile)
    from_folder, _ = load_all(slack(folder))
    from_zip, failed = load_all(slack(archive))
    assert {k: v.digest for k, v in from_zip.items()} == {k: v.digest for k, v in from_folder.items()}
    assert set(failed) == {*hostile, "general/2016-03-02.json", "general/2016-03-03.json"}
    assert all(failed[name].startswith("refused: unsafe path") for name in hostile)
    assert not (tmp_path.parent / "evil").exists() and not (tmp_path / "up.json").exists()


def _declare_size(archive: Path, member: str, size: int) -> None:
    """Declare a member's unpacked size in its headers and garble its data, so reading it would fail."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(member)
    data = bytearray(archive.read_bytes())
    local = info.header_offset
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    body = local + 30 + name_len + extra_len
    data[body:body + info.compress_size] = b"\xff" * info.compress_size  # an invalid deflate block
    struct.pack_into("<I", data, local + 22, size)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        if data[central + 46:central + 46 + len(member)] == member.encode():
            struct.pack_into("<I", data, central + 24, size)
        central = data.find(b"PK\x01\x02", central + 4)
    archive.write_bytes(bytes(data))


def test_a_corrupt_zip_member_is_one_failure_and_the_rest_is_read(tmp_path):
    archive = zip_folder(write_export(tmp_path / "export"), tmp_path / "export.zip")
    with zipfile.ZipFile(archive) as z:
        size = z.getinfo("export/random/2016-02-01.json").file_size
    _declare_size(archive, "export/random/2016-02-01.json", size)
    docs, failed = load_all(slack(archive))
    assert failed["random/2016-02-01.json"].startswith("cannot read: Error -3 while decompressing")
    assert f"C1/{THREAD}" in docs and not any(nid.startswith("C2/") for nid in docs if nid != "C2/about")


def test_zip_bombs_are_refused_from_declared_sizes_before_reading(tmp_path):
    folder = write_export(tmp_path / "export")
    # 3 GB declared, a few bytes stored: any attempt to read the member would fail its CRC, not hit our cap
    lying = zip_folder(folder, tmp_path / "lying.zip", {"export/general/2016-03-04.json": b"[]"})
    _declare_size(lying, "export/general/2016-03-04.json", 3 * 2**30)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"refused: the zip would unpack to 3,072 MB, more than max_unpacked_mb"):
        list(slack(lying).items())
    assert time.monotonic() - started < 1
    with zipfile.ZipFile(lying) as z, pytest.raises(zlib.error):
        z.read("export/general/2016-03-04.json")  # proof the refusal above never decompressed it

    zeros = zip_folder(folder, tmp_path / "zeros.zip", {"export/general/2016-03-05.json": bytes(20 * 2**20)})
    assert zeros.stat().st_size < 2**20
    with pytest.raises(ConfigError, match="max_unpacked_mb = 8"):
        list(slack(zeros, max_unpacked_mb=8).items())
    with pytest.raises(ConfigError, match=r"has 1\d members, more than max_members = 5"):
        list(slack(zeros, max_members=5).items())


def test_what_is_not_a_slack_export_is_a_clear_error(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(ConfigError, match="not a Slack export: channels.json is missing"):
        list(slack(tmp_path / "notes").items())
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="not a Slack export"):
        list(slack(tmp_path / "notes.txt").items())
    export = write_export(tmp_path / "export")
    (export / "users.json").write_text("{broken")
    with pytest.raises(ConfigError, match="cannot read users.json"):
        list(slack(export).items())


# --- the real exports in ../shared/data/slack ------------------------------------------------------

def test_houstondatavis_export():
    docs, failed = load_all(slack(shared("slack", "houstondatavis"), workspace_url="https://houstondatavis.slack.com"))
    assert failed == {}
    channels = json.loads((shared("slack", "houstondatavis") / "channels.json").read_text())
    # every channel but #meetup, which holds only a join and its archiving (in its about document); archived too
    assert {d.context for nid, d in docs.items() if not nid.endswith("/about")} == \
        {f"#{c['name']}" for c in channels} - {"#meetup"}
    assert {"#meetup-", "#datasets", "#team-d3"} <= {d.context for d in docs.values()}
    blocks = [b for nid, d in docs.items() if not nid.endswith("/about") for b in d.blocks]
    assert not any(re.search(r"<[@#!]|&amp;|&lt;|files-pri|xoxe", b.text) for b in blocks)
    assert any(b.text.endswith("@Micah Stubbs: that **status** var doesnt seem to be useful") for b in blocks)
    assert not any("has joined the channel" in b.text or "set the channel purpose" in b.text for b in blocks)
    assert any("uploaded a file: unique-topics.json" in b.text for b in blocks)
    permalink = re.compile(r"https://houstondatavis\.slack\.com/archives/C[0-9A-Z]+/p\d{16}$")
    assert all(permalink.match(b.citation.uri) for b in blocks)
    assert len(blocks) == 964 + 61 + 6  # plain, file_share, file_comment: no noise


def test_hfaran_zip_bots_only_when_asked():
    archive = shared("slack", "hfaran-testarchive", "testarchive.zip")
    plain, failed = load_all(slack(archive))
    with_bots, _ = load_all(slack(archive, bots=True))
    assert failed == {}
    assert not any("new commit" in b.text for d in plain.values() for b in d.blocks)
    assert not any("added an integration" in b.text for d in with_bots.values() for b in d.blocks)  # bot_add
    bot_blocks = [b.text for d in with_bots.values() for b in d.blocks if "new commit" in b.text]
    assert len(bot_blocks) > 30 and not any("<http" in t for t in bot_blocks)
    assert any("commit/" in t and " (https://github.com/mesos-magellan/" in t for t in bot_blocks)


def test_slackdump_threads_tombstones_and_scope(tmp_path):
    archive = shared("slack", "slackdump-obfuscated-fixture", "source_export.zip")
    docs, failed = load_all(slack(archive, workspace_url="https://x.slack.com"))
    assert failed == {}
    raw = {}
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            if name.startswith("B75B4C7/") and name.endswith(".json"):
                raw.update({m["ts"]: m for m in json.loads(z.read(name))})
    thread = docs["CO69735E8A/1736478630.905399"]
    assert [b.locator.start for b in thread.blocks] == [1736478630.905399, 1736554746.482349, 1736554783.040199]
    assert [b.text.split(": ", 1)[1] for b in thread.blocks] == [raw[t]["text"] for t in
                                                                  ("1736478630.905399", "1736554746.482349",
                                                                   "1736554783.040199")]
    assert thread.blocks[1].citation.uri == ("https://x.slack.com/archives/CO69735E8A/p1736554746482349"
                                             "?thread_ts=1736478630.905399&cid=CO69735E8A")
    tombstoned = docs["CO69735E8A/1736554828.343759"]  # the parent is a tombstone; its reply stays
    assert [b.locator.start for b in tombstoned.blocks] == [1736554838.911679]
    everything = " ".join(b.text for d in docs.values() for b in d.blocks)
    skipped = [m for m in raw.values() if m.get("subtype") in ("tombstone", "channel_join") or m.get("bot_id")]
    assert len(skipped) == 3 and not any(m["text"] in everything for m in skipped)
    assert {d.native_id.split("/")[0] for d in docs.values()} == {"CO69735E8A"}

    # a DM and a private channel added to the same export stay out unless private = true
    extended = tmp_path / "extended.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(extended, "w") as z:
        for info in source.infolist():
            if info.filename not in ("dms.json", "groups.json"):
                z.writestr(info, source.read(info))
        z.writestr("dms.json", json.dumps([{"id": "D9", "members": ["UOF82F39AE"]}]))
        z.writestr("groups.json", json.dumps([{"id": "G9", "name": "hidden", "is_private": True}]))
        z.writestr("D9/2025-01-10.json", json.dumps([msg("UOF82F39AE", 1736478514.0, "private words")]))
        z.writestr("hidden/2025-01-10.json", json.dumps([msg("UOF82F39AE", 1736478514.0, "group words")]))
    assert set(load_all(slack(extended))[0]) == set(docs)
    opened = load_all(slack(extended, private=True))[0]
    assert set(opened) - set(docs) == {"D9/1736478514.000000", "G9/1736478514.000000"}


# --- end to end: real ingest, real store, real search ------------------------------------------------

def slack_source(name: str, path: Path, **options) -> str:
    lines = [f'[[sources]]\nname = "{name}"\nkind = "slack"\npath = "{path}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def test_ingest_search_and_incremental_reingest(tmp_path, embedder):
    export = write_export(tmp_path / "export")
    config = load_config(write_config(tmp_path, slack_source(
        "acme", export, workspace_url=WORKSPACE, private=True, access=["staff"])))
    counting = CountingEmbedder(embedder)
    first = ingest(config, embedder=counting).sources["acme"]
    assert (first.added, first.failed) == (8, 2)  # two of them about documents (#general's topic, #random archived)
    assert {nid for nid, _ in first.failures} == {"general/2016-03-02.json", "general/2016-03-03.json"}

    searcher = Searcher(config, embedder)
    hit = searcher.search("how often does the pager rotation change hands", limit=3)[0]
    assert "carol (2016-03-01 14:05): The pager rotation is weekly, handed over on Mondays" in hit.text
    assert hit.citation == f"{WORKSPACE}/archives/C1/p1456840920000100" and hit.kind == "slack"
    runbook = searcher.search("where is the on-call runbook", limit=1, filters=Filters(people=["bob stone"]))[0]
    assert runbook.citation.startswith(f"{WORKSPACE}/archives/C1/p") and "@here" in runbook.text
    assert not any("<@" in h.text for h in searcher.search("runbook pager deploys", limit=10))
    assert all("carol" in h.people for h in searcher.search("pager", limit=10, filters=Filters(people=["Carol"])))
    staff = searcher.search("acquisition of Initech", limit=10, filters=Filters(groups=["staff"]))
    assert not any("Initech" in h.text for h in staff)
    insiders = searcher.search("acquisition of Initech", limit=1, filters=Filters(groups=["acme:private:secret-plans"]))
    assert "Initech" in insiders[0].text

    counting.embedded = 0
    again = ingest(config, embedder=counting).sources["acme"]
    assert (again.added, again.updated, again.chunks, counting.embedded) == (0, 0, 0, 0)
    assert again.unchanged == 8

    # a newer export: one more day in #general with a reply to the old thread and a new burst
    before = snapshot(tmp_path / "store")
    newer = shutil.copytree(export, tmp_path / "newer")
    (newer / "general" / "2016-03-05.json").write_text(json.dumps([
        msg("U3", T0 + 4 * DAY, "The runbook moved to the wiki", thread_ts=THREAD),
        msg("U1", T0 + 4 * DAY + 60, "Retro on Friday"),
    ]))
    shutil.rmtree(export)
    newer.rename(export)
    third = ingest(config, embedder=counting).sources["acme"]
    assert (third.added, third.updated, third.unchanged, third.deleted) == (1, 1, 7, 0)
    after = snapshot(tmp_path / "store")
    thread_doc = after[next(i for i, (t, _) in after.items() if "moved to the wiki" in t)][1]["doc_id"]
    untouched = {i: v for i, v in before.items() if v[1]["doc_id"] != thread_doc}
    assert {i: after[i] for i in untouched} == untouched


@pytest.mark.slow
def test_houstondatavis_ingest_never_stores_contact_details(tmp_path, embedder):
    root = shared("slack", "houstondatavis")
    config = load_config(write_config(tmp_path, slack_source("hdv", root, workspace_url="https://houstondatavis.slack.com")))
    stats = ingest(config, embedder=embedder).sources["hdv"]
    assert stats.failed == 0 and stats.added > 200
    users = json.loads((root / "users.json").read_text())
    emails = {u["profile"]["email"].lower() for u in users if u["profile"].get("email")}
    phones = {u["profile"]["phone"] for u in users if sum(c.isdigit() for c in u["profile"].get("phone", "")) >= 7}
    assert len(emails) == 71 and phones
    stored = snapshot(tmp_path / "store")
    assert len(stored) == stats.chunks
    dump = json.dumps(stored).lower()
    assert [e for e in emails if e in dump] == [] and [p for p in phones if p in dump] == []
