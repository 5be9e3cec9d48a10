"""Query embeddings through ONNX Runtime: the model's own vectors at less than half the cost of a query.

One short query through torch costs ~16 ms on one thread, most of it PyTorch's per-call overhead on a
six-layer model; ONNX Runtime runs the same graph in ~6.5 ms (a batch of six: 35 vs 24 ms). A server
embeds every query, so that is most of a search at 100k chunks and most of the CPU under load.

Only the transformer runs in ONNX Runtime: tokenizing, pooling and normalizing stay the model's own
modules, so any sentence-transformers model is handled alike. The export is made once per model and
library versions into the user's cache folder and checked against torch on probe sentences before it is
used; anything that fails (an exotic model, a read-only cache, a missing runtime) leaves queries on torch
with one line saying why.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ingest.embedder import Embedder

PROBES = ["how does the on-call hand-off work?", "Expense receipts are due within thirty days of the trip."]
AGREEMENT = 0.9999  # cosine between the torch and ONNX vectors of each probe


def query_encoder(embedder: Embedder, runtime: str) -> Embedder | OnnxQueries:
    """What a searcher embeds its queries with, as ``[embedding] query_runtime`` says."""
    return OnnxQueries(embedder) if runtime == "onnx" else embedder


def cache_folder() -> Path:
    """Where exported models are kept: $XDG_CACHE_HOME/corpus/onnx, else ~/.cache/corpus/onnx."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "corpus" / "onnx"


class OnnxQueries:
    """``embed(texts)`` as ``Embedder.embed`` gives it, through ONNX Runtime once the export is ready."""

    def __init__(self, embedder: Embedder, cache: Path | None = None):
        self.embedder = embedder
        self.cache = cache or cache_folder()
        self._lock = threading.Lock()
        self._session = None
        self._ready = False  # tried: ``_session`` is the ONNX path, or None for torch

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.embedder.embed(texts)
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._session = self._open()
                    self._ready = True
        if self._session is None:
            return self.embedder.embed(texts)
        return self._run(self._session, list(texts))

    @property
    def runtime(self) -> str:
        """What embeds queries now: "onnx", "torch", or "not loaded"."""
        if not self._ready:
            return "not loaded"
        return "onnx" if self._session is not None else "torch"

    def _open(self):
        try:
            import onnxruntime

            path = self._exported()
            options = onnxruntime.SessionOptions()
            # one query reads all the weights once, so it is bound by memory, not arithmetic: a second thread
            # took 9.3 ms where one took 9.4 (2 cores), and on a busy machine it waited for the other core
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            # idle pool threads would spin after each query, taking a core from the search that follows it
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            agreement = float(np.min(np.sum(self._run(session, PROBES) * self.embedder.embed(PROBES), axis=1)))
            if agreement < AGREEMENT:
                raise ValueError(f"its vectors differ from torch's (cosine {agreement:.6f})")
            return session
        except Exception as exc:  # any failure leaves the model's own torch path, which always works
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"corpus: queries embed with torch, not ONNX Runtime: {reason[:200]}", file=sys.stderr)
            return None

    def _exported(self) -> Path:
        """The transformer as ONNX for this model and these library versions, exported on first use."""
        import onnxruntime
        import torch

        transformer = self.embedder.model[0]
        key = hashlib.sha256("\0".join([
            _weights_stamp(transformer), type(transformer.auto_model).__name__, torch.__version__,
            version("onnx"), onnxruntime.__version__,  # not `import onnx`: 1.5 s for a version string
        ]).encode()).hexdigest()[:24]
        path = self.cache / f"{key}.onnx"
        if path.exists():
            return path
        self.cache.mkdir(parents=True, exist_ok=True)
        features = self._features(PROBES)
        names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in features]
        partial = path.with_suffix(f".{os.getpid()}.part")
        axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python control flow in the model
            torch.onnx.export(_token_embeddings(transformer, names), tuple(features[name] for name in names),
                              str(partial), input_names=names, output_names=["token_embeddings"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        partial.replace(path)  # another process exporting the same model writes its own part file
        return path

    def _features(self, texts: list[str]) -> dict:
        return self.embedder.model.preprocess(texts)

    def _run(self, session, texts: list[str]) -> np.ndarray:
        features = self._features(texts)
        inputs = {i.name: features[i.name].numpy() for i in session.get_inputs()}
        tokens = session.run(None, inputs)[0]
        if _mean_pooled(self.embedder.model):
            # numpy, not torch: a torch op would wake torch's thread pool, whose spinning costs the next search
            mask = inputs["attention_mask"][..., None].astype(np.float32)
            vectors = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        else:
            vectors = self._pooled(features, tokens)
        vectors = vectors.astype(np.float32, copy=False)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _pooled(self, features: dict, tokens: np.ndarray) -> np.ndarray:
        """The model's own modules after the transformer, for models that pool otherwise than by the mean."""
        import torch

        features["token_embeddings"] = torch.from_numpy(tokens)
        with torch.inference_mode():
            for module in list(self.embedder.model)[1:]:
                features = module(features)
        return features["sentence_embedding"].numpy()


def _mean_pooled(model) -> bool:
    """Whether the model pools by the mean of its token embeddings, then at most normalizes (MiniLM does)."""
    rest = [type(module).__name__ for module in list(model)[1:]]
    return rest in (["Pooling"], ["Pooling", "Normalize"]) and getattr(model[1], "pooling_mode", None) == "mean"


def _token_embeddings(transformer, names: list[str]):
    """The model's first module as a function of its token tensors alone, which is what the exporter traces."""
    import torch

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors):
            return self.transformer(dict(zip(names, tensors, strict=True)))["token_embeddings"]

    return TokenEmbeddings().eval()


def _weights_stamp(transformer) -> str:
    """The model's files by name, size and time: a changed model gets a new export."""
    folder = Path(getattr(transformer.auto_model, "name_or_path", "") or ".")
    if not folder.is_dir():
        return str(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".safetensors", ".bin", ".json"})
    return str(folder.resolve()) + "".join(f"|{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
