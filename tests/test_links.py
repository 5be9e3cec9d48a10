"""Hyperlinks survive into stored text as ``label (url)`` in every format, through chunking and masking."""

from __future__ import annotations

import re
from pathlib import Path

from connectors import markdown
from connectors.docs import DocsConnector, Settings
from connectors.links import labelled
from corpus.records import Block, Citation, Document
from ingest.chunker import Chunker
from ingest.masking import mask_document
from tests.conftest import load_all, shared

FORM = "https://docs.google.com/forms/d/e/1FAIpQLSfviwI1hePL1oaw7A5hePEfHIgQJQwuheXaoUNVTky0SSx5zw/viewform"


def _texts(folder: Path, name: str) -> list[str]:
    loaded, failed = load_all(DocsConnector(Settings(name="d", kind="docs", path=folder)))
    assert failed == {}
    return [b.text for b in loaded[name].blocks]


def test_the_renderer_writes_a_label_then_its_url_once():
    assert labelled("TTS Offboarding Form", FORM) == f"TTS Offboarding Form ({FORM})"
    assert labelled("https://x.example/a", "https://x.example/a") == "https://x.example/a"
    assert labelled("x.example", "http://x.example") == "http://x.example"
    assert labelled("Leaving TTS", "../leaving-tts/") == "Leaving TTS (../leaving-tts/)"  # as written
    assert labelled("email HR", "mailto:hr@example.gov") == "email HR (hr@example.gov)"
    assert labelled("below", "#award-leave") == "below"  # a jump within the page leads nowhere else


def test_markdown_links_are_written_label_then_url():
    doc = markdown.parse(
        "# Leaving\n\n"
        "### 1. Fill out the [TTS Offboarding Form](" + FORM + ")\n\n"
        "See [Leaving TTS](../leaving-tts/), <https://x.example/a>, [cell](https://c) and "
        'this <a href="https://docs.example/chart?a=1&amp;b=2">leave chart</a>.\n\n'
        "| Who | Where |\n|---|---|\n| [Ann](mailto:ann@example.gov) | [Desk](https://desk.example/) |\n"
    )
    texts = [b.text for b in doc.blocks]
    assert texts[0] == f"1. Fill out the TTS Offboarding Form ({FORM})"  # a heading's link is kept under it
    assert doc.blocks[0].headings == ("Leaving", "1. Fill out the TTS Offboarding Form")  # the anchor stays plain
    assert texts[1] == ("See Leaving TTS (../leaving-tts/), https://x.example/a, cell (https://c) and "
                        "this leave chart (https://docs.example/chart?a=1&b=2).")
    assert texts[2] == "Who | Where\nAnn (ann@example.gov) | Desk (https://desk.example/)"


def test_markdown_numbered_lists_stay_numbered():
    doc = markdown.parse("# Steps\n\n1. Fill out the form\n2. Tell your supervisor\n\n   They sign it.\n"
                         "3. Return:\n   - the laptop\n   - the badge\n\nAfter.\n\n7) Seventh\n1) Eighth\n")
    assert [b.text for b in doc.blocks] == [
        "1. Fill out the form\n2. Tell your supervisor\n  They sign it.\n3. Return:\n  - the laptop\n  - the badge",
        "After.",
        "7. Seventh\n8. Eighth",  # numbered as a reader sees the list, from its start
    ]


def test_html_keeps_links_numbers_and_table_rows(tmp_path):
    (tmp_path / "page.html").write_text(
        '<html><body><h1>Leaving <a href="#top">TTS</a></h1>'
        f'<p>Fill out the <a href="{FORM}">TTS Offboarding Form</a> and read <a href="../leaving-tts/">this</a>.</p>'
        '<ol><li>Return the <a href="https://it.example/return">laptop</a></li><li>Leave</li></ol>'
        '<table><tr><th>Office</th><th>Contact</th></tr>'
        '<tr><td>Chicago</td><td><a href="mailto:jck@example.gov">Dave Lamb</a></td></tr></table></body></html>')
    texts = _texts(tmp_path, "page.html")
    assert f"Fill out the TTS Offboarding Form ({FORM}) and read this (../leaving-tts/)." in texts
    assert [t for t in texts if t[:2] in "1.2."] == ["1. Return the laptop (https://it.example/return)", "2. Leave"]
    assert "Office | Contact\nChicago | Dave Lamb (jck@example.gov)" in texts


def test_html_nested_past_libxml2_depth_keeps_its_links(tmp_path):
    deep = "<div>" * 300 + f'Use the <a href="{FORM}">form</a>.' + "</div>" * 300
    (tmp_path / "deep.html").write_text(f"<html><body>{deep}</body></html>")
    assert _texts(tmp_path, "deep.html") == [f"Use the form ({FORM})."]


def _docx_link(paragraph, url: str, text: str) -> None:
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True))
    run, t = OxmlElement("w:r"), OxmlElement("w:t")
    t.text = text
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def test_docx_links_in_paragraphs_and_tables_and_numbered_items(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("Leaving", 1)
    paragraph = document.add_paragraph("Fill out the ")
    _docx_link(paragraph, FORM, "TTS Offboarding Form")
    paragraph.add_run(" two weeks ahead.")
    document.add_paragraph("Return the laptop", style="List Number")
    document.add_paragraph("Hand in the badge", style="List Number")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text, table.cell(1, 0).text = "Office", "Contact", "Chicago"
    _docx_link(table.cell(1, 1).paragraphs[0], "https://desk.example/chicago", "front desk")
    document.save(tmp_path / "leaving.docx")
    texts = _texts(tmp_path, "leaving.docx")
    assert f"Fill out the TTS Offboarding Form ({FORM}) two weeks ahead." in texts
    assert "1. Return the laptop" in texts and "2. Hand in the badge" in texts
    assert "Office | Contact\nChicago | front desk (https://desk.example/chicago)" in texts


def test_pptx_link_on_a_run(tmp_path):
    import pptx

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Offboarding"
    paragraph = slide.placeholders[1].text_frame.paragraphs[0]
    for text, url in (("Fill out the ", None), ("TTS ", FORM), ("Offboarding Form", FORM), (" today.", None)):
        run = paragraph.add_run()
        run.text = text
        if url:
            run.hyperlink.address = url  # one link over two runs: its URL once, after both
    deck.save(tmp_path / "deck.pptx")
    assert f"Fill out the TTS Offboarding Form ({FORM}) today." in _texts(tmp_path, "deck.pptx")


def test_xlsx_cell_hyperlink(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Form", "Link"])
    sheet.append(["Offboarding", "the form"])
    sheet["B2"].hyperlink = FORM
    book.save(tmp_path / "forms.xlsx")
    assert _texts(tmp_path, "forms.xlsx") == [f"Form | Link\nOffboarding | the form ({FORM})"]


def test_eml_html_body_link(tmp_path):
    (tmp_path / "bye.eml").write_text(
        "From: Ann <ann@example.org>\nTo: bob@example.org\nSubject: Leaving\nMIME-Version: 1.0\n"
        'Content-Type: text/html; charset="utf-8"\n\n'
        f'<html><body><p>Please fill out the <a href="{FORM}">TTS Offboarding Form</a> today.</p></body></html>\n')
    assert f"Please fill out the TTS Offboarding Form ({FORM}) today." in _texts(tmp_path, "bye.eml")


def _pdf_with_link(path: Path, rect: tuple[float, float, float, float], url: str) -> None:
    """One page of Helvetica text with a link annotation (pypdf writes annotations; the text is drawn raw)."""
    from pypdf import PdfWriter
    from pypdf.annotations import Link
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
    content = DecodedStreamObject()
    content.set_data(b"BT /F1 12 Tf 72 700 Td (Fill out the TTS Offboarding Form before you go.) Tj ET")
    page[NameObject("/Contents")] = writer._add_object(content)
    writer.add_annotation(0, Link(rect=rect, url=url))
    writer.write(path)


def test_pdf_link_annotation_url_follows_its_words(tmp_path):
    for right in (251, 244):  # "Form" ends at x=250; a link's rectangle may stop short of it
        folder = tmp_path / str(right)
        folder.mkdir()
        _pdf_with_link(folder / "leaving.pdf", (129, 696, right, 711), FORM)
        assert _texts(folder, "leaving.pdf") == [f"Fill out the TTS Offboarding Form ({FORM}) before you go."]
    # A real paper whose link's words are its URL: written once.
    folder = shared("docs", "unstructured-example-docs", "pdf")
    loaded, _ = load_all(DocsConnector(Settings(name="d", kind="docs", path=folder, include=("layout-parser*",))))
    paper = "\n".join(b.text for b in loaded["layout-parser-paper-fast.pdf"].blocks)
    assert paper.count("layout-parser.github.io") == 1


def test_the_handbooks_offboarding_form_url_reaches_a_chunk(embedder):
    folder = shared("docs", "18f-handbook")
    connector = DocsConnector(Settings(name="18f", kind="docs", path=folder,
                                       include=("pages/hiring-staying-or-changing-jobs/leaving-tts.md",)))
    loaded, _ = load_all(connector)
    doc, masked = mask_document(loaded["pages/hiring-staying-or-changing-jobs/leaving-tts.md"])
    passage = f"The TTS Offboarding Form ({FORM}) provides PeopleOps essential information."
    assert masked == 0 and any(b.text.startswith(passage) for b in doc.blocks)
    chunks = Chunker(embedder, max_tokens=embedder.max_tokens).chunk(doc)
    assert any(passage in c.text for c in chunks)


def test_a_long_row_of_links_is_cut_between_links_not_inside_a_url(embedder):
    urls = [f"https://docs.google.com/presentation/d/{i}QwErTyUiOpAsDfGhJkL{i}zXcVbNm/edit?usp=sharing_{i}"
            for i in range(40)]
    row = " | ".join(f"Template {i} ({url})" for i, url in enumerate(urls))
    doc = Document(id="d", source="s", kind="docs", native_id="t.md", title="Templates",
                   citation=Citation("file:///t.md", "s/t.md"), blocks=(Block(row),), digest="x")
    chunks = Chunker(embedder, max_tokens=embedder.max_tokens).chunk(doc)
    assert len(chunks) > 3
    assert all(any(f"Template {i} ({url})" in c.text for c in chunks) for i, url in enumerate(urls))
    assert max(embedder.count_tokens([c.embed_text for c in chunks])) <= embedder.max_tokens


def test_secrets_in_a_link_are_masked_and_the_link_is_kept():
    links = (f"Form ({FORM}); report (https://x.example/r?token=Ab12Cd34Ef56Gh78&page=2); "
             "file (https://acct.blob.core.windows.net/c/f.pdf?sv=2021-08-06&sig=Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0%3D); "
             "s3 (https://b.s3.amazonaws.com/f?X-Amz-Date=20240101&X-Amz-Signature=" + "0a1b2c3d" * 8 + ")")
    doc = Document(id="d", source="s", kind="docs", native_id="l.md", title="Links",
                   citation=Citation("file:///l.md", "s/l.md"), blocks=(Block(links),), digest="x")
    masked, count = mask_document(doc)
    assert count == 3
    assert masked.blocks[0].text == (
        f"Form ({FORM}); report (https://x.example/r?token=[redacted secret]&page=2); "
        "file (https://acct.blob.core.windows.net/c/f.pdf?sv=2021-08-06&sig=[redacted url signature]); "
        "s3 (https://b.s3.amazonaws.com/f?X-Amz-Date=20240101&X-Amz-Signature=[redacted url signature])")
    assert not re.search(r"Ab12Cd34|Zx9Yw8|0a1b2c3d", masked.blocks[0].text)
