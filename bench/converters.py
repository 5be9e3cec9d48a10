"""Time the optional system tools on real files: Tesseract per page of a scanned PDF, LibreOffice per legacy
document (each conversion with a fresh profile, as ingest does), and the connector's whole load of each.

    python bench/converters.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
EXAMPLES = REPO.parent / "shared" / "data" / "docs" / "unstructured-example-docs"

from connectors.converters import modern_copy, ocr_pdf  # noqa: E402
from connectors.docs import DocsConnector, Settings  # noqa: E402
from corpus.config import IngestSettings  # noqa: E402
from corpus.records import Item  # noqa: E402


def _median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _converted(path: Path) -> None:
    with modern_copy(path, IngestSettings()):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    pdf, doc = EXAMPLES / "pdf" / "single_table.pdf", EXAMPLES / "simple.doc"
    connector = DocsConnector(Settings(name="bench", kind="docs", path=EXAMPLES))
    load = lambda path: connector.load(Item(native_id=path.name, stamp="", path=path))  # noqa: E731
    load(doc)  # unstructured's first partition imports its models: not part of any file's cost
    pages = len(ocr_pdf(pdf, IngestSettings()))
    rows = [
        ("tesseract, per page", pdf.name, _median_seconds(lambda: ocr_pdf(pdf, IngestSettings()), repeats) / pages),
        ("docs connector load", pdf.name, _median_seconds(lambda: load(pdf), repeats)),
        ("soffice --convert-to docx", doc.name, _median_seconds(lambda: _converted(doc), repeats)),
        ("docs connector load", doc.name, _median_seconds(lambda: load(doc), repeats)),
    ]
    print(f"median of {repeats} runs")
    print(f"{'step':<28}{'file':<20}{'seconds':>8}")
    for step, name, seconds in rows:
        print(f"{step:<28}{name:<20}{seconds:>8.2f}")


if __name__ == "__main__":
    main()
