"""Secrets are masked in every text before it is stored, indexed, embedded or sent to Claude.

Three kinds of rule. Known formats (AWS key ids, GitHub, Slack, Stripe, Anthropic keys, private keys,
passwords and signatures in URLs). Assignments (`password: hunter2`, `api_key = "…"`, `STRIPE_SECRET=…`): the value
is masked, the key name stays, and a value that is clearly not a secret (`true`, `required`, a
placeholder such as `$TOKEN` or `<your key>`, code reading it from elsewhere such as `os.environ[…]`,
several words of prose after a colon) is left alone.
And long random-looking strings (32+ characters mixing upper case, lower case and digits, changing
between them often, with high Shannon entropy): the AWS secret access key, a bare token.

What the random-string rule leaves alone, on purpose: hex strings (git SHAs, checksums, UUIDs: cited
on purpose and granting nothing; a hex secret under a key name is still masked as an assignment),
URLs without credentials (a Google Docs id is not a secret) and identifiers, paths and prose, which
change case or class rarely. A handbook that says "reset your password in Okta" stays readable.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

MASK = "[redacted {}]"

# (what it is, literals one of which every match contains: a cheap test before the regex runs, the pattern)
PATTERNS: list[tuple[str, tuple[str, ...], re.Pattern[str]]] = [
    ("private key", ("PRIVATE KEY-----",),
     re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)),
    ("aws access key", ("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("gitlab token", ("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("npm token", ("npm_",), re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("slack token", ("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("slack webhook", ("hooks.slack.com",), re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+")),
    ("stripe key", ("k_live_", "k_test_"), re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b")),
    ("api key", ("sk-",), re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}\b")),
    ("google api key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("sendgrid key", ("SG.",), re.compile(r"\bSG\.[\w-]{22}\.[\w-]{43}\b")),
    ("jwt", ("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b")),
    ("password in url", ("@",), re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)")),
    ("bearer token", ("Bearer ",), re.compile(r"(?<=\bBearer )[A-Za-z0-9._~+/-]{16,}=*")),
    # A signed URL's signature (Azure SAS `sig=`, S3 `X-Amz-Signature=`) opens the file to anyone holding it.
    ("url signature", ("sig=", "Sig=", "SIG=", "ignature=", "IGNATURE="),
     re.compile(r"(?:(?<=[?&]sig=)|(?<=[?&]signature=)|(?<=[?&]x-amz-signature=)|(?<=[?&]x-goog-signature=))"
                r"[^&\s#)]+", re.I)),
]

# A key name ending in one of these words: `DB_PASSWORD`, `clientSecret`, `AWS_SECRET_ACCESS_KEY`, `--token`.
_SECRET_NAME = (r"(?:pass(?:word|wd|phrase)|secret|token|api[_-]?key|apikey|"
                r"(?:access|account|auth|client|encryption|master|private|secret|shared[_-]?access|signing)[_-]?key|"
                r"credentials?|connection[_-]?string)")
_NAME_WORDS = ("pass", "secret", "token", "key", "credential", "connection")  # every name above holds one
_NAME_END = re.compile(r"[^\w.-]")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAX_NAME = 100  # a longer run of name characters is no key name
_ASSIGNMENT = re.compile(
    rf"(?P<key>[\w.-]{{0,{_MAX_NAME}}}?{_SECRET_NAME})(?![A-Za-z0-9])[\"']?[ \t]*(?:"
    # password: "hunter2"   api_key = 'abc'   "token": "abc"
    r"(?::=|=>|[:=])[ \t]*(?P<q>[\"'])(?P<quoted>[^\"'\n]{1,400})(?P=q)"
    # passwd=hunter2   STRIPE_SECRET=sk_live_…   Password=x; (connection strings)   ?access_token=…&
    r"|(?::=|=>|=)[ \t]*(?P<bare>(?:[^\s\"'`&;,<>]|&(?![\w.-]+=)){1,400})"
    # password: hunter2   (only a single word ending the line: "Password: use the one from Okta" is prose)
    r"|:[ \t]*(?P<line>[^\s\"'`]{1,400})[ \t]*$)", re.I | re.M)
_VALUE = ("quoted", "bare", "line")
_NOT_SECRETS = frozenset(
    "true false yes no none null nil required optional n/a na tbd todo redacted hidden empty unset "
    "secret password token string str int bool value".split())
_PLACEHOLDER = re.compile(
    r"^[$<{%\[(*]|^(?:https?|file)://"  # $TOKEN, <your key>, {{ secrets.X }}, [redacted …], ****, a URL
    r"|^(.)\1*$|^\.\.\.|^…"  # xxxxxxxx, ...
    r"|\("  # code: get_token(), os.getenv(
    # a name read from somewhere: process.env.DB_PASSWORD, settings.SECRET_KEY, os.environ["API_KEY"]
    r"|^(?:\w+\.)*(?:env|environ|settings|config|secrets|vars|self|this|params|options)(?:\.\w|\[)", re.I)
# In a URL's query, a name merely ending in "token" (`?sstoken=` of a shared calendar link, `searchToken=`)
# is not a credential; these are.
_URL_TOKENS = frozenset("token access_token auth_token refresh_token id_token api_token session_token "
                        "private_token".split())
_RANDOM = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/=_-])")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")
MIN_ENTROPY = 4.0  # bits per character; 32 random base64 characters score about 4.6, English about 3.9 at best
MIN_SWITCHES = 0.3  # share of neighbouring letters/digits of different class (upper, lower, digit); random ≈ 0.6


class Span(NamedTuple):
    start: int
    end: int
    kind: str  # what the mask says: "[redacted aws access key]"


def find(text: str) -> list[Span]:
    """Every secret in ``text``, overlaps merged; a known format names the merged span over a generic rule."""
    spans = [Span(*m.span(), kind) for kind, hints, pattern in PATTERNS if any(h in text for h in hints)
             for m in pattern.finditer(text)]
    spans += [Span(*m.span(group), "secret") for m, group in _assignments(text) if _is_assigned_secret(m, group)]
    spans += [Span(*m.span(), "random string") for m in _RANDOM.finditer(text) if not _in_url(m)
              and looks_random(m.group())]
    return merge(spans)


def merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans as one, named by whichever comes first in ``spans`` (the most specific rule)."""
    merged: list[list] = []  # start, end, kind, rank
    for rank, span in sorted(enumerate(spans), key=lambda pair: (pair[1].start, pair[0])):
        if merged and span.start < merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], span.end)
            if rank < last[3]:
                last[2], last[3] = span.kind, rank
        else:
            merged.append([span.start, span.end, span.kind, rank])
    return [Span(start, end, kind) for start, end, kind, _ in merged]


def mask(text: str, spans: list[Span]) -> str:
    """``text`` with each (merged, sorted) span replaced by its mask."""
    parts, at = [], 0
    for span in spans:
        parts += [text[at:span.start], MASK.format(span.kind)]
        at = span.end
    return "".join(parts) + text[at:]


def scrub(text: str) -> tuple[str, list[str]]:
    """The text with every secret masked, and the secret values found (to catch their echoes elsewhere)."""
    spans = find(text)
    return (mask(text, spans), [text[s.start:s.end] for s in spans]) if spans else (text, [])


def redact(text: str) -> str:
    return scrub(text)[0]


def _assignments(text: str) -> Iterator[tuple[re.Match, str]]:
    """Assignment matches, tried once per name holding a secret's word. The words are found with str.find,
    far faster than letting the patterns try every word; each run of name characters is looked at once."""
    lower = text.lower()
    for word in _NAME_WORDS:
        at = lower.find(word)
        while at >= 0:
            start = at
            while start > 0 and text[start - 1] in _NAME_CHARS and at - start < _MAX_NAME:
                start -= 1
            if not (start > 0 and text[start - 1] in _NAME_CHARS):
                match = _ASSIGNMENT.match(text, start)
                if match:
                    yield match, next(group for group in _VALUE if match.group(group) is not None)
            end = _NAME_END.search(text, at)
            at = lower.find(word, end.start()) if end else -1


def _is_assigned_secret(m: re.Match, group: str) -> bool:
    value, key = m.group(group), m.group("key").lower()
    return not (value.lower().rstrip(".,") in _NOT_SECRETS or _PLACEHOLDER.search(value)
                or (key.endswith("token") and key not in _URL_TOKENS and _in_url(m)))


def _in_url(m: re.Match) -> bool:
    """Whether the match sits in a URL: the run of text before it, up to a space or bracket, holds "://"."""
    text, at = m.string, m.start()
    start = max(text.rfind(c, max(0, at - 2048), at) for c in " \t\n<>()[]\"'`")
    return "://" in text[start + 1:at]


def looks_random(token: str) -> bool:
    """Upper, lower and digits, switching between them often, and high entropy: a key, not a word or a hash."""
    if not (re.search(r"[a-z]", token) and re.search(r"[A-Z]", token) and re.search(r"[0-9]", token)):
        return False
    classes = [("a" if c.islower() else "A" if c.isupper() else "0") for c in token if c.isalnum()]
    switches = sum(a != b for a, b in zip(classes, classes[1:], strict=False)) / max(len(classes) - 1, 1)
    return switches >= MIN_SWITCHES and entropy(token) >= MIN_ENTROPY


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def echoes(text: str, secrets: list[str]) -> list[Span]:
    """Where ``secrets`` reappear changed: lower-cased in a heading anchor, `_` turned to spaces in a title
    made from a file name (whose extension the secret may have swallowed: `password=hunter2.txt`)."""
    spans = []
    for secret in secrets:
        for variant in {secret, _EXTENSION.sub("", secret)}:
            letters = [c for c in variant if c.isalnum()]
            if 6 <= len(letters) <= 200:  # a private key's body never comes back in a title
                pattern = r"[\W_]*".join(map(re.escape, letters))
                spans += [Span(*m.span(), "secret") for m in re.finditer(pattern, text, flags=re.I)]
    return spans


def stored_id(native_id: str) -> str:
    """The id kept in the manifest: the native id, or when it holds a secret (a file name), the masked
    id with a short hash of the original, so two such files stay apart and re-ingest still matches."""
    masked = redact(native_id)
    if masked == native_id:
        return native_id
    return f"{masked} #{hashlib.sha256(native_id.encode()).hexdigest()[:12]}"
