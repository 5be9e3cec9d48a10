"""`corpus eval`: the beir connector, the metric definitions, and the whole command on a tiny BEIR folder."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest

from cli.main import main
from server import evaluate
from server.evaluate import mrr_at_k, ndcg_at_k, percentile, recall_at_k, unique_docs

TINY = Path(__file__).resolve().parent / "fixtures" / "beir-tiny"


def test_perfect_ranking_has_ndcg_one():
    qrels = {"a": 2, "b": 1}
    assert ndcg_at_k(["a", "b", "c"], qrels, 10) == pytest.approx(1.0)
    assert recall_at_k(["a", "b", "c"], qrels, 10) == 1.0
    assert mrr_at_k(["a", "b", "c"], qrels, 10) == 1.0


def test_one_relevant_document_at_rank_two():
    qrels = {"a": 1}
    assert ndcg_at_k(["x", "a"], qrels, 10) == pytest.approx(1 / math.log2(3))
    assert mrr_at_k(["x", "a"], qrels, 10) == 0.5
    assert recall_at_k(["x", "a"], qrels, 1) == 0.0
    assert recall_at_k(["x", "a"], qrels, 2) == 1.0


def test_graded_gains_and_cutoffs():
    qrels = {"a": 2, "b": 1, "z": 0}
    # ranked b, a: DCG = 1/log2(2) + 3/log2(3); ideal a, b: 3/log2(2) + 1/log2(3)
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], qrels, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x", "a"], qrels, 1) == 0.0  # the relevant document is beyond the cut-off
    assert recall_at_k(["z", "a"], qrels, 10) == 0.5  # a zero judgement is not relevant
    assert mrr_at_k(["z", "x", "b"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["z", "x", "b"], qrels, 2) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0  # nothing relevant: no ideal to divide by


def test_documents_rank_by_their_best_chunk():
    assert unique_docs(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]


def test_percentile_interpolates():
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)


def test_qrels_and_queries_of_the_fixture():
    qrels = evaluate.load_qrels(TINY)
    assert set(qrels) == {"q1", "q2", "q3", "q4", "q5"}  # q6 has a text but no judgement: not evaluated
    assert qrels["q5"] == {"security-badge": 2, "onboarding": 1}
    assert "q6" in evaluate.load_queries(TINY)


def test_beir_connector_lists_and_loads(tmp_path):
    from connectors.beir import BeirConnector, Settings

    connector = BeirConnector(Settings(name="beir", kind="beir", path=TINY))
    items = list(connector.items())
    assert len(items) == 12
    fire = next(i for i in items if i.native_id == "fire")
    doc = connector.load(fire)
    assert doc.title == "Fire safety"
    assert doc.citation.uri == doc.citation.label == "beir:beir-tiny/fire"
    assert len(doc.blocks) == 1 and doc.blocks[0].text.startswith("When the fire alarm sounds")
    assert doc.digest == fire.stamp == connector.digest(fire)
    # A fresh connector (no listing yet) still loads, and stamps are stable across listings.
    again = BeirConnector(Settings(name="beir", kind="beir", path=TINY))
    assert again.load(fire).title == "Fire safety"
    assert [i.stamp for i in again.items()] == [i.stamp for i in items]


def test_eval_cli_json(capsys, tmp_path, monkeypatch, embedder):
    monkeypatch.chdir(tmp_path)  # no corpus.toml here: eval must not need one
    real = evaluate.evaluate
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **kw: real(*a, **kw, embedder=embedder))
    store = tmp_path / "kept"
    assert main(["eval", str(TINY), "--json", "--keep-store", str(store)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["documents"] == 12 and result["queries"] == 5
    assert result["ingest"]["added"] == 12
    modes = {m["mode"]: m for m in result["modes"]}
    assert set(modes) == {"hybrid", "dense", "keyword"}
    for m in modes.values():
        for metric in ("ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10"):
            assert 0.0 <= m[metric] <= 1.0, (m["mode"], metric)
        assert 0 <= m["p50_ms"] <= m["p95_ms"]
    assert modes["hybrid"]["ndcg_at_10"] > 0.7
    assert modes["hybrid"]["recall_at_100"] == 1.0

    # The kept store is reused: the second run ingests nothing and scores the same.
    assert main(["eval", str(TINY), "--json", "--keep-store", str(store), "--limit-queries", "2"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["ingest"]["unchanged"] == 12 and second["ingest"]["added"] == 0
    assert second["queries"] == 2

    # Half 2 is the even test queries (2 of 5), to report beside the half a ranking was tuned on.
    assert main(["eval", str(TINY), "--json", "--keep-store", str(store), "--half", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["queries"] == 2


def test_eval_table_and_errors(capsys, tmp_path, monkeypatch, embedder):
    monkeypatch.chdir(tmp_path)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    real = evaluate.evaluate
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **kw: real(*a, **kw, embedder=embedder))
    assert main(["eval", str(TINY), "--limit-queries", "1"]) == 0
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "recall@100" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["hybrid"], ["dense"], ["keyword"])]
    assert [row[0] for row in rows] == ["hybrid", "dense", "keyword"] and all(len(row) == 7 for row in rows)
    assert not list(temp.iterdir())  # the throwaway store went with its temp folder

    assert main(["eval", str(tmp_path)]) == 2
    assert "not a BEIR folder" in capsys.readouterr().err
