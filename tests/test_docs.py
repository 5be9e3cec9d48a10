"""Every corpus.toml snippet in the README and docs/ is loaded by the real config loader, so a doc cannot show a
key, a section or a kind that does not exist.

A block fenced as ```toml is a corpus.toml snippet (TOML that is something else, a questions file, is fenced as
```toml questions). Commented-out keys (`# key = value`, `# [section]`) are checked too, uncommented. A snippet
without any table is a source's options and is completed as a source; source paths are created in a scratch
folder, since only their existence is checked.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors import load_config
from corpus.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
USER_KINDS = ("docs", "slack", "meetings")

FENCE = re.compile(r"^```toml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
COMMENTED_KEY = re.compile(r"^(\s*)#\s?(?=\[|[A-Za-z_][\w.-]*\s*=)")
TABLE_HEADER = re.compile(r"^\[", re.MULTILINE)
HINT = "(TOML that is not a corpus.toml is fenced as ```toml <what it is>, e.g. ```toml questions)"


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def snippets() -> list[Snippet]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            found.append(Snippet(page, text.count("\n", 0, match.start(1)) + 1, match.group(1)))
    return found


def uncommented(text: str) -> str:
    """The snippet with its commented-out keys and tables switched on."""
    return "\n".join(COMMENTED_KEY.sub(r"\1", line) for line in text.splitlines())


def completions(text: str) -> list[str]:
    """Whole configs to load for a snippet: itself, or, for bare source options, a source of each kind they fit."""
    raw = tomllib.loads(text)
    if not raw or TABLE_HEADER.search(text):
        return [text]
    kinds = [raw["kind"]] if "kind" in raw else list(USER_KINDS)
    missing = "".join(f'{key} = "example"\n' for key in ("name", "path") if key not in raw)
    return [f"[[sources]]\n{missing}" + ("" if "kind" in raw else f'kind = "{kind}"\n') + text for kind in kinds]


def load(text: str, folder: Path) -> None:
    """Load ``text`` as corpus.toml in ``folder`` after creating the source paths it names."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in tomllib.loads(text).get("sources", []):
        path = source.get("path") if isinstance(source, dict) else None
        if isinstance(path, str):
            assert not Path(path).is_absolute(), f"use a relative source path in docs, not {path}"
            (folder / path).mkdir(parents=True, exist_ok=True)
    config = folder / "corpus.toml"
    config.write_text(text, encoding="utf-8")
    load_config(config)


def check(snippet_text: str, folder: Path) -> None:
    """Pass when one completion of the snippet loads; else the loader's messages for each."""
    errors = []
    for index, text in enumerate(completions(snippet_text)):
        try:
            load(text, folder / str(index))
            return
        except ConfigError as exc:
            errors.append(str(exc))
    raise AssertionError("; ".join(errors))


SNIPPETS = snippets()


def test_the_pages_have_snippets():
    assert len(SNIPPETS) >= 8, [str(s) for s in SNIPPETS]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=str)
def test_snippet_loads_as_written(snippet, tmp_path):
    try:
        check(snippet.text, tmp_path)
    except (AssertionError, tomllib.TOMLDecodeError) as exc:
        pytest.fail(f"{snippet}: {exc} {HINT}")


@pytest.mark.parametrize("snippet", [s for s in SNIPPETS if uncommented(s.text) != s.text], ids=str)
def test_snippet_loads_with_its_commented_keys(snippet, tmp_path):
    try:
        check(uncommented(snippet.text), tmp_path)
    except (AssertionError, tomllib.TOMLDecodeError) as exc:
        pytest.fail(f"{snippet} (commented keys switched on): {exc} {HINT}")


def test_repo_corpus_toml_with_every_commented_key(tmp_path):
    check(uncommented((ROOT / "corpus.toml").read_text(encoding="utf-8")), tmp_path)


@pytest.mark.parametrize("bad", [
    '[[sources]]\nname = "h"\nkind = "docs"\npath = "d"\nincludes = ["*.md"]\n',
    '[embeding]\nmodel = "all-MiniLM-L6-v2"\n',
    '[[sources]]\nname = "h"\nkind = "doc"\npath = "d"\n',
    '# [server]\n# idel = 600\n',
    'workspace_urls = "https://acme.slack.com"\n',
])
def test_a_wrong_key_in_a_snippet_fails(bad, tmp_path):
    with pytest.raises(AssertionError):
        check(uncommented(bad), tmp_path)


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_pages_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading")
    assert not broken, broken
