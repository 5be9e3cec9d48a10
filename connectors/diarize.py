"""Who spoke when in a recording that comes without a transcript: speaker turns, offline.

Resemblyzer's voice encoder (its weights ship inside the PyPI wheel, nothing is downloaded) embeds 1.6 s windows
of the audio where Whisper heard words; agglomerative clustering with a distance threshold groups them, so the
number of speakers need not be known. A two-channel recording whose channels carry different people (what many
call recorders write) is split by channel energy instead: each word goes to the louder channel.

Every word Whisper timed gets a speaker, and a segment is cut where the speaker changes, so a block is one
person's turn as in a Teams transcript. Speakers are called "Speaker 1", "Speaker 2"… in the order they first
speak; names come later (connectors/speaker_names.py). Like transcripts, results are cached under the audio's
hash and the settings, so re-ingesting unchanged audio never diarizes it again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from connectors.base import AudioRuns, write_atomically
from connectors.transcripts import Segment
from corpus.errors import ItemError

AVAILABLE = importlib.util.find_spec("resemblyzer") is not None
SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100  # resemblyzer's mel frames are 10 ms apart
WINDOW = 1.6  # seconds the encoder was trained on
STEP = 0.25  # between window centres; widened on long recordings so clustering stays within MAX_WINDOWS
MAX_WINDOWS = 3000  # average-linkage clustering keeps an n × n distance matrix: 3000 windows ≈ 70 MB
NEAR_WORD = 0.1  # a window is speech when its centre is this close to a word Whisper timed
# Tuned on pyannote's sample.wav and dev00.wav (the only two references here; see bench/diarization.py), with
# Whisper's words as int8 decodes them on CPUs with and without AVX-512 VNNI (and as float32 does): the words'
# times move a little with the kernels, and at 3 s a spurious 3.0 s group of the phone call became a third speaker.
THRESHOLD = 0.9  # cosine distance between the average voices of two groups, on centred embeddings
MIN_SPEAKER_SECONDS = 4.0  # a voice heard for less in a whole recording is folded into the nearest speaker
MIN_RUN_SECONDS = 0.5  # a shorter run of windows inside another speaker's turn takes that speaker
CHANNEL_CORRELATION = 0.3  # two channels this unlike each other carry different people
BATCH = 256  # windows per forward pass
VERSION = 2  # bump when a change here changes who is said to speak, so cached results are redone


# Process-wide totals, for tests and benchmarks: a re-ingest of unchanged audio must diarize nothing.
TOTALS = AudioRuns()


def label(index: int) -> str:
    """The name a speaker has until a person gives a real one."""
    return f"Speaker {index + 1}"


class Diarizer:
    def __init__(self, transcript_key: str, threshold: float = THRESHOLD, cache_dir: Path | None = None,
                 note: Callable[[str], None] | None = None):
        """``transcript_key`` identifies the transcription settings: the words timed are what is diarized."""
        self.threshold = threshold
        self.cache_dir = cache_dir
        self.note = note or (lambda line: None)
        self.stats = AudioRuns()
        from importlib.metadata import version

        identity = {"encoder": f"resemblyzer {version('resemblyzer')}" if AVAILABLE else None,
                    "window": WINDOW, "step": STEP, "threshold": threshold, "min_speaker": MIN_SPEAKER_SECONDS,
                    "min_run": MIN_RUN_SECONDS, "channels": CHANNEL_CORRELATION, "version": VERSION,
                    "transcript": transcript_key}
        self.key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    def split(self, path: Path, content_hash: str, name: str, segments: Sequence[Segment],
              duration: float) -> list[Segment]:
        """``segments`` cut into speaker turns, each labelled "Speaker N"."""
        units = [_units(s) for s in segments]
        times = [t for parts in units for t in parts]
        speakers = self._read_cache(content_hash, len(times))
        if speakers is None:
            started = time.monotonic()
            speakers = _first_seen_order(_speakers(path, times, self.threshold))
            wall = time.monotonic() - started
            self._write_cache(content_hash, speakers)
            self.stats.add(duration, wall)
            TOTALS.add(duration, wall)
            self.note(f"{name}: diarized {duration / 60:.1f} min of audio in {wall:.1f} s "
                      f"({wall / max(duration, 1e-9):.2f}x real time), {len(set(speakers))} speaker(s)")
        else:
            self.stats.hit()
            TOTALS.hit()
        turns: list[Segment] = []
        at = 0
        for segment, parts in zip(segments, units, strict=True):
            turns.extend(_cut(segment, parts, speakers[at:at + len(parts)]))
            at += len(parts)
        return turns

    def _cache_file(self, content_hash: str) -> Path | None:
        return self.cache_dir / f"{content_hash}-{self.key}.json" if self.cache_dir else None

    def _read_cache(self, content_hash: str, count: int) -> list[int] | None:
        path = self._cache_file(content_hash)
        if path is None or not path.is_file():
            return None
        try:
            speakers = json.loads(path.read_text(encoding="utf-8"))["speakers"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable entry: diarize again and overwrite it
        return speakers if isinstance(speakers, list) and len(speakers) == count else None

    def _write_cache(self, content_hash: str, speakers: list[int]) -> None:
        path = self._cache_file(content_hash)
        if path is None:
            return
        write_atomically(path, json.dumps({"speakers": speakers}))


def _units(segment: Segment) -> list[tuple[float, float]]:
    """The times of a segment's words; the whole segment when its words cannot be matched to its text
    (a masked secret changed the word count), so it goes to one speaker by its middle."""
    if segment.words and len(segment.words) == len(segment.text.split()):
        return list(segment.words)
    return [(segment.start, segment.end)]


def _cut(segment: Segment, parts: list[tuple[float, float]], speakers: list[int]) -> list[Segment]:
    """The segment as one segment per run of words by the same speaker."""
    if len(parts) == 1:
        return [replace(segment, speaker=label(speakers[0]), words=())]
    tokens = segment.text.split()
    cut: list[Segment] = []
    begin = 0
    for index in range(1, len(parts) + 1):
        if index == len(parts) or speakers[index] != speakers[begin]:
            cut.append(Segment(parts[begin][0], parts[index - 1][1], " ".join(tokens[begin:index]),
                               label(speakers[begin])))
            begin = index
    return cut


def _first_seen_order(speakers: list[int]) -> list[int]:
    order: dict[int, int] = {}
    return [order.setdefault(s, len(order)) for s in speakers]


def _speakers(path: Path, times: list[tuple[float, float]], threshold: float = THRESHOLD) -> list[int]:
    """A speaker number for each (start, end) span of speech."""
    if not times:
        return []
    from faster_whisper.audio import decode_audio

    try:
        left, right = decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=True)
    except Exception as exc:  # PyAV errors: the transcriber decoded this file, so this is rare
        raise ItemError(f"cannot decode audio for diarization: {type(exc).__name__}: {exc}") from exc
    if _separate_channels(left, right):
        return [_louder(left, right, start, end) for start, end in times]
    left += right
    del right
    left /= 2
    return _cluster(left, times, threshold)


def _separate_channels(left: np.ndarray, right: np.ndarray) -> bool:
    """True when both channels carry sound and it is not the same sound: one person (or side) per channel.
    A mono file decodes to two equal channels; a room recorded in stereo has strongly correlated channels."""
    energy = float(np.dot(left, left)), float(np.dot(right, right))
    if min(energy) <= 1e-6 * max(energy):
        return False
    return abs(float(np.dot(left, right))) / np.sqrt(energy[0] * energy[1]) < CHANNEL_CORRELATION


def _louder(left: np.ndarray, right: np.ndarray, start: float, end: float) -> int:
    a, b = int(start * SAMPLE_RATE), max(int(end * SAMPLE_RATE), int(start * SAMPLE_RATE) + 1)
    return int(np.dot(right[a:b], right[a:b]) > np.dot(left[a:b], left[a:b]))


def _cluster(audio: np.ndarray, times: list[tuple[float, float]], threshold: float = THRESHOLD) -> list[int]:
    """Embed windows centred on speech, cluster them, and give each span the speaker of its nearest window."""
    duration = len(audio) / SAMPLE_RATE
    centres = _window_centres(duration, times)
    if len(centres) < 2:
        return [0] * len(times)
    embeddings = _embed(audio, centres)
    step = _step(centres)
    groups = _smooth(_groups(embeddings, step, threshold), step)
    middles = np.array([(s + e) / 2 for s, e in times])
    nearest = np.searchsorted(centres, middles).clip(1, len(centres) - 1)
    nearest -= np.abs(centres[nearest - 1] - middles) <= np.abs(centres[nearest] - middles)
    return [int(g) for g in groups[nearest]]


def _window_centres(duration: float, times: list[tuple[float, float]]) -> np.ndarray:
    half = WINDOW / 2
    speech = sum(e - s + 2 * NEAR_WORD for s, e in times)
    step = max(STEP, speech / MAX_WINDOWS)
    grid = np.arange(min(half, duration / 2), max(duration - half, duration / 2) + 1e-6, step)
    spans = np.array(sorted(times)) + [-NEAR_WORD, NEAR_WORD]
    index = np.searchsorted(spans[:, 0], grid, side="right") - 1
    inside = (index >= 0) & (grid <= np.maximum.accumulate(spans[:, 1])[index.clip(0)])
    return grid[inside]


def _step(centres: np.ndarray) -> float:
    return float(np.median(np.diff(centres))) if len(centres) > 1 else STEP


def _embed(audio: np.ndarray, centres: np.ndarray) -> np.ndarray:
    import torch

    encoder = _encoder()
    from resemblyzer.audio import wav_to_mel_spectrogram  # the encoder's own features, imported with it

    mel = wav_to_mel_spectrogram(audio)
    frames = int(WINDOW * FRAMES_PER_SECOND)
    starts = np.round((centres - WINDOW / 2) * FRAMES_PER_SECOND).astype(int).clip(0)
    padded = np.pad(mel, ((0, frames), (0, 0)))
    out = []
    # One thread: the LSTM gains little from two, and two spinning threads slow to a crawl (8 s instead of
    # 0.8 s for 30 s of audio, measured) when the other core is busy, as it is during an ingest.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for at in range(0, len(starts), BATCH):
                batch = np.stack([padded[s:s + frames] for s in starts[at:at + BATCH]])
                out.append(encoder(torch.from_numpy(batch)).numpy())
    finally:
        torch.set_num_threads(threads)
    return np.concatenate(out)


@lru_cache(maxsize=1)
def _encoder():
    with warnings.catch_warnings():  # resemblyzer imports a scipy name deprecated since; nothing for a reader to do
        warnings.simplefilter("ignore", DeprecationWarning)
        from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def _groups(embeddings: np.ndarray, step: float, threshold: float) -> np.ndarray:
    """Agglomerative clustering of the windows' voices; voices heard too briefly join the nearest speaker.

    Resemblyzer's embeddings are non-negative and sit in a narrow cone, so they are centred on the recording's
    average voice first: what is left is how each window differs from the others."""
    from sklearn.cluster import AgglomerativeClustering

    centred = embeddings - embeddings.mean(axis=0)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True).clip(1e-9)
    groups = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine",
                                     linkage="average").fit_predict(centred)
    counts = np.bincount(groups)
    kept = [g for g in range(len(counts)) if counts[g] * step >= MIN_SPEAKER_SECONDS] or [int(counts.argmax())]
    voices = np.stack([centred[groups == g].mean(axis=0) for g in kept])
    voices /= np.linalg.norm(voices, axis=1, keepdims=True).clip(1e-9)
    return np.array(kept)[(centred @ voices.T).argmax(axis=1)]


def _smooth(groups: np.ndarray, step: float) -> np.ndarray:
    """A run of windows shorter than MIN_RUN_SECONDS after another speaker's takes that speaker."""
    groups = groups.copy()
    shortest = MIN_RUN_SECONDS / step
    begin = 0
    for index in range(1, len(groups) + 1):
        if index == len(groups) or groups[index] != groups[begin]:
            if begin and index - begin < shortest:
                groups[begin:index] = groups[begin - 1]
            begin = index
    return groups
