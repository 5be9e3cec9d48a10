"""Memory stays bounded on any input: items past the text cap are one line, huge blocks are never tokenized whole.

Inputs are small with a 1 MB cap so the tests run fast; bench/ingest_memory.py measures the real sizes.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from connectors.base import ConnectorContext
from connectors.docs import DocsConnector
from connectors.docs import Settings as DocsSettings
from connectors.limits import read_capped
from connectors.slack import Settings as SlackSettings
from connectors.slack import SlackConnector
from corpus.config import IngestSettings
from corpus.errors import ItemError
from corpus.records import Block, Citation, Document
from ingest.chunker import MAX_SEGMENT_CHARS, Chunker
from tests.conftest import REPO, docs_source, load_all, write_config

MB = 2**20
ONE_MB_CAP = ConnectorContext(ingest=IngestSettings(max_text_mb=1))


def _prose(size: int) -> str:
    sentence = "The quarterly review covers expenses, travel and the on-call rota in detail. "
    return (sentence * (size // len(sentence) + 1))[:size]


def _docs(path: Path) -> DocsConnector:
    return DocsConnector(DocsSettings(name="docs", kind="docs", path=path), ONE_MB_CAP)


@pytest.mark.slow
def test_ingest_reports_a_file_past_the_cap_in_one_line_and_ingests_the_rest(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "huge.txt").write_text(_prose(2 * MB))
    (folder / "policy.md").write_text("# Travel\n\nTrain tickets are booked through the travel desk.\n")
    config = write_config(tmp_path, docs_source("docs", folder), extra="[ingest]\nmax_text_mb = 1\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "cli.main", "--config", str(config), "ingest"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    output = run.stdout + run.stderr
    assert "huge.txt: text too large: 2 MB > 1 MB cap" in output
    assert "Traceback" not in output
    found = subprocess.run([sys.executable, "-m", "cli.main", "--config", str(config), "search", "travel desk",
                            "--json"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert found.returncode == 0, found.stderr
    assert [hit["title"] for hit in json.loads(found.stdout)["hits"]] == ["Travel"]


@pytest.mark.parametrize("name", ["notes.md", "page.html", "data.csv", "legacy.rtf"])
def test_text_formats_are_measured_on_disk_before_they_are_read(tmp_path, name):
    (tmp_path / name).write_text(_prose(MB + 1))
    (tmp_path / "small.txt").write_text("A short note that fits.")
    loaded, failed = load_all(_docs(tmp_path))
    assert failed == {name: "text too large: 1.1 MB > 1 MB cap; raise [ingest] max_text_mb to read it"}
    assert list(loaded) == ["small.txt"]


def _docx(path: Path, paragraphs: int) -> Path:
    import docx

    document = docx.Document()
    for _ in range(paragraphs):
        document.add_paragraph(_prose(8000))
    document.save(path)
    return path


def test_a_docx_whose_text_is_past_the_cap_is_refused_from_its_declared_sizes(tmp_path):
    big = _docx(tmp_path / "report.docx", paragraphs=300)  # ~2.4 MB of text, a few KB once deflated
    assert big.stat().st_size < MB
    _docx(tmp_path / "memo.docx", paragraphs=1)
    loaded, failed = load_all(_docs(tmp_path))
    assert re.fullmatch(r"text too large: \d\.\d MB > 1 MB cap; raise \[ingest\] max_text_mb to read it",
                        failed.pop("report.docx"))
    assert failed == {} and list(loaded) == ["memo.docx"]


def test_a_docx_that_declares_less_than_it_holds_is_measured_by_inflating_it(tmp_path):
    path = _docx(tmp_path / "liar.docx", paragraphs=300)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("word/document.xml")
    data = bytearray(path.read_bytes())
    real = struct.pack("<I", info.file_size)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        start = 0
        while (start := data.find(signature, start)) != -1:
            if data[start + offset:start + offset + 4] == real:
                data[start + offset:start + offset + 4] = struct.pack("<I", 1000)
            start += 4
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("word/document.xml").file_size == 1000
    _, failed = load_all(_docs(tmp_path))
    assert failed == {"liar.docx": "text too large: more than the 1 MB cap; raise [ingest] max_text_mb to read it"}


def _pdf(path: Path, pages: int, lines_per_page: int, line: str) -> Path:
    """A minimal PDF with a real text layer (Helvetica, deflated content streams)."""
    import zlib

    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for _ in range(pages):
        stream = zlib.compress(b"BT /F1 1 Tf 10 TL 20 800 Td " + f"({line}) Tj T* ".encode() * lines_per_page + b"ET")
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(len(objects) + 1)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 850] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % (len(objects)))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), pages)
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def test_a_pdf_is_measured_by_its_text_as_its_pages_are_read(tmp_path):
    line = "The quarterly review covers expenses, travel and the on-call rota in detail, page by page."
    _pdf(tmp_path / "small.pdf", pages=2, lines_per_page=3, line=line)
    big = _pdf(tmp_path / "big.pdf", pages=60, lines_per_page=250, line=line)  # 1.3 MB of text
    assert big.stat().st_size < MB
    loaded, failed = load_all(_docs(tmp_path))
    assert failed == {"big.pdf": "text too large: more than the 1 MB cap; raise [ingest] max_text_mb to read it"}
    assert line in loaded["small.pdf"].blocks[0].text


def test_read_capped_stops_one_byte_past_the_cap(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (3 * MB))
    with path.open("rb") as stream:
        with pytest.raises(ItemError, match=r"^text too large: more than the 1 MB cap"):
            read_capped(stream, MB)
        assert stream.tell() == MB + 1
    with path.open("rb") as stream:
        assert len(read_capped(stream, 4 * MB)) == 3 * MB


def _slack_zip(path: Path, days: dict[str, list[dict]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("channels.json", json.dumps([{"id": "C1", "name": "general"}]))
        zf.writestr("users.json", json.dumps([{"id": "U1", "name": "ann", "profile": {"display_name": "Ann"}}]))
        for day, messages in days.items():
            zf.writestr(f"general/{day}.json", json.dumps(messages))
    return path


def _message(at: float, text: str) -> dict:
    return {"type": "message", "user": "U1", "text": text, "ts": f"{at:.6f}"}


def test_a_slack_day_file_past_the_cap_is_one_line_and_the_other_days_are_read(tmp_path):
    export = _slack_zip(tmp_path / "export.zip", {
        "2016-03-01": [_message(1456840920, "word " * (MB // 2))],  # 2.5 MB: one huge message
        "2016-03-02": [_message(1456927320, "The deploy runbook is pinned in this channel.")],
    })
    assert export.stat().st_size < 100_000  # small on disk, large once inflated
    connector = SlackConnector(SlackSettings(name="slack", kind="slack", path=export), ONE_MB_CAP)
    loaded, failed = load_all(connector)
    assert failed == {"general/2016-03-01.json": "text too large: 2.6 MB > 1 MB cap; raise [ingest] max_text_mb "
                                                 "to read it"}
    assert [doc.blocks[0].text for doc in loaded.values()] == ["Ann (2016-03-02 14:02): The deploy runbook is pinned "
                                                               "in this channel."]


def test_a_slack_thread_whose_text_adds_up_past_the_cap_is_one_line(tmp_path):
    root = 1456840920.0
    reply = {**_message(root + 60, "word " * (MB // 50)), "thread_ts": f"{root:.6f}"}
    days = {f"2016-03-{day:02d}": [{**reply, "ts": f"{root + day * 86400:.6f}"}] for day in range(1, 13)}
    days["2016-03-01"].insert(0, {**_message(root, "Thread opener"), "thread_ts": f"{root:.6f}"})
    export = _slack_zip(tmp_path / "export.zip", days)
    connector = SlackConnector(SlackSettings(name="slack", kind="slack", path=export), ONE_MB_CAP)
    loaded, failed = load_all(connector)
    assert loaded == {}
    assert list(failed.values()) == ["text too large: 1.3 MB > 1 MB cap; raise [ingest] max_text_mb to read it"]


def test_an_unpacked_slack_export_is_measured_on_disk_too(tmp_path):
    folder = tmp_path / "export"
    (folder / "general").mkdir(parents=True)
    (folder / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    (folder / "users.json").write_text(json.dumps([{"id": "U1", "name": "ann"}]))
    (folder / "general" / "2016-03-01.json").write_text(json.dumps([_message(1456840920, "word " * MB)]))
    connector = SlackConnector(SlackSettings(name="slack", kind="slack", path=folder), ONE_MB_CAP)
    loaded, failed = load_all(connector)
    assert loaded == {}
    assert failed == {"general/2016-03-01.json": "text too large: 5.1 MB > 1 MB cap; raise [ingest] max_text_mb "
                                                 "to read it"}


class _Recording:
    """The real tokenizer, remembering the longest text it was given."""

    def __init__(self, real):
        self.real = real
        self.longest = 0

    def count_tokens(self, texts):
        self.longest = max([self.longest, *map(len, texts)])
        return self.real.count_tokens(texts)

    def split_tokens(self, text, limit):
        self.longest = max(self.longest, len(text))
        return self.real.split_tokens(text, limit)


def _doc(*blocks: Block) -> Document:
    return Document(id="d1", source="s", kind="docs", native_id="big.txt", title="Big",
                    citation=Citation("file:///big.txt", "s/big.txt"), blocks=blocks, digest="x")


def _squashed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    " ".join(f"w{i}x" for i in range(60_000)),  # one long line without a sentence end
    "".join(f"k{i}/" for i in range(30_000)),  # no whitespace at all (a path, a URL, a data blob)
], ids=["single-line", "no-whitespace"])
def test_a_huge_run_on_block_is_never_tokenized_whole_and_loses_nothing(embedder, text):
    measure = _Recording(embedder)
    chunks = Chunker(measure, max_tokens=embedder.max_tokens).chunk(_doc(Block(text)))
    assert measure.longest <= MAX_SEGMENT_CHARS
    counts = embedder.count_tokens([c.embed_text for c in chunks])
    assert max(counts) <= embedder.max_tokens
    assert sum(counts) / len(counts) > 200  # cutting in segments first still leaves chunks full
    assert "".join(_squashed(c.text) for c in chunks) == _squashed(text)  # in order, nothing lost or repeated


@pytest.mark.slow
def test_megabytes_of_prose_in_one_paragraph_are_cut_at_sentences_without_tokenizing_it_whole(embedder):
    sentences = [f"Rule {i} says that expense number {i} needs a receipt from the vendor." for i in range(8000)]
    measure = _Recording(embedder)
    chunks = Chunker(measure, max_tokens=embedder.max_tokens).chunk(_doc(Block(" ".join(sentences))))
    assert measure.longest <= MAX_SEGMENT_CHARS
    assert max(embedder.count_tokens([c.embed_text for c in chunks])) <= embedder.max_tokens
    kept = [line for c in chunks for line in c.text.split("\n")]
    assert list(dict.fromkeys(kept)) == sentences  # every sentence whole, in order (overlap repeats some)


@pytest.mark.slow
def test_the_loader_stops_reading_ahead_once_its_text_budget_is_queued(tmp_path, embedder):
    import time

    from ingest.loader import load_in_background

    for n in range(6):
        (tmp_path / f"report-{n}.txt").write_text(_prose(200_000))
    connector = _docs(tmp_path)
    loads = []
    original = connector.load
    connector.load = lambda item: loads.append(item.native_id) or original(item)
    chunker = Chunker(embedder.measure(), max_tokens=embedder.max_tokens)
    stream = load_in_background(connector, chunker, list(connector.items()), queued_chars=300_000)
    first = next(stream)
    time.sleep(2)  # the reader runs ahead as far as it may while this consumer holds back
    assert first.error is None and len(loads) <= 3  # the taken one, one queued, one waiting for room
    assert len([first, *stream]) == 6 and len(loads) == 6  # and all of them arrive in the end
