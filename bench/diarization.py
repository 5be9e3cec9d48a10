"""Diarization benchmark: who-spoke-when error and the time speaker turns add to transcription.

For each clip it loads the recording through ``MeetingsConnector.load`` twice, each with an empty cache:
with ``diarize = false`` (transcription alone) and with the default ``diarize = true`` (Whisper's word
timestamps plus connectors/diarize.py). "extra" is the difference over transcription alone, per audio minute
and as a share of it (target: at most 30%); "diarize" is the diarization step alone (the rest of the extra is
Whisper timing words, and run-to-run noise: its temperature fallback samples at random). The one-time start
(imports, loading the encoder) is paid once per ingest and shown on its own line.

DER is pyannote.metrics' DiarizationErrorRate against the human reference RTTM, with no collar and overlap
scored (the strict form), and with a 0.25 s collar (the NIST form). The hypothesis is the meeting's turns as
blocks hold them, from the first to the last word of each; a gap under 1 s between two turns is closed at its
middle, since Whisper's words end before the voice does. dev00's reference also has rows for dev01, whose audio
is not here; only dev00's are used. stereo_diarization.wav has no RTTM: the speakers found are shown.

The clustering threshold and minimum speaker time in connectors/diarize.py were tuned on these same two clips
(the only references here), so the DER below is not a held-out figure.

    python bench/diarization.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "data" / "audio"
CLIPS = [  # clip, reference RTTM, its uri there
    ("pyannote/sample.wav", "pyannote/sample.rttm", "sample"),
    ("pyannote/dev00.wav", "pyannote/debug.development.rttm", "dev00"),
    ("faster-whisper/stereo_diarization.wav", None, None),
]
GAP_CLOSED = 1.0


def reference(rttm: Path, uri: str):
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for line in rttm.read_text().splitlines():
        fields = line.split()
        if len(fields) > 7 and fields[0] == "SPEAKER" and fields[1] == uri:
            start = float(fields[3])
            annotation[Segment(start, start + float(fields[4]))] = fields[7]
    return annotation


def hypothesis(blocks, uri: str):
    """The document's turns as an annotation, gaps under GAP_CLOSED closed at their middle."""
    from pyannote.core import Annotation, Segment

    turns = [(b.locator.start, b.locator.end, b.people[0]) for b in blocks if b.people]
    annotation = Annotation(uri=uri)
    for index, (start, end, speaker) in enumerate(turns):
        if index and start - turns[index - 1][1] < GAP_CLOSED:
            start = (start + turns[index - 1][1]) / 2
        if index + 1 < len(turns) and turns[index + 1][0] - end < GAP_CLOSED:
            end = (end + turns[index + 1][0]) / 2
        annotation[Segment(start, max(end, start + 0.01))] = speaker
    return annotation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import corpus  # noqa: F401  (offline environment before the models load)
    from connectors import diarize
    from connectors.base import ConnectorContext
    from connectors.meetings import MeetingsConnector, Settings
    from corpus.records import Item

    workdir = Path(tempfile.mkdtemp(prefix="bench-diarization-"))
    import numpy as np
    from faster_whisper.audio import decode_audio
    from pyannote.metrics.diarization import DiarizationErrorRate
    runs = [0]

    def load(path: Path, diarized: bool) -> tuple[float, float, object]:
        runs[0] += 1
        meetings = MeetingsConnector(Settings(name="bench", kind="meetings", path=path.parent, diarize=diarized),
                                     ConnectorContext(workdir=workdir / str(runs[0])))
        stat = path.stat()
        started = time.perf_counter()
        document = meetings.load(Item(path.name, f"{stat.st_size}:{stat.st_mtime_ns}", path))
        wall = time.perf_counter() - started
        return wall, meetings.diarizer.stats.wall_seconds if meetings.diarizer else 0.0, document

    clips = [c for c in CLIPS if (AUDIO / c[0]).exists()]
    started = time.perf_counter()
    load(AUDIO / clips[0][0], False)  # Whisper's own start
    whisper_start = time.perf_counter() - started
    started = time.perf_counter()
    diarize._encoder()
    diarize._cluster(np.zeros(diarize.SAMPLE_RATE * 4, "float32"), [(0.5, 1.0), (2.5, 3.0)])
    print(f"one-time start per ingest: diarization {time.perf_counter() - started:.1f} s (imports, encoder, "
          f"feature code), Whisper {whisper_start:.1f} s (with a first clip)\n")
    header = (f"{'clip':<40} {'audio s':>7} {'alone s':>8} {'diarized s':>10} {'diarize s':>9} {'extra s/min':>11} "
              f"{'extra':>7} {'speakers':>8} {'ref':>3} {'DER':>7} {'DER.25':>7} {'miss':>6} {'f.a.':>6} {'conf':>6}")
    print(header)
    print("-" * len(header))
    totals = [0.0, 0.0, 0.0, 0.0]
    for clip, rttm, uri in clips:
        path = AUDIO / clip
        alone, diarized, step = [], [], []
        for _ in range(args.repeats):
            alone.append(load(path, False)[0])
            wall, diarizing, document = load(path, True)
            diarized.append(wall)
            step.append(diarizing)
        audio = len(decode_audio(str(path))) / diarize.SAMPLE_RATE
        mine, theirs, own = (statistics.median(t) for t in (diarized, alone, step))
        speakers = len({p for b in document.blocks for p in b.people})
        line = (f"{clip:<40} {audio:>7.1f} {theirs:>8.2f} {mine:>10.2f} {own:>9.2f} "
                f"{(mine - theirs) / audio * 60:>11.2f} {(mine - theirs) / theirs:>+7.1%} {speakers:>8}")
        for index, value in enumerate((audio, theirs, mine, own)):
            totals[index] += value
        if rttm:
            truth = reference(AUDIO / rttm, uri)
            guess = hypothesis(document.blocks, uri)
            strict = DiarizationErrorRate(collar=0.0)(truth, guess, detailed=True)
            total = strict["total"]
            nist = DiarizationErrorRate(collar=0.25)(truth, guess)
            line += (f" {len(truth.labels()):>3} {strict['diarization error rate']:>7.1%} {nist:>7.1%} "
                     f"{strict['missed detection'] / total:>6.1%} {strict['false alarm'] / total:>6.1%} "
                     f"{strict['confusion'] / total:>6.1%}")
        print(line)
    print("-" * len(header))
    audio, theirs, mine, own = totals
    print(f"{'total':<40} {audio:>7.1f} {theirs:>8.2f} {mine:>10.2f} {own:>9.2f} "
          f"{(mine - theirs) / audio * 60:>11.2f} {(mine - theirs) / theirs:>+7.1%}  diarize step alone: "
          f"{own / theirs:.1%} of transcription")
    shutil.rmtree(workdir)
    print(f"\n{args.repeats} run(s) per path, median kept. DER: no collar, overlap scored; DER.25: 0.25 s collar. "
          "miss, f.a., conf: parts of the strict DER.")


if __name__ == "__main__":
    main()
