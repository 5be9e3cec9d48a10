"""The meetings connector on real audio with the real packaged Whisper model, and end to end into a real store."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from bench.wer import word_error_rate, words
from connectors import load_config, whisper
from connectors.base import ConnectorContext, file_digest
from connectors.meetings import MeetingsConnector, Settings
from connectors.whisper import Transcriber
from corpus.errors import ConfigError, CorpusError
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.search import Searcher
from store.filters import Filters
from tests.conftest import load_all, shared, write_config

pytestmark = pytest.mark.slow  # faster-whisper transcribes real recordings


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber()  # the packaged tiny.en, no cache: every call really transcribes


def reference(clip: str) -> str:
    return json.loads(shared("audio", "references.json").read_text())[clip]["text"]


def transcribe(transcriber: Transcriber, path: Path) -> str:
    return " ".join(s.text for s in transcriber.transcribe(path, file_digest(path), path.name).segments)


def connector(folder: Path, workdir: Path | None = None, **options) -> MeetingsConnector:
    return MeetingsConnector(Settings(name="meetings", kind="meetings", path=folder, **options),
                             ConnectorContext(workdir=workdir))




def test_jfk_is_near_perfect(transcriber):
    text = transcribe(transcriber, shared("audio", "faster-whisper", "jfk.flac"))  # 44.1 kHz stereo FLAC
    wer = word_error_rate(reference("faster-whisper/jfk.flac"), text)
    print(f"\njfk.flac WER {wer:.1%}: {text}")
    assert wer <= 0.10


def test_three_sample_rates_give_the_same_words(transcriber):
    clips = ["LDC93S1.wav", "LDC93S1_pcms16le_1_8000.wav", "LDC93S1_pcms16le_2_44100.wav"]  # 16k, 8k, 44.1k stereo
    heard = [words(transcribe(transcriber, shared("audio", "deepspeech-smoke", clip))) for clip in clips]
    wer = word_error_rate(reference("deepspeech-smoke/LDC93S1.wav"), " ".join(heard[0]))
    print(f"\nLDC93S1 WER {wer:.1%}: {' '.join(heard[0])}")
    assert heard[0] == heard[1] == heard[2]
    assert wer < 0.5 and heard[0][:3] == ["she", "had", "your"]


def test_two_speaker_call_against_its_human_transcript(transcriber):
    path = shared("audio", "pyannote", "sample.wav")
    stm = shared("audio", "pyannote", "sample.stm").read_text().splitlines()
    human = " ".join(line.split(maxsplit=5)[5] for line in stm)
    segments = transcriber.transcribe(path, file_digest(path), path.name).segments
    text = " ".join(s.text for s in segments)
    wer = word_error_rate(human, text)
    print(f"\npyannote/sample.wav WER against sample.stm {wer:.1%}: {text}")
    assert wer < 0.35
    # VAD: the call's first six seconds are silence (the human transcript starts at 6.68 s)
    assert segments[0].start >= 5.0 and segments[-1].end <= 30.5


def test_silence_yields_no_invented_text(tmp_path):
    shutil.copy(shared("audio", "pyannote", "empty.wav"), tmp_path / "empty.wav")
    loaded, failed = load_all(connector(tmp_path))
    assert loaded == {}
    assert failed["empty.wav"].startswith("no speech found")


def video_with_speech(source: Path | None, target: Path) -> None:
    """``source``'s audio as AAC in an MP4 next to a small black video track, as a screen recording would be;
    no audio track at all when ``source`` is None."""
    with av.open(str(target), "w") as out:
        audio = out.add_stream("aac", rate=44100) if source else None
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        black = np.zeros((48, 64, 3), dtype=np.uint8)
        for index in range(110):  # 11 s at 10 frames/s
            frame = av.VideoFrame.from_ndarray(black, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if audio is None:
            return
        with av.open(str(source)) as audio_in:
            for frame in audio_in.decode(audio=0):
                frame.pts = None
                out.mux(audio.encode(frame))
        out.mux(audio.encode())


def test_audio_inside_a_video_container(tmp_path):
    video_with_speech(shared("audio", "faster-whisper", "jfk.flac"), tmp_path / "address.mp4")
    with av.open(str(tmp_path / "address.mp4")) as check:
        assert check.streams.video and check.streams.audio
    loaded, failed = load_all(connector(tmp_path))
    assert failed == {}
    document = loaded["address.mp4"]
    text = " ".join(b.text for b in document.blocks)
    assert word_error_rate(reference("faster-whisper/jfk.flac"), text) <= 0.10
    assert document.blocks[0].citation.uri.endswith("address.mp4#t=00:00")
    assert document.blocks[0].citation.label == "meetings/address.mp4 at 00:00"


def test_broken_recordings_each_get_one_line_and_the_rest_is_read(tmp_path):
    video_with_speech(shared("audio", "faster-whisper", "jfk.flac"), tmp_path / "whole.mp4")
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: lost
    (tmp_path / "notes.mp3").write_text("this is a text file with an audio file's name\n" * 50)
    (tmp_path / "zero.wav").write_bytes(b"")
    video_with_speech(None, tmp_path / "silent-film.mp4")
    loaded, failed = load_all(connector(tmp_path))
    assert set(loaded) == {"whole.mp4"}
    assert failed["truncated.mp4"].startswith("cannot decode audio: InvalidDataError")
    assert failed["notes.mp3"].startswith("cannot decode audio: InvalidDataError")
    assert failed["zero.wav"] == "empty file"
    assert failed["silent-film.mp4"] == "no audio track (a video without sound?)"
    assert all("\n" not in reason for reason in failed.values())


def test_a_sidecar_transcript_wins_over_transcribing(tmp_path):
    shutil.copy(shared("audio", "faster-whisper", "jfk.flac"), tmp_path / "inaugural.flac")
    (tmp_path / "inaugural.vtt").write_text(
        "WEBVTT\n\n00:00:00.000 --> 00:00:11.000\n<v John F. Kennedy>Ask not what your country can do for you.</v>\n")
    before = whisper.TOTALS.ran
    meetings = connector(tmp_path)
    assert [i.native_id for i in meetings.items()] == ["inaugural.flac"]  # one document per meeting
    (document,) = load_all(meetings)[0].values()
    assert whisper.TOTALS.ran == before
    (block,) = document.blocks
    assert block.text == "John F. Kennedy: Ask not what your country can do for you."
    assert block.people == ("John F. Kennedy",)
    assert block.citation.uri.endswith("inaugural.flac#t=00:00")  # the recording is what a person plays


def test_notes_beside_a_recording_do_not_stop_its_transcription(tmp_path):
    for name in ("LDC93S1.wav", "LDC93S1.txt"):  # the .txt is the clip's human reference: not a transcript
        shutil.copy(shared("audio", "deepspeech-smoke", name), tmp_path / name)
    noted: list[str] = []
    meetings = MeetingsConnector(Settings(name="meetings", kind="meetings", path=tmp_path),
                                 ConnectorContext(note=noted.append))
    loaded, failed = load_all(meetings)
    assert failed == {} and list(loaded) == ["LDC93S1.wav"]
    said = loaded["LDC93S1.wav"].blocks[0].text.split(": ", 1)[-1]  # after "Speaker 1: " when diarized
    assert words(said)[:3] == ["she", "had", "your"]
    assert any("LDC93S1.txt beside it is not used (not a transcript" in line for line in noted)


def test_the_transcript_cache_survives_and_a_broken_entry_is_redone(tmp_path):
    path = shared("audio", "deepspeech-smoke", "LDC93S1.wav")
    first = Transcriber(cache_dir=tmp_path)
    text = transcribe(first, path)
    (entry,) = tmp_path.glob("*.json")
    assert entry.name.startswith(file_digest(path)) and not list(tmp_path.glob(".*tmp"))
    again = Transcriber(cache_dir=tmp_path)
    assert transcribe(again, path) == text and (again.stats.ran, again.stats.cached) == (0, 1)
    entry.write_text('{"segments": [[0, 1')  # a torn write from some other tool
    assert transcribe(again, path) == text and again.stats.ran == 1
    other = Transcriber(cache_dir=tmp_path, beam_size=1)
    assert other.key != first.key


def test_meetings_end_to_end_search_people_and_reingest(tmp_path, embedder):
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(shared("audio", "faster-whisper", "jfk.flac"), folder / "inaugural.flac")
    shutil.copy(shared("audio", "pyannote", "sample.wav"), folder / "phone-call.wav")
    shutil.copy(shared("audio", "pyannote", "empty.wav"), folder / "silence.wav")
    shutil.copy(shared("transcripts", "powershell-community-call", "20240718_ChatTranscript.md"), folder)
    shutil.copy(shared("transcripts", "powershell-community-call", "20201217_ChatTranscript.txt"), folder)
    source = '[[sources]]\nname = "meetings"\nkind = "meetings"\npath = "recordings"\n'
    config = load_config(write_config(tmp_path, source))

    before = whisper.TOTALS.ran
    log = io.StringIO()
    first = ingest(config, embedder=embedder, progress=Progress(stream=log)).sources["meetings"]
    assert (first.added, first.failed) == (4, 1)  # the chat log is a document of its meeting
    assert "meetings: phone-call.wav: transcribed 0.5 min of audio in" in log.getvalue()
    assert "x real time" in log.getvalue()
    failures = dict(first.failures)
    assert failures["silence.wav"].startswith("no speech found")
    assert whisper.TOTALS.ran - before == 3  # the two with speech and the silent one
    assert len(list((tmp_path / "store" / "transcripts").glob("*.json"))) == 3

    searcher = Searcher(config, embedder)
    (hit, *_) = searcher.search("ask not what your country can do for you", limit=3)
    assert hit.kind == "meetings" and "inaugural.flac#t=00:00" in hit.citation
    assert hit.citation_label == "meetings/inaugural.flac at 00:00"
    helmick = Filters(people=["jason helmick"])  # the filter ignores case
    summer = searcher.search("summer hours, shorter community calls", limit=5, filters=helmick)
    assert summer and all("Jason Helmick" in h.people for h in summer)
    assert any("summer" in h.text.lower() for h in summer)
    assert "20240718_ChatTranscript.md" in summer[0].citation and summer[0].date == "2024-07-18"
    summer = [h for h in summer if "20240718_ChatTranscript.md" in h.citation]  # the call that spoke of it
    assert len(summer) >= 3 and all("#t=" in p.citation for h in summer for p in (h, *h.more))
    # every turn in a hit says who spoke, also where a long turn continues into the next chunk
    assert all(any(line.startswith(f"{p}: ") for p in h.people) for h in summer for line in h.text.splitlines())
    with pytest.raises(CorpusError, match="no one called 'Diane'"):  # nobody is named in a recording
        searcher.search("summer hours", filters=Filters(people=["Diane"]))

    # fetch a stretch of the meeting by time: the chunks overlapping it, cited at their start
    minutes, seconds = summer[0].citation.rsplit("#t=", 1)[1].split(":")
    at = int(minutes) * 60 + int(seconds)
    whole = searcher.fetch(summer[0].doc_id)
    stretch = searcher.fetch(summer[0].doc_id, start=at, end=at + 20)
    assert summer[0].text.splitlines()[0] in stretch.text and len(stretch.text) < len(whole.text)
    begins = stretch.citation.rsplit("#t=", 1)[1].split(":")
    assert int(begins[0]) * 60 + int(begins[1]) <= at  # cited where the stretch starts
    with pytest.raises(CorpusError, match="nothing in .* in that time range"):
        searcher.fetch(summer[0].doc_id, start=10 * 3600)
    with pytest.raises(CorpusError, match="pass its doc_id"):
        searcher.fetch(summer[0].id, start=at)

    before = whisper.TOTALS.ran
    again = ingest(config, embedder=embedder).sources["meetings"]
    assert (again.added, again.updated, again.unchanged, again.failed) == (0, 0, 4, 1)
    rebuilt = ingest(config, full=True, embedder=embedder).sources["meetings"]
    assert rebuilt.added == 4
    assert whisper.TOTALS.ran == before  # unchanged audio is never transcribed twice, even by --full

    config = load_config(write_config(tmp_path, source + "beam_size = 2\n"))
    changed = ingest(config, embedder=embedder).sources["meetings"]
    assert (changed.updated, changed.unchanged) == (4, 0)  # a changed setting: the source is read again
    assert whisper.TOTALS.ran - before == 3  # but only the recordings are transcribed again


def test_meeting_options_are_checked_like_every_other_key(tmp_path):
    (tmp_path / "recordings").mkdir()
    source = '[[sources]]\nname = "m"\nkind = "meetings"\npath = "recordings"\nwhisper_modle = "tiny.en"\n'
    with pytest.raises(ConfigError, match=r"corpus.toml:8: sources\[0\].whisper_modle: unknown key"):
        load_config(write_config(tmp_path, source))


def test_a_model_that_is_not_here_is_a_config_error_not_a_download(no_network):
    with pytest.raises(ConfigError, match="whisper_model 'large-v3' cannot be loaded"):
        _ = Transcriber(model="large-v3").model
    assert no_network == []


def test_whisper_inventions_are_dropped_and_speech_is_kept():
    from faster_whisper.transcribe import Segment as Decoded

    def decoded(text: str, no_speech: float = 0.05, ratio: float = 1.2) -> Decoded:
        return Decoded(0, 0, 0.0, 1.0, text, [], -0.3, ratio, no_speech, None, 0.0)

    assert not whisper._keep(decoded(" [Music]")) and not whisper._keep(decoded(" (applause) ♪"))
    assert not whisper._keep(decoded(" you", no_speech=0.7)) and whisper._keep(decoded(" you", no_speech=0.05))
    assert not whisper._keep(decoded(" Thank you.", no_speech=0.5)) and whisper._keep(decoded(" Thank you all."))
    assert not whisper._keep(decoded(" the the the the the the the the", ratio=3.1))
    said = [whisper.Segment(0, 1, "A."), whisper.Segment(1, 2, "a")]
    assert whisper._loops(said, " A.") and not whisper._loops(said[:1], " A.")
