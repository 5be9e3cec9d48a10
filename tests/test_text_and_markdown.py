"""Decoding unknown encodings and reading Markdown the way a person reads it."""

from __future__ import annotations

from datetime import datetime

from connectors import markdown
from connectors.text import decode, paragraphs


def test_decode_handles_boms_utf16_without_bom_and_cp1252():
    text = "Crème brûlée — 12 €"
    assert decode(text.encode("utf-8")) == text
    assert decode(b"\xef\xbb\xbf" + text.encode("utf-8")) == text
    assert decode(text.encode("utf-16")) == text  # with BOM
    assert decode("Plain ASCII text here".encode("utf-16-le")) == "Plain ASCII text here"
    assert decode("Plain ASCII text here".encode("utf-16-be")) == "Plain ASCII text here"
    assert "Crème brûlée" in decode("Crème brûlée and a café menu for the team".encode("cp1252"))


def test_paragraphs_fold_lines_and_split_on_blank_lines():
    assert paragraphs("one\ntwo\r\n\r\n  \nthree\n") == ["one two", "three"]


def test_front_matter_title_dates_and_people():
    doc = markdown.parse(
        "---\ntitle: Expenses\nupdated: 2026-01-12\nauthor: Hannah Schulz\n---\n# Expenses\n\nIntro.\n\n"
        "## Meals\n\nUp to 45 EUR a day.\n\n### Abroad\n\n- item one\n- item two\n"
    )
    assert doc.title == "Expenses"
    assert markdown.meta_date(doc.meta, "updated") == datetime(2026, 1, 12)
    assert markdown.meta_people(doc.meta, "author") == ("Hannah Schulz",)
    assert [(b.headings, b.text) for b in doc.blocks] == [
        (("Expenses",), "Intro."),
        (("Expenses", "Meals"), "Up to 45 EUR a day."),
        (("Expenses", "Meals", "Abroad"), "- item one\n- item two"),
    ]


def test_front_matter_title_entities_are_decoded_as_the_site_renders_them():
    assert markdown.parse("---\ntitle: Logging in &amp; Networks\n---\nText.\n").title == "Logging in & Networks"


def test_title_falls_back_to_first_heading_and_broken_front_matter_is_ignored():
    doc = markdown.parse("---\n: [unclosed\n---\n## Setup\n\nRun it.\n")
    assert doc.meta == {}
    assert doc.title == "Setup"


def test_liquid_tags_are_removed_keeping_what_they_name():
    doc = markdown.parse(
        'Ask in {% slack_channel "people-ops" %} or see [FMLA]({% page "travel-and-leave/fmla" %}).\n\n'
        "{% comment %}internal note{% endcomment %}{% alert %}Be careful{% endalert %}\n"
    )
    text = " ".join(b.text for b in doc.blocks)
    assert "#people-ops" in text
    assert "internal note" not in text and "{%" not in text
    assert "Be careful" in text


def test_tables_and_code_survive():
    doc = markdown.parse("| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nmake deploy\n```\n")
    assert [b.text for b in doc.blocks] == ["a | b\n1 | 2", "make deploy"]


def test_redirect_only_page_keeps_where_it_went():
    doc = markdown.parse("---\ntitle: Org chart\nredirect_to: https://example.org/org\n---\n")
    assert [b.text for b in doc.blocks] == ["Org chart has moved to https://example.org/org"]
