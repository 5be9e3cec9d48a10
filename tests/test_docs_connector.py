"""The docs connector on real files: every format it claims, and a clear reason for each broken one."""

from __future__ import annotations

import shutil

import pytest

from connectors.docs import DocsConnector, Settings
from tests.conftest import SAMPLE, load_all, shared

BROKEN = {
    "empty.txt": "empty file",
    "fake-text-all-whitespace.txt": "no text found",
    "eml/empty.eml": "no text found",
    "password_protected.xlsx": "password-protected",
    "pdf/password.pdf": "password-protected PDF",
    "eml/fake-encrypted.eml": "encrypted e-mail",
}
# Read when the optional tools are installed (tests/test_ocr.py); one line each without them.
if shutil.which("tesseract") is None:
    BROKEN["pdf/single_table.pdf"] = "no text layer"
if shutil.which("soffice") is None:
    BROKEN["simple.doc"] = "needs LibreOffice"


def _connector(path, **options) -> DocsConnector:
    return DocsConnector(Settings(name="src", kind="docs", path=path, **options))




@pytest.fixture(scope="module")
def example_docs():
    return load_all(_connector(shared("docs", "unstructured-example-docs")))


@pytest.mark.slow
def test_broken_files_each_get_one_clear_reason(example_docs):
    _, failed = example_docs
    for name, reason in BROKEN.items():
        assert reason in failed.get(name, ""), f"{name}: {failed.get(name)!r}"
        assert "\n" not in failed[name]
    unexpected = set(failed) - set(BROKEN)
    assert not unexpected, {n: failed[n] for n in unexpected}


@pytest.mark.slow
def test_every_format_is_read(example_docs):
    loaded, _ = example_docs
    expected = {
        "README.md", "README.rst", "book-war-and-peace-1p.txt", "docx-tables.docx", "eml/family-day.eml",
        "example-10k-1p.html", "fake-doc.rtf", "fake-email.msg", "fake.odt", "vodafone.xlsx",
        "winter-sports.epub", "stanley-cups.csv", "sample-presentation.pptx", "pdf/reliance.pdf",
    }
    assert expected <= set(loaded)
    assert "Vodafone" in " ".join(b.text for b in loaded["vodafone.xlsx"].blocks) or loaded["vodafone.xlsx"].blocks


@pytest.mark.slow
def test_encodings_are_decoded(example_docs):
    loaded, _ = example_docs
    text = lambda name: " ".join(b.text for b in loaded[name].blocks)  # noqa: E731
    assert "können" in loaded["umlauts-non-utf8.md"].title + text("umlauts-non-utf8.md")
    assert "\x00" not in text("fake-text-utf-16-be.txt") and text("fake-text-utf-16-be.txt").isprintable()
    assert "Chemical composition" in text("example-steelJIS-datasheet-utf-16.html") + \
        loaded["example-steelJIS-datasheet-utf-16.html"].title


def test_pdf_text_is_kept_per_page_with_page_citations():
    connector = _connector(SAMPLE, include=["**/*.pdf"])
    (item,) = list(connector.items())
    doc = connector.load(item)
    pages = {b.locator.page for b in doc.blocks}
    assert pages == {1, 2, 3}
    pension = [b for b in doc.blocks if "pension" in b.text.lower() and "5%" in b.text]
    assert pension and pension[0].locator.page == 2
    assert pension[0].citation.uri.endswith("benefits-summary.pdf#page=2")
    assert "page 2" in pension[0].citation.label


def test_markdown_metadata_and_heading_citations():
    connector = _connector(SAMPLE, include=["engineering/oncall.md"])
    (item,) = list(connector.items())
    doc = connector.load(item)
    assert doc.title == "On-call rotation and incident response"
    assert doc.authors == ("Tomás Herrera",)
    assert doc.updated.year == 2025
    handoff = next(b for b in doc.blocks if "Monday at 10:00" in b.text)
    assert handoff.locator.headings[-1] == "Hand-off"
    assert handoff.citation.uri.endswith("oncall.md#hand-off")


def test_docx_headings_and_email_metadata():
    connector = _connector(SAMPLE, include=["**/*.docx", "**/*.eml"])
    docs = {item.native_id: connector.load(item) for item in connector.items()}
    arch = docs["product/ledgerline-architecture.docx"]
    assert any("billing-api" in b.locator.headings for b in arch.blocks)
    mail = docs["announcements/office-move.eml"]
    assert mail.authors and "@" not in mail.authors[0]
    assert "office" in mail.title.lower()


def test_include_exclude_and_hidden_files(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nText a.\n")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "b.md").write_text("# B\n\nText b.\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.md").write_text("# C\n")
    (tmp_path / "d.png").write_bytes(b"\x89PNG")
    ids = [i.native_id for i in _connector(tmp_path, exclude=["drafts/**"]).items()]
    assert ids == ["a.md"]
    assert [i.native_id for i in _connector(tmp_path, include=["**/*.md"]).items()] == ["a.md", "drafts/b.md"]
