"""`[corpus] url`: the same ingest and search against a real `chroma run` server on loopback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from connectors import load_config
from ingest.pipeline import ingest
from server.search import Searcher
from tests.conftest import SAMPLE, docs_source, free_port, wait_for_port, write_config

pytestmark = pytest.mark.slow  # a `chroma run` subprocess

CHROMA = Path(shutil.which("chroma") or Path(__file__).resolve().parents[1] / ".venv" / "bin" / "chroma")


@pytest.fixture
def chroma_server(tmp_path):
    if not CHROMA.exists():
        pytest.skip("the chroma CLI (from the chromadb package) is not on PATH")
    port = free_port()
    proc = subprocess.Popen([str(CHROMA), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


def test_ingest_and_search_through_a_chroma_server(tmp_path, chroma_server, embedder):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    config = load_config(write_config(tmp_path, docs_source("handbook", docs), extra=f'url = "{chroma_server}"'))
    first = ingest(config, embedder=embedder).sources["handbook"]
    assert first.added == 11
    assert not (tmp_path / "store" / "chroma").exists()  # vectors live in the server, not on local disk
    again = ingest(config, embedder=embedder).sources["handbook"]
    assert (again.unchanged, again.chunks) == (11, 0)

    searcher = Searcher(config, embedder)
    hit = searcher.search("how often do we get a new laptop?", limit=3)[0]
    assert "laptop-and-accounts" in hit.citation_label and "3 years" in hit.text
    assert searcher.search("nwctl", mode="keyword")[0].id == searcher.search("nwctl")[0].id
    assert "3 years" in searcher.fetch(hit.doc_id).text

    (docs / "people" / "expenses.md").unlink()
    assert ingest(config, embedder=embedder).sources["handbook"].deleted == 1
    assert all("expenses" not in h.citation_label for h in Searcher(config, embedder).search("meal limit", limit=10))
