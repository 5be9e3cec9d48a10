"""Search queries through ONNX Runtime give the model's own vectors, export once, and fall back to torch."""

from __future__ import annotations

import numpy as np
import pytest

from corpus.errors import ConfigError
from ingest.onnx_queries import OnnxQueries, cache_folder
from tests.conftest import write_config

TEXTS = [
    "how much is the on-call stipend?",
    "Who approves a release of the payments service, and what does a rollback take?",
    "zorblax7quint",  # one word the tokenizer cuts into many pieces
    "Parental leave: " + "the return-to-work rule applies after twelve weeks of leave. " * 60,  # past 256 tokens
]


def test_onnx_gives_the_vectors_torch_gives(embedder, tmp_path):
    queries = OnnxQueries(embedder, tmp_path / "onnx")
    together = queries.embed(TEXTS)  # one padded batch of short and truncated texts
    assert queries.runtime == "onnx"
    alone = np.vstack([queries.embed([text]) for text in TEXTS])
    expected = embedder.embed(TEXTS)
    assert together.dtype == np.float32 and together.shape == expected.shape
    assert np.min(np.sum(together * expected, axis=1)) > 0.9999
    assert np.min(np.sum(alone * expected, axis=1)) > 0.9999
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_the_export_is_made_once_and_reused(embedder, tmp_path):
    folder = tmp_path / "onnx"
    OnnxQueries(embedder, folder).embed(["first"])
    exported = sorted(folder.iterdir())
    assert [p.suffix for p in exported] == [".onnx"]
    stamp = exported[0].stat().st_mtime_ns
    again = OnnxQueries(embedder, folder)
    again.embed(["second"])
    assert again.runtime == "onnx"
    assert sorted(folder.iterdir()) == exported and exported[0].stat().st_mtime_ns == stamp


def test_an_unusable_cache_leaves_queries_on_torch_with_one_line(embedder, tmp_path, capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    queries = OnnxQueries(embedder, blocked)
    vectors = queries.embed(TEXTS[:2])
    assert queries.runtime == "torch"
    assert np.min(np.sum(vectors * embedder.embed(TEXTS[:2]), axis=1)) > 0.9999
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corpus: queries embed with torch, not ONNX Runtime:")


def test_a_corrupt_export_is_refused_by_the_probe_or_the_runtime(embedder, tmp_path, capsys):
    folder = tmp_path / "onnx"
    OnnxQueries(embedder, folder).embed(["make it"])
    (exported,) = folder.iterdir()
    exported.write_bytes(exported.read_bytes()[:4096])  # a truncated file, as a full disk would leave
    queries = OnnxQueries(embedder, folder)
    assert np.min(np.sum(queries.embed(TEXTS[:1]) * embedder.embed(TEXTS[:1]), axis=1)) > 0.9999
    assert queries.runtime == "torch"
    assert "not ONNX Runtime" in capsys.readouterr().err


def test_the_cache_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "corpus" / "onnx"


def test_query_runtime_is_checked_when_the_config_loads(tmp_path):
    from connectors import load_config

    config = write_config(tmp_path, "", extra='[embedding]\nquery_runtime = "tensorrt"\n')
    with pytest.raises(ConfigError, match="query_runtime"):
        load_config(config)


def test_a_model_that_pools_otherwise_runs_its_own_modules_after_onnx(tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from ingest.embedder import Embedder, resolve_model

    transformer = Transformer(resolve_model("all-MiniLM-L6-v2"))
    cls = Embedder("cls-pooled")
    cls.__dict__["model"] = SentenceTransformer(modules=[transformer, Pooling(384, pooling_mode="cls")])
    queries = OnnxQueries(cls, tmp_path / "onnx")
    vectors = queries.embed(TEXTS)
    assert queries.runtime == "onnx"
    expected = cls.embed(TEXTS)
    assert np.min(np.sum(vectors * expected, axis=1)) > 0.9999
    mean = OnnxQueries(Embedder("all-MiniLM-L6-v2"), tmp_path / "onnx").embed(TEXTS)
    assert np.max(np.sum(vectors * mean, axis=1)) < 0.99  # CLS pooling really differs from the mean
