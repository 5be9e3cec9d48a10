"""Transcription benchmark: speed and accuracy of the meetings connector on the real clips in ../shared/data/audio.

For each clip it times two paths on the same audio, with the same model object and the same options:

- ours: ``MeetingsConnector.load`` on the file with an empty transcript cache, i.e. hashing, decoding,
  faster-whisper, the hallucination filters, writing the cache entry and building the document's blocks;
- bare: ``WhisperModel.transcribe(path, **options)`` with every segment consumed, nothing else.

Our overhead is ours/bare - 1 (target: under 10%). Runs alternate between the two paths and the median of
``--repeats`` is kept, so load from other processes falls on both alike. Whisper's temperature fallback samples
at random; both paths seed the generator the same way, so they decode the same passes. WER is against the
reference in references.json (human where marked; for stereo_diarization the left then the right channel's
sentence; for apollo11 whisper-large's output, approximate).

    python bench/transcription.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "data" / "audio"
CLIPS = [
    "faster-whisper/jfk.flac",
    "deepspeech-smoke/LDC93S1.wav",
    "deepspeech-smoke/LDC93S1_pcms16le_1_8000.wav",
    "deepspeech-smoke/LDC93S1_pcms16le_2_44100.wav",
    "pyannote/sample.wav",
    "pyannote/dev00.wav",
    "faster-whisper/stereo_diarization.wav",
    "whisper-timestamped/apollo11.mp3",
]


def reference(clip: str, references: dict) -> tuple[str | None, str]:
    """The reference text and how far to trust it."""
    entry = references.get(clip, {})
    if clip == "pyannote/sample.wav":
        stm = (AUDIO / "pyannote" / "sample.stm").read_text().splitlines()
        return " ".join(line.split(maxsplit=5)[5] for line in stm), "human (STM)"
    if clip == "faster-whisper/stereo_diarization.wav":
        return f"{entry['channels']['left']} {entry['channels']['right']}", "test assertion, L+R"
    if clip == "whisper-timestamped/apollo11.mp3":
        words = json.loads((AUDIO / "whisper-timestamped" / "apollo11.mp3.whisper-large.words.json").read_text())
        return words["text"], "whisper-large output"
    return entry.get("text"), entry.get("kind", "none") if entry.get("text") else "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))  # the script's own folder, bench/, is what Python put on the path
    import corpus  # noqa: F401  (offline environment before the model loads)
    from bench.wer import word_error_rate
    from connectors.base import ConnectorContext
    from connectors.meetings import MeetingsConnector, Settings
    from connectors.whisper import seed_sampling
    from corpus.errors import ItemError
    from corpus.records import Item

    references = json.loads((AUDIO / "references.json").read_text())
    clips = [c for c in CLIPS if (AUDIO / c).exists()]
    workdir = Path(tempfile.mkdtemp(prefix="bench-transcription-"))

    def ours(path: Path, run: int) -> tuple[float, str]:
        # a fresh cache folder per run: the cache must miss, or this would time a JSON read
        meetings = MeetingsConnector(Settings(name="bench", kind="meetings", path=path.parent),
                                     ConnectorContext(workdir=workdir / str(run)))
        stat = path.stat()
        item = Item(path.name, f"{stat.st_size}:{stat.st_mtime_ns}", path)
        started = time.perf_counter()
        try:
            text = " ".join(b.text for b in meetings.load(item).blocks)
        except ItemError:
            text = ""
        return time.perf_counter() - started, text

    probe = MeetingsConnector(Settings(name="bench", kind="meetings", path=AUDIO), ConnectorContext())
    model, options = probe.transcriber.model, probe.transcriber.options

    def bare(path: Path) -> tuple[float, float]:
        seed_sampling()  # as Transcriber does: both paths sample the same fallback decodes
        started = time.perf_counter()
        segments, info = model.transcribe(str(path), **options)
        for _ in segments:
            pass
        return time.perf_counter() - started, info.duration

    bare(AUDIO / clips[0])  # warm-up: first-call allocations are nobody's overhead
    print(f"model {probe.settings.whisper_model} ({probe.transcriber.compute_type}), options {options}, "
          f"{args.repeats} runs per path, median kept\n")
    header = f"{'clip':<46} {'audio s':>8} {'ours s':>7} {'RTF':>6} {'bare s':>7} {'overhead':>9} {'WER':>7}  reference"
    print(header)
    print("-" * len(header))
    run = 0
    totals = {"audio": 0.0, "ours": 0.0, "bare": 0.0}
    for clip in clips:
        path = AUDIO / clip
        ours_times, bare_times = [], []
        for _ in range(args.repeats):
            run += 1
            seconds, text = ours(path, run)
            ours_times.append(seconds)
            seconds, duration = bare(path)
            bare_times.append(seconds)
        mine, theirs = statistics.median(ours_times), statistics.median(bare_times)
        ref, kind = reference(clip, references)
        wer = f"{word_error_rate(ref, text):.1%}" if ref else "-"
        print(f"{clip:<46} {duration:>8.1f} {mine:>7.2f} {mine / duration:>6.3f} {theirs:>7.2f} "
              f"{mine / theirs - 1:>+9.1%} {wer:>7}  {kind}")
        totals["audio"] += duration
        totals["ours"] += mine
        totals["bare"] += theirs
    print("-" * len(header))
    print(f"{'total':<46} {totals['audio']:>8.1f} {totals['ours']:>7.2f} {totals['ours'] / totals['audio']:>6.3f} "
          f"{totals['bare']:>7.2f} {totals['ours'] / totals['bare'] - 1:>+9.1%}")


if __name__ == "__main__":
    main()
