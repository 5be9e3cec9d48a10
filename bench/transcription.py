"""Transcription benchmark: speed and accuracy of the meetings connector on the real clips in ../shared/data/audio.

For each clip it times two paths on the same audio, with the same model object and the same options:

- ours: ``MeetingsConnector.load`` on the file with an empty transcript cache, i.e. hashing, decoding,
  faster-whisper, the hallucination filters, writing the cache entry and building the document's blocks;
- bare: ``WhisperModel.transcribe(path, **options)`` with every segment consumed, nothing else.

Our overhead (target: under 10%) is measured inside the same run: the time ``load`` spends outside
faster-whisper (its ``transcribe`` call and each step of its segment generator are timed) over the time inside
it. Comparing ours with bare is noisier than that: Whisper's temperature fallback samples at random
(ctranslate2's seed does not reach its worker threads), so two runs of the same clip may decode a different
number of passes even when the words come out the same; "vs bare" is printed too, and a clip whose words
changed between runs is marked ``*``. Runs alternate between the paths and the median of ``--repeats`` is kept.
WER is against the reference in references.json (human where marked; for stereo_diarization the left then the
right channel's sentence; for apollo11 whisper-large's output, approximate).

    python bench/transcription.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
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
    from corpus.errors import ItemError
    from corpus.records import Item

    references = json.loads((AUDIO / "references.json").read_text())
    clips = [c for c in CLIPS if (AUDIO / c).exists()]
    workdir = Path(tempfile.mkdtemp(prefix="bench-transcription-"))

    # Transcription alone: speaker turns (and the word timing they need) are bench/diarization.py's.
    probe = MeetingsConnector(Settings(name="bench", kind="meetings", path=AUDIO, diarize=False), ConnectorContext())
    model, options = probe.transcriber.model, probe.transcriber.options  # the very object load() uses
    transcribe = model.transcribe
    inside = [0.0]  # seconds spent in faster-whisper during the current ours() run

    def timed(*args, **kwargs):
        started = time.perf_counter()
        segments, info = transcribe(*args, **kwargs)
        inside[0] += time.perf_counter() - started

        def steps():
            iterator = iter(segments)
            while True:
                started = time.perf_counter()
                segment = next(iterator, None)
                inside[0] += time.perf_counter() - started
                if segment is None:
                    return
                yield segment

        return steps(), info

    model.transcribe = timed

    def ours(path: Path, run: int) -> tuple[float, float, str]:
        # a fresh cache folder per run: the cache must miss, or this would time a JSON read
        meetings = MeetingsConnector(Settings(name="bench", kind="meetings", path=path.parent, diarize=False),
                                     ConnectorContext(workdir=workdir / str(run)))
        stat = path.stat()
        item = Item(path.name, f"{stat.st_size}:{stat.st_mtime_ns}", path)
        inside[0] = 0.0
        started = time.perf_counter()
        try:
            text = " ".join(b.text for b in meetings.load(item).blocks)
        except ItemError:
            text = ""
        return time.perf_counter() - started, inside[0], text

    def bare(path: Path) -> tuple[float, float, str]:
        started = time.perf_counter()
        segments, info = transcribe(str(path), **options)
        text = " ".join(s.text for s in segments)
        return time.perf_counter() - started, info.duration, text

    bare(AUDIO / clips[0])  # warm-up: first-call allocations are nobody's overhead
    print(f"model {probe.settings.whisper_model} ({probe.transcriber.compute_type}), options {options}, "
          f"{args.repeats} runs per path, median kept\n")
    header = (f"{'clip':<46} {'audio s':>7} {'ours s':>7} {'RTF':>6} {'whisper':>8} {'overhead':>9} "
              f"{'bare s':>7} {'vs bare':>8} {'WER':>7}  reference")
    print(header)
    print("-" * len(header))
    run = 0
    totals = [0.0, 0.0, 0.0, 0.0]  # audio, ours, faster-whisper inside ours, bare seconds
    for clip in clips:
        path = AUDIO / clip
        ours_times, inside_times, bare_times, heard = [], [], [], set()
        for _ in range(args.repeats):
            run += 1
            seconds, whispering, text = ours(path, run)
            ours_times.append(seconds)
            inside_times.append(whispering)
            seconds, duration, bare_text = bare(path)
            bare_times.append(seconds)
            heard.add((text, bare_text))
        mine, whispering, theirs = (statistics.median(t) for t in (ours_times, inside_times, bare_times))
        overhead = statistics.median(o / i - 1 for o, i in zip(ours_times, inside_times, strict=True))
        ref, kind = reference(clip, references)
        wer = f"{word_error_rate(ref, text):.1%}" if ref else "-"
        print(f"{clip:<46} {duration:>7.1f} {mine:>7.2f} {mine / duration:>6.3f} {whispering:>8.2f} "
              f"{overhead:>+9.2%} {theirs:>7.2f} {mine / theirs - 1:>+8.1%}{' ' if len(heard) == 1 else '*'}"
              f"{wer:>7}  {kind}")
        for index, value in enumerate((duration, mine, whispering, theirs)):
            totals[index] += value
    print("-" * len(header))
    audio, mine, whispering, theirs = totals
    print(f"{'total':<46} {audio:>7.1f} {mine:>7.2f} {mine / audio:>6.3f} {whispering:>8.2f} "
          f"{mine / whispering - 1:>+9.2%} {theirs:>7.2f} {mine / theirs - 1:>+8.1%}")
    shutil.rmtree(workdir)
    print("\nwhisper: seconds inside faster-whisper during ours; overhead: ours / whisper - 1, same run;"
          "\n* the words differed between runs (temperature fallback sampled differently): ours and bare did "
          "different work")

if __name__ == "__main__":
    main()
