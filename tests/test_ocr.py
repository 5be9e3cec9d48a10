"""Scanned PDFs through Tesseract and legacy .doc/.ppt through LibreOffice, on real files and real tools.

CI installs both (.ci/run); where one is missing its tests are skipped with the install line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connectors import load_config
from connectors.base import ConnectorContext
from connectors.converters import modern_copy
from connectors.docs import DocsConnector, Settings
from corpus.config import IngestSettings
from corpus.errors import ConfigError, ItemError
from tests.conftest import docs_source, load_all, shared, write_config

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="tesseract is not installed (apt-get install tesseract-ocr)")
needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed "
                                   "(apt-get install libreoffice-writer-nogui libreoffice-impress-nogui)")
EXAMPLES = ("docs", "unstructured-example-docs")
PAGES = ["Quarterly harvest report\nThe orchard yielded apples and pears.",
         "Second page\nBeekeeping moved to the north meadow."]


def _load(path: Path, **ingest: object):
    """The one file at ``path``, read by the docs connector with these [ingest] settings."""
    connector = DocsConnector(Settings(name="src", kind="docs", path=path),
                              ConnectorContext(ingest=IngestSettings(**ingest)))
    loaded, failed = load_all(connector)
    return loaded.get(path.name), failed.get(path.name)


def _text(doc) -> str:
    return " ".join(b.text for b in doc.blocks)


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory) -> Path:
    """Two pages of text drawn as images (no text layer), as a scanner at 200 dpi would give them."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=44)
    pages = []
    for text in PAGES:
        page = Image.new("L", (1700, 2200), 255)  # US Letter at 200 dpi
        ImageDraw.Draw(page).multiline_text((150, 200), text, fill=0, font=font, spacing=30)
        pages.append(page)
    path = tmp_path_factory.mktemp("scan") / "scan.pdf"
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=200)
    return path


@needs_tesseract
def test_scanned_pdf_is_read_per_page_with_page_citations(scanned_pdf):
    doc, failed = _load(scanned_pdf)
    assert failed is None
    by_page = {page: " ".join(b.text for b in doc.blocks if b.locator.page == page) for page in (1, 2)}
    assert "orchard yielded apples and pears" in by_page[1]
    assert "Beekeeping moved to the north meadow" in by_page[2] and "apples" not in by_page[2]
    second = next(b for b in doc.blocks if b.locator.page == 2)
    assert second.citation.uri.endswith("scan.pdf#page=2") and "page 2" in second.citation.label


@needs_tesseract
def test_real_scanned_table_is_read():
    doc, failed = _load(shared(*EXAMPLES, "pdf", "single_table.pdf"))
    assert failed is None
    text = _text(doc)
    for cell in ("Processing", "total chunks", "Base 512", "16,046", "Chipper", "20,843", "96.20"):
        assert cell in text, (cell, text)
    assert {b.locator.page for b in doc.blocks} == {1}


def test_ocr_off_gives_the_old_reason(scanned_pdf):
    assert _load(scanned_pdf, ocr=False) == (None, "PDF has no text layer (scanned or image-only; "
                                                   "OCR is not enabled)")


def test_without_the_tools_each_file_gets_one_line(scanned_pdf, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert _load(scanned_pdf)[1] == ("PDF has no text layer (scanned or image-only; OCR needs tesseract, "
                                     "which is not installed)")
    assert _load(shared(*EXAMPLES, "simple.doc"))[1] == "legacy .doc needs LibreOffice (soffice), which is not " \
                                                         "installed"


@needs_tesseract
def test_ocr_is_bounded_by_pages_and_time(scanned_pdf):
    assert _load(scanned_pdf, ocr_max_pages=1)[1] == "scanned PDF of 2 pages is over [ingest] ocr_max_pages = 1"
    assert _load(scanned_pdf, ocr_timeout=0.001)[1].startswith("OCR stopped at page 1 of 2: over [ingest] "
                                                                "ocr_timeout = 0.001 s")


@needs_tesseract
def test_a_missing_language_names_the_package(scanned_pdf):
    reason = _load(scanned_pdf, ocr_languages="eng+zzz")[1]
    assert reason.startswith("tesseract has no language data for zzz ([ingest] ocr_languages = 'eng+zzz'")
    assert "apt-get install tesseract-ocr-zzz" in reason


def test_config_keys_are_validated(tmp_path):
    source = docs_source("docs", tmp_path)
    config = load_config(write_config(tmp_path, source, extra='[ingest]\nocr = false\nocr_languages = "eng+deu"\n'))
    assert config.ingest.ocr is False and config.ingest.ocr_languages == "eng+deu"
    with pytest.raises(ConfigError, match=r"ingest.ocr_languages: String should match"):
        load_config(write_config(tmp_path, source, extra='[ingest]\nocr_languages = "eng; rm -rf /"\n'))
    with pytest.raises(ConfigError, match=r"ingest.libreofice: unknown key"):
        load_config(write_config(tmp_path, source, extra="[ingest]\nlibreofice = false\n"))


@pytest.mark.slow
@needs_soffice
def test_legacy_doc_is_read(tmp_path):
    doc, failed = _load(shared(*EXAMPLES, "simple.doc"))
    assert failed is None
    assert doc.title == "These are a few of my favorite things:"
    assert [b.text for b in doc.blocks][:2] == ["Parrots", "Hockey"]
    assert "This is my third thought." in _text(doc) and "DOYLESTOWN, PA 18901" in _text(doc)
    assert doc.blocks[0].citation.uri.endswith("simple.doc")


def test_libreoffice_off_gives_one_line():
    assert _load(shared(*EXAMPLES, "simple.doc"), libreoffice=False) == \
        (None, "legacy .doc is not read: [ingest] libreoffice = false")


def _soffice_convert(source: Path, target: str, folder: Path) -> Path:
    """A legacy copy of a modern real file, made by LibreOffice itself (no .ppt in the shared data)."""
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation={(folder / 'profile').as_uri()}",
                    "--convert-to", target, "--outdir", str(folder), str(source)], check=True, capture_output=True,
                   timeout=120)
    return folder / f"{source.stem}.{target}"


@pytest.mark.slow
@needs_soffice
def test_legacy_ppt_is_read_with_slide_citations(tmp_path):
    ppt = _soffice_convert(shared(*EXAMPLES, "science-exploration-1p.pptx"), "ppt", tmp_path)
    modern, _ = _load(ppt)
    original, _ = load_all(DocsConnector(Settings(name="src", kind="docs", path=shared(*EXAMPLES),
                                                  include=["science-exploration-1p.pptx"])))
    assert _text(modern).split() == _text(original["science-exploration-1p.pptx"]).split()
    assert any(", slide 1" in b.citation.label for b in modern.blocks)


@pytest.mark.slow
@needs_soffice
def test_conversions_at_once_do_not_clash():
    """Each conversion has its own profile: with a shared one the second soffice hands off and converts nothing."""
    doc = shared(*EXAMPLES, "simple.doc")

    def convert(_: int) -> int:
        with modern_copy(doc, IngestSettings()) as converted:
            return converted.stat().st_size

    with ThreadPoolExecutor(2) as pool:
        assert all(size > 0 for size in pool.map(convert, range(2)))


@needs_soffice
def test_a_conversion_that_fails_is_one_line(tmp_path):
    broken = tmp_path / "broken.ppt"
    broken.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))  # an OLE header and nothing inside
    with pytest.raises(ItemError) as err, modern_copy(broken, IngestSettings()):
        pass
    assert str(err.value).startswith("LibreOffice cannot convert this .ppt: ") and "\n" not in str(err.value)


@needs_tesseract
def test_a_file_that_failed_for_want_of_a_tool_is_read_once_it_is_installed(scanned_pdf, tmp_path, monkeypatch,
                                                                              embedder):
    from ingest.pipeline import ingest

    folder = tmp_path / "scans"
    folder.mkdir()
    shutil.copy(scanned_pdf, folder / "scan.pdf")
    (folder / "typed.md").write_text("# Typed\n\nA page with a text layer of its own.\n")
    config = load_config(write_config(tmp_path, docs_source("scans", folder)))
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", "/nonexistent")
    without = ingest(config, embedder=embedder).sources["scans"]
    assert (without.added, without.failed) == (1, 1)
    assert "not retried" in ingest(config, embedder=embedder).sources["scans"].failures[0][1]
    monkeypatch.setenv("PATH", path)  # tesseract is installed now
    installed = ingest(config, embedder=embedder).sources["scans"]
    assert (installed.added, installed.failed, installed.unchanged) == (1, 0, 1)
