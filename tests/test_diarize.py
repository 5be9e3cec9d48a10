"""Speaker turns for recordings without a transcript: real audio, the real Whisper model and voice encoder, a real
store, and Claude's name proposals through the real `anthropic` client against the local Messages API stub."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from connectors import diarize, load_config, speaker_names, whisper
from connectors.base import ConnectorContext
from connectors.meetings import MeetingsConnector, Settings
from corpus.claude import Claude
from corpus.errors import ConfigError
from ingest.pipeline import ingest
from ingest.speaker_proposals import propose
from ingest.status import status
from server.search import Searcher
from store.filters import Filters
from tests.anthropic_stub import KEY, MessagesStub
from tests.conftest import load_all, shared, write_config

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not diarize.AVAILABLE, reason="resemblyzer is not installed")]
SOURCE = '[[sources]]\nname = "calls"\nkind = "meetings"\npath = "recordings"\n'


def turns(document) -> list[tuple[str, str]]:
    return [(b.people[0], b.text.split(": ", 1)[1]) for b in document.blocks]


def speaker_saying(document, words: str) -> str:
    (speaker,) = {p for p, text in turns(document) if words in text}
    return speaker


@pytest.fixture(scope="module")
def call(tmp_path_factory, embedder) -> Path:
    """pyannote's two-person phone call, ingested once; tests work on copies of the folder and its store."""
    root = tmp_path_factory.mktemp("call")
    (root / "recordings").mkdir()
    shutil.copy(shared("audio", "pyannote", "sample.wav"), root / "recordings" / "phone-call.wav")
    ingest(load_config(write_config(root, SOURCE)), embedder=embedder)
    return root


def copy_of(call: Path, tmp_path: Path) -> Path:
    shutil.copytree(call, tmp_path / "call")
    return tmp_path / "call"


def reopen(root: Path, source: str = SOURCE, extra: str = ""):
    config = load_config(write_config(root, source, extra))
    meetings = MeetingsConnector(config.sources[0], ConnectorContext(workdir=config.store_path))
    return config, meetings


def test_stereo_call_recording_is_split_by_channel(tmp_path):
    shutil.copy(shared("audio", "faster-whisper", "stereo_diarization.wav"), tmp_path / "call.wav")
    (document,) = load_all(MeetingsConnector(Settings(name="m", kind="meetings", path=tmp_path),
                                             ConnectorContext()))[0].values()
    assert {p for p, _ in turns(document)} == {"Speaker 1", "Speaker 2"}
    assert document.blocks[0].people == ("Speaker 1",)  # the left channel speaks first
    assert speaker_saying(document, "curtain") == "Speaker 1"  # only the left channel says the last words


def test_two_speakers_take_turns_are_named_and_found(call, tmp_path, embedder):
    root = copy_of(call, tmp_path)
    config, meetings = reopen(root)
    (document,) = load_all(meetings)[0].values()
    said = turns(document)
    assert {p for p, _ in said} == {"Speaker 1", "Speaker 2"}
    assert said[0][0] == "Speaker 1" and "hello" in said[0][1].lower()
    diane, sheila = speaker_saying(document, "Diane in New Jersey"), speaker_saying(document, "Sheila")
    assert (diane, sheila) == ("Speaker 1", "Speaker 2")
    assert speaker_saying(document, "Yankee") == sheila
    speakers = [p for p, _ in said]
    assert all(a != b for a, b in zip(speakers, speakers[1:], strict=False))  # one block per turn
    assert [(u.path, u.speakers) for u in status(config).unnamed_speakers] == [
        ("phone-call.wav", ["Speaker 1", "Speaker 2"])]

    transcribed, diarized = whisper.TOTALS.ran, diarize.TOTALS.ran
    (root / "recordings" / "phone-call.speakers.toml").write_text('"Speaker 1" = "Diane"\n"Speaker 2" = "Sheila"\n')
    named = ingest(config, embedder=embedder).sources["calls"]
    assert (named.updated, named.unchanged) == (1, 0)  # the names reload the meeting ...
    assert (whisper.TOTALS.ran, diarize.TOTALS.ran) == (transcribed, diarized)  # ... from the caches
    assert status(config).unnamed_speakers == []
    hits = Searcher(config, embedder).search("where are you from originally", limit=5,
                                             filters=Filters(people=["sheila"]))
    assert hits and all("Sheila" in h.people for h in hits)
    lines = [line for h in hits for line in h.text.splitlines()]
    assert any(line.startswith("Sheila: ") and "Chicago" in line for line in lines)
    assert not any(line.startswith("Speaker ") for line in lines)


def test_unchanged_audio_is_not_diarized_again_but_a_settings_change_is(call, tmp_path, embedder):
    root = copy_of(call, tmp_path)
    config = load_config(write_config(root, SOURCE))
    transcribed, diarized = whisper.TOTALS.ran, diarize.TOTALS.ran
    again = ingest(config, full=True, embedder=embedder).sources["calls"]
    assert again.added == 1
    assert (whisper.TOTALS.ran, diarize.TOTALS.ran) == (transcribed, diarized)
    assert len(list((root / "store" / "speakers").glob("*.json"))) == 1

    config = load_config(write_config(root, SOURCE + "speaker_threshold = 0.95\n"))
    changed = ingest(config, embedder=embedder).sources["calls"]
    assert changed.updated == 1
    assert whisper.TOTALS.ran == transcribed  # the words are the same: only who said them is redone
    assert diarize.TOTALS.ran == diarized + 1


def test_turning_diarization_off_gives_back_one_voice(call, tmp_path):
    root = copy_of(call, tmp_path)
    _, meetings = reopen(root, SOURCE + "diarize = false\n")
    assert meetings.diarizer is None and "word_timestamps" not in meetings.transcriber.options


def test_claude_proposes_names_that_wait_for_a_person(call, tmp_path):
    root = copy_of(call, tmp_path)

    def reply(body: dict) -> str:
        prompt = body["messages"][0]["content"]
        diane = re.search(r"^(Speaker \d+): [^\n]*This is Diane", prompt, re.M).group(1)
        return f'{{"{diane}": {{"name": "Diane", "evidence": "This is Diane in New Jersey."}}}}'

    with MessagesStub(reply) as stub:
        config, meetings = reopen(root, extra=f'[claude]\nbase_url = "{stub.url}"\nmax_retries = 0\n')
        claude = Claude(config.claude, environ={"ANTHROPIC_API_KEY": KEY})
        transcribed = whisper.TOTALS.ran
        (proposal,) = propose(config, claude)
        assert propose(config, claude) == []  # proposed once: not written twice
    assert whisper.TOTALS.ran == transcribed
    assert proposal.path == "phone-call.wav" and proposal.written == {"Speaker 1": "Diane"}
    assert "Labels to name: Speaker 1, Speaker 2" in stub.requests[0]["messages"][0]["content"]
    sidecar = root / "recordings" / "phone-call.speakers.toml"
    assert '# "Speaker 1" = "Diane"  # "This is Diane in New Jersey."' in sidecar.read_text()
    (document,) = load_all(meetings)[0].values()
    assert "Diane" not in {p for b in document.blocks for p in b.people}  # not applied until confirmed

    sidecar.write_text(sidecar.read_text().replace('# "Speaker 1"', '"Speaker 1"'))
    assert speaker_names.read(sidecar) == {"Speaker 1": "Diane"}
    (document,) = load_all(reopen(root)[1])[0].values()
    assert speaker_saying(document, "Diane in New Jersey") == "Diane"


def test_bad_speaker_names_get_one_line_naming_the_file_or_key(tmp_path):
    shutil.copy(shared("audio", "faster-whisper", "stereo_diarization.wav"), tmp_path / "call.wav")
    (tmp_path / "call.speakers.toml").write_text('"Speaker 1" = 3\n')
    _, failed = load_all(MeetingsConnector(Settings(name="m", kind="meetings", path=tmp_path), ConnectorContext()))
    assert failed == {"call.wav": "call.speakers.toml: the name of 'Speaker 1' must be a non-empty string"}
    (tmp_path / "recordings").mkdir()
    source = SOURCE + 'speakers = {"call.wav" = {"Ann" = "Ann Lee"}}\n'
    with pytest.raises(ConfigError, match=r"corpus.toml:\d+: sources\[0\].speakers: .*'Ann' is not a speaker label"):
        load_config(write_config(tmp_path, source))
