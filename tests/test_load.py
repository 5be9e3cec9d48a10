"""The HTTP server survives publishes under load: bench/http_load.py's scenario, smaller (issue 10, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.http_load import run_load, table
from connectors import load_config
from ingest.pipeline import ingest

CLIENTS = 12


@pytest.mark.slow
def test_twelve_clients_search_through_three_publishes(tmp_path, embedder):
    def publish(config: Path) -> None:  # in this process, so the model is not loaded again for every ingest
        ingest(load_config(config), embedder=embedder)

    outcome = run_load(tmp_path, clients=CLIENTS, searches=4, ingests=3, timeout=300, ingest=publish)

    report = table(outcome)
    assert outcome.requests > CLIENTS * 4, report
    assert not outcome.errors, report
    assert outcome.server_exit is None, report
    assert not outcome.server_errors, report
    assert outcome.seen_last == CLIENTS, report
