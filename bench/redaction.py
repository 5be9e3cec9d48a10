"""What the secret rules mask in real documents and Slack exports, which hold no secrets: every hit is a
false positive to read (or a real secret). Each folder is read through its connector, as ingest reads it,
and each document masked as ingest masks it; prints a table and every masked value with its context.

    python bench/redaction.py [FOLDER:KIND …]   (default: the docs and Slack exports in ../shared/data)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import corpus  # noqa: F401  (offline environment before any heavy import)
from connectors import open_connector, settings_model
from connectors.base import ConnectorContext
from corpus.errors import CorpusError
from corpus.redact import find
from ingest.masking import mask_document

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT = [(SHARED / "docs" / "18f-handbook", "docs"), (SHARED / "docs" / "unstructured-example-docs", "docs"),
           (SHARED / "slack" / "houstondatavis", "slack"), (SHARED / "slack" / "hfaran-testarchive" / "testarchive.zip",
                                                             "slack"),
           (SHARED / "slack" / "slackdump-obfuscated-fixture" / "source_export.zip", "slack"),
           (SHARED / "transcripts", "meetings")]


def texts(doc) -> list[str]:
    """Every text of a document that ingest stores, as the connector produced it."""
    return [doc.native_id, doc.title, doc.context, doc.citation.label, *doc.authors,
            *(text for b in doc.blocks for text in (b.text, *b.locator.headings, *b.people))]


def survey(path: Path, kind: str) -> tuple[list, list[tuple[str, str, str]], float]:
    connector = open_connector(settings_model(kind)(name="bench", kind=kind, path=path), ConnectorContext())
    documents, masked, seconds = [], [], 0.0
    for item in connector.items():
        try:
            doc = connector.load(item)
        except CorpusError:
            continue
        started = time.perf_counter()
        _, count = mask_document(doc)
        seconds += time.perf_counter() - started
        documents.append(doc)
        if count:
            for text in texts(doc):
                masked += [(item.native_id, s.kind, text[max(0, s.start - 40):s.end + 10]) for s in find(text)]
    return documents, masked, seconds


def main(argv: list[str]) -> int:
    folders = [(Path(a.rsplit(":", 1)[0]), a.rsplit(":", 1)[1]) for a in argv] or DEFAULT
    print(f"{'folder':48} {'kind':6} {'docs':>5} {'texts':>7} {'MB':>6} {'masked':>6} {'mask s':>7}")
    details = []
    for path, kind in folders:
        if not path.exists():
            print(f"{path}: not found, skipped")
            continue
        documents, masked, seconds = survey(path, kind)
        size = sum(len(t) for d in documents for t in texts(d)) / 1e6
        print(f"{path.name[:48]:48} {kind:6} {len(documents):>5} {sum(len(texts(d)) for d in documents):>7} "
              f"{size:>6.1f} {len(masked):>6} {seconds:>7.2f}")
        details += masked
    for native_id, kind, context in details:
        print(f"  {native_id}: {kind}: {context!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
