"""Secrets never reach the store, the keyword index, a result or Claude.

One of each kind is planted in a docs folder (body, front matter, a heading, a file name), a Slack
export (a thread's first message, a reply) and a meeting transcript; ingest runs through the real CLI
with contextual chunks against the local Messages API stub, whose replies quote a key, and `corpus
dream` asks it too. Then every byte under the store folder and every request the stub received is
searched for every planted value (`grep -a -r`, in Python): zero hits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from connectors import load_config, open_connector, settings_model
from connectors.base import ConnectorContext
from connectors.transcripts import Segment
from connectors.whisper import Transcriber, Transcription
from corpus.redact import redact, scrub, stored_id
from ingest.dream import dream
from ingest.masking import mask_document
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.search import Searcher
from store.filters import Filters
from tests.anthropic_stub import KEY, MessagesStub
from tests.conftest import REPO, docs_source, load_all, shared, write_config
from tests.test_slack_connector import T0, USERS, msg, slack_source

# Built from parts, so this file holds no secret a scanner would flag; each value is planted once.
S = {
    "aws_key_id": "AKIA" + "Q7RDZ2X4MNB5VT3K",
    "aws_secret_bare": "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYz9Q2mKe1Lx",
    "aws_secret_env": "Hq3vT8/kPz2" + "LmN5xR7wY9bC1dF4gJ6hK0sA",
    "github_heading": "ghp_" + "Zt81aQwErTyUiOp9AsDfGhJkLzXcVbNm4321",
    "github_file": "ghp_" + "Fl3nAmEsEcReT0kEn9AsDfGhJkLzXcVbNm77",
    "github_author": "ghs_" + "AuTh0rNaMe5eCrEt1AsDfGhJkLzXcVbNm555",
    "slack_token": "xoxb-" + "2837465019-Hq7sLk2PzXw9",
    "slack_title": "xoxp-" + "99887766-55443322-ThReAdTiTlE",
    "private_key_line": "MIIEpAIBAAKCAQEA3Tz2mRp" + "7uVwXyZ9kQ1sH4LmN8oPq",
    "url_password": "S3cr3t" + "Passw0rdInUrl",
    "anthropic_title": "sk-ant-api03-" + "FrOnTmAtTeRtItLe0123456789abcdefgh",
    "password": "hunt" + "er2x",
    "api_key_hex": "9f8e7d6c5b4a3928" + "1706f5e4d3c2b1a0",
    "stripe": "sk_live_" + "51HxQpRsTuVwXyZ0123abc",
    "client_secret": "Zq8w-Cl1ent-" + "S3cretV4lue",
    "conn_password": "Tr0ub4" + "dor&3",
    "passwd": "Kangaroo-" + "Jump-42",
    "file_password": "Mellon-" + "Friend-7",
    "heading_password": "Ad4m-" + "Heading-9",
    "slack_reply_secret": "Ry8n2Kq" + "Lp4ZxW7vB3mT9cF6hJ1sD5gA",
    "vtt_password": "Vt7-Cue-" + "Pass-31",
    "vtt_token": "xoxa-" + "31415926-VttCueToken",
    "vtt_file": "Sp3aker" + "FileName-88",
    "claude_reply": "AKIA" + "CLAUDEREPLYKEY77",
    "judge_reply": "ghp_" + "JuDgEdEtAiLsEcReT1AsDfGhJkLzXcVbNm99",
    "link_target": "Ou7side-" + "L1nk-Target",
}

DOC = f"""---
title: "Deploy notes {S['anthropic_title']}"
author: "ops {S['github_author']}"
---

# Deploy notes

Reset your password in Okta before the first deploy. Ask in #infra if the password reset fails.

Deploy with key {S['aws_key_id']}; the secret access key is {S['aws_secret_bare']} until rotation.
The bot posts with {S['slack_token']} and the database is postgres://app:{S['url_password']}@db.internal/app.

```
password: {S['password']}
api_key = "{S['api_key_hex']}"
STRIPE_SECRET={S['stripe']}
AWS_SECRET_ACCESS_KEY={S['aws_secret_env']}
mysql --passwd={S['passwd']} -h db.internal
Server=db;Database=app;User Id=sa;Password={S['conn_password']};
{{"client_secret": "{S['client_secret']}"}}
```

-----BEGIN RSA PRIVATE KEY-----
{S['private_key_line']}
-----END RSA PRIVATE KEY-----

## Staging uses {S['github_heading']}

The staging cluster redeploys nightly, the deploy key is above.

## Fallback password: {S['heading_password']}

Use it only when Okta is down.
"""

# Near the deploy notes, so `corpus dream` compares the two and asks the stub.
OTHER = """# Deploy notes, older copy

Reset your password in Okta before the first deploy. Ask in #infra if the password reset fails.
The staging cluster redeploys nightly, the deploy key is above.
"""

VTT = f"""WEBVTT

00:00:01.000 --> 00:00:06.000
<v Dana>The staging password: {S['vtt_password']}

00:00:06.000 --> 00:00:12.000
<v Eli>And the bot token is {S['vtt_token']}, rotate it on Friday.
"""


def plant(root: Path) -> dict[str, Path]:
    docs = root / "docs"
    docs.mkdir()
    (docs / "deploy.md").write_text(DOC)
    (docs / "older.md").write_text(OTHER)
    (docs / f"notes {S['github_file']}.md").write_text("# Notes\n\nThe runbook moved to the wiki last year.\n")
    (docs / f"creds password={S['file_password']}.txt").write_text("Ask the platform team for access.\n")
    outside = root / "outside" / f"token={S['link_target']}.md"  # skipped with one line naming its target
    outside.parent.mkdir()
    outside.write_text("# Outside\n\nNot part of the source.\n")
    (docs / "shortcut.md").symlink_to(outside)
    export = root / "export"
    (export / "general").mkdir(parents=True)
    (export / "users.json").write_text(json.dumps(USERS))
    (export / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    thread = f"{T0:.6f}"
    (export / "general" / "2016-03-01.json").write_text(json.dumps([
        msg("U1", T0, f"Rotated the bot, the new one is {S['slack_title']}", thread_ts=thread, reply_count=1),
        msg("U2", T0 + 60, f"thanks! AWS_SECRET_ACCESS_KEY={S['slack_reply_secret']} works", thread_ts=thread),
    ]))
    meetings = root / "meetings"
    meetings.mkdir()
    (meetings / "standup.vtt").write_text(VTT)
    (meetings / f"retro token={S['vtt_file']}.vtt").write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Dana>Retro moves to Thursday.\n")
    return {"docs": docs, "export": export, "meetings": meetings}


def reply(body: dict) -> str:
    """Contextual chunks get a sentence quoting a key; dream's judge gets a verdict quoting another."""
    if "<passage_a>" in body["messages"][0]["content"]:
        return json.dumps({"relation": "duplicate", "newer": None,
                           "detail": f"both mention the key {S['judge_reply']}"})
    return f"This chunk is about deploy credentials such as {S['claude_reply']}."


def leaks(blob: bytes) -> list[str]:
    """Planted values found in ``blob``, as written, lower-cased (a heading anchor) or URL-quoted (a citation)."""
    forms = {name: {v, v.lower(), quote(v), quote(v).lower()} for name, v in S.items()}
    return [name for name, values in forms.items() if any(form.encode() in blob for form in values)]


def store_leaks(store: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        hits = leaks(path.read_bytes())
        if hits:
            found[str(path.relative_to(store))] = hits
    return found


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with MessagesStub(reply) as running:
        yield running


@pytest.mark.slow
def test_no_planted_secret_reaches_the_store_a_result_or_claude(tmp_path, embedder, stub):
    paths = plant(tmp_path)
    sources = (docs_source("docs", paths["docs"]) + slack_source("acme", paths["export"])
               + f'[[sources]]\nname = "meetings"\nkind = "meetings"\npath = "{paths["meetings"]}"\n')
    config_path = write_config(tmp_path, sources, f'[claude]\ncontextualize = true\nbase_url = "{stub.url}"\n'
                                                  "max_retries = 0\n")
    run = subprocess.run([sys.executable, "-m", "cli.main", "--config", str(config_path), "ingest"],
                         capture_output=True, text=True, cwd=REPO, env=os.environ, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "secrets masked: " in run.stdout and not leaks(run.stdout.encode())
    config = load_config(config_path)
    assert dream(config).count("duplicate") >= 1  # the judge's reply, quoting a key, was asked for and kept

    assert stub.requests and any("<document>" in json.dumps(r) for r in stub.requests)
    assert leaks(json.dumps(stub.requests, ensure_ascii=False).encode()) == []
    assert store_leaks(config.store_path) == {}

    searcher = Searcher(config, embedder)
    hits = [hit for source in ("docs", "acme", "meetings") for hit in searcher.search(
        "deploy key password token credentials rotate", limit=20, filters=Filters(sources=[source]))]
    assert {h.source for h in hits} == {"docs", "acme", "meetings"} and any("[redacted" in h.text for h in hits)
    fetched = [searcher.fetch(doc_id) for doc_id in {h.doc_id for h in hits}]
    shown = json.dumps([dataclasses.asdict(x) for x in [*hits, *fetched]], ensure_ascii=False)
    assert leaks(shown.encode()) == []
    assert "Reset your password in Okta before the first deploy." in shown  # prose stays readable
    assert "password: [redacted secret]" in shown and "STRIPE_SECRET=[redacted stripe key]" in shown

    # Files named with a secret are stored under a stand-in id that still matches on the next run.
    again = ingest(config, embedder=embedder, progress=Progress(interval=999))
    assert again.total("added") == again.total("updated") == 0 and again.total("failed") == 1  # the link
    assert again.total("unchanged") == 7 and again.total("redacted") == 0
    assert not leaks(json.dumps([again.sources[name].failures for name in again.sources]).encode())


def test_the_ingest_summary_counts_what_was_masked(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(f"# A\n\npassword: {S['password']}\n\nkey {S['aws_key_id']} and {S['aws_key_id']}\n")
    (docs / "b.md").write_text("# B\n\nReset your password in Okta.\n")
    config = load_config(write_config(tmp_path, docs_source("docs", docs)))
    result = ingest(config, embedder=embedder, progress=Progress(interval=999))
    assert result.sources["docs"].redacted == 2  # distinct values per document
    assert result.as_dict()["sources"]["docs"]["redacted"] == 2


def test_transcripts_are_cached_redacted(tmp_path):
    transcriber = Transcriber(device="cpu", cache_dir=tmp_path)
    said = f"the staging password: {S['vtt_password']}"
    transcriber._write_cache("abc", Transcription([Segment(0.0, 2.0, said)], 2.0))
    assert store_leaks(tmp_path) == {}
    assert transcriber._read_cache("abc").segments[0].text == "the staging password: [redacted secret]"


@pytest.mark.parametrize(("text", "masked"), [
    (f"password: {S['password']}", "password: [redacted secret]"),
    (f"passwd={S['passwd']}", "passwd=[redacted secret]"),
    (f'api_key = "{S["api_key_hex"]}"', 'api_key = "[redacted secret]"'),
    (f"export STRIPE_SECRET={S['client_secret']}", "export STRIPE_SECRET=[redacted secret]"),
    (f'"client_secret": "{S["client_secret"]}"', '"client_secret": "[redacted secret]"'),
    (f"AWS_SECRET_ACCESS_KEY={S['aws_secret_env']}", "AWS_SECRET_ACCESS_KEY=[redacted secret]"),
    (f"deployToken: {S['passwd']}", "deployToken: [redacted secret]"),
    (f"Password={S['conn_password']};Encrypt=true", "Password=[redacted secret];Encrypt=true"),
    (f"https://x.example/cb?access_token={S['passwd']}&state=1",
     "https://x.example/cb?access_token=[redacted secret]&state=1"),
    (f"the secret access key is {S['aws_secret_bare']}.", "the secret access key is [redacted random string]."),
    (f"Authorization: Bearer {S['passwd']}abcdefgh", "Authorization: Bearer [redacted bearer token]"),
    (f"key {S['stripe']}", "key [redacted stripe key]"),
])
def test_assignments_and_random_strings_are_masked_and_key_names_kept(text, masked):
    assert redact(text) == masked
    assert redact(masked) == masked and scrub(masked)[1] == []  # masking twice finds nothing new


@pytest.mark.parametrize("text", [
    "Reset your password in Okta; never share a password or an API key in Slack.",
    "Password: use the one from the Okta welcome e-mail",
    "Token:\nA token is issued per team.",
    "secret: false",
    "password: required",
    "api_key: $STRIPE_API_KEY",
    'token = "<your token here>"',
    "max_tokens: 120",
    'api_key = os.environ["API_KEY"]',
    "token = get_token(scope)",
    "SECRET_KEY = settings.SECRET_KEY",
    "password: process.env.DB_PASSWORD",
    "token_url: https://login.example.com/oauth/token",
    "Fixed in commit 3f2c1e9a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e (see also 123e4567-e89b-12d3-a456-426614174000).",
    "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "https://docs.google.com/document/d/1aBcD3fGhIjKlMnOpQrStUvWxYz0123456789AbCdEf/edit",
    "/usr/local/lib/python3.11/site-packages/ChromaDB/Api/FastAPI/SegmentAPI2.py",
    "AbstractSingletonProxyFactoryBean and HTTPServerRequestHandlerV2Configuration",
    "postgres://db.internal:5432/app and https://github.com/18F/handbook/blob/main/README.md",
])
def test_prose_hashes_urls_and_paths_stay(text):
    assert redact(text) == text


def test_a_file_name_with_a_secret_gets_a_stable_stand_in():
    name = f"creds password={S['file_password']}.txt"
    assert stored_id(name) == stored_id(name) != stored_id(f"creds password={S['passwd']}.txt")
    assert S["file_password"] not in stored_id(name) and stored_id(stored_id(name)) == stored_id(name)
    assert stored_id("handbook/oncall.md") == "handbook/oncall.md"


@pytest.mark.parametrize(("kind", "parts", "expected"), [
    # digital-signatures.md links through a mail tracker whose path is a signed JWT: masked, as any JWT is
    ("docs", ("docs", "18f-handbook"), 1),
    ("slack", ("slack", "houstondatavis"), 0),
    ("slack", ("slack", "hfaran-testarchive", "testarchive.zip"), 0),
    ("meetings", ("transcripts",), 0),
    # slackdump replaced every message with random letters and digits: exactly what a pasted key looks like
    # (five conversations and the channel's about document, whose topic was obfuscated too)
    ("slack", ("slack", "slackdump-obfuscated-fixture", "source_export.zip"), 6),
])
def test_real_handbooks_exports_and_transcripts_are_left_alone(kind, parts, expected):
    """Real public data holds no secrets: ingest masks nothing in it (bench/redaction.py lists what it would)."""
    connector = open_connector(settings_model(kind)(name="real", kind=kind, path=shared(*parts)), ConnectorContext())
    documents, _ = load_all(connector)
    masked = {native_id: count for native_id, count in
              ((native_id, mask_document(doc)[1]) for native_id, doc in documents.items()) if count}
    assert len(documents) > 5 and len(masked) == expected
