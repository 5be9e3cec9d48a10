"""Config errors that teach: every problem at once, each with its line, and the key or kind that was meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from connectors import REGISTRY, USER_KINDS, load_config, settings_model
from corpus.config import Config
from corpus.errors import ConfigError


def _problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "docs").mkdir(exist_ok=True)
    path = tmp_path / "corpus.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert all(line.startswith(f"{path}:") for line in lines), lines
    return [line.removeprefix(f"{path}:") for line in lines]


def test_a_misspelt_key_is_named_with_the_key_it_meant_and_nothing_else(tmp_path):
    problems = _problems(tmp_path, '[[sources]]\nname = "h"\nkind = "docs"\npth = "docs"\n')
    assert problems == ["4: sources[0].pth: unknown key `pth` (did you mean `path`?)"]


def test_a_misspelt_section_has_its_line_and_a_suggestion(tmp_path):
    problems = _problems(tmp_path, '[corpus]\npath = "store"\n\n[embeding]\nmodel = "x"\n')
    assert problems == ["4: embeding: unknown section `[embeding]` (did you mean `[embedding]`?)"]


def test_a_misspelt_array_of_tables_is_named_as_written(tmp_path):
    problems = _problems(tmp_path, '[server]\nport = 8000\n\n[[server.tokns]]\nname = "a"\nenv = "A"\n')
    assert problems == ["4: server.tokns: unknown section `[[server.tokns]]` (did you mean `[[server.tokens]]`?)"]


def test_a_misspelt_key_in_an_array_of_tables(tmp_path):
    problems = _problems(tmp_path, '[[server.tokens]]\nname = "a"\nenv = "A"\n\n[[server.tokens]]\nname = "b"\n'
                                   'evn = "B"\n')
    assert problems == ["7: server.tokens[1].evn: unknown key `evn` (did you mean `env`?)"]


def test_a_key_in_the_wrong_section_is_sent_to_its_own(tmp_path):
    problems = _problems(tmp_path, '[corpus]\npath = "store"\nmax_text_mb = 80\n\n[server]\nmodel = "x"\n')
    assert problems == ["3: corpus.max_text_mb: unknown key `max_text_mb` (it belongs in `[ingest]`)",
                        "6: server.model: unknown key `model` (it belongs in `[claude]` or `[embedding]`)"]


def test_a_misspelt_kind_suggests_a_user_kind(tmp_path):
    problems = _problems(tmp_path, '[[sources]]\nname = "s"\nkind = "slak"\npath = "docs"\n')
    assert problems == ["3: sources[0].kind: unknown kind `slak` (did you mean `slack`?); known kinds: "
                        "docs, meetings, slack"]


def test_the_internal_beir_kind_is_never_offered(tmp_path):
    assert "beir" in REGISTRY and "beir" not in USER_KINDS  # `corpus eval` still writes it in its own config
    (problem,) = _problems(tmp_path, '[[sources]]\nname = "b"\nkind = "bier"\npath = "docs"\n')
    assert "beir" not in problem
    assert problem == "3: sources[0].kind: unknown kind `bier`; known kinds: docs, meetings, slack"


def test_a_missing_kind_lists_the_kinds(tmp_path):
    problems = _problems(tmp_path, '[[sources]]\nname = "b"\npath = "docs"\n')
    assert problems == ["1: sources[0].kind: missing; give one of the kinds: docs, meetings, slack"]


def test_every_problem_is_reported_at_once_in_file_order(tmp_path):
    problems = _problems(tmp_path, """\
[corpus]
path = "store"

[embeding]
model = "x"

[server]
port = "high"

[[sources]]
name = "h"
kind = "docs"
pth = "docs"
exclud = ["drafts"]

[[sources]]
name = "s"
kind = "dcos"
path = "docs"

[[sources]]
name = "m"
kind = "docs"
path = "nowhere"
""")
    assert [p.split(":", 1)[0] for p in problems] == ["4", "8", "13", "14", "18", "24"]
    assert problems[0].endswith("unknown section `[embeding]` (did you mean `[embedding]`?)")
    assert problems[1].startswith("8: server.port: ") and "integer" in problems[1]
    assert problems[2].endswith("unknown key `pth` (did you mean `path`?)")
    assert problems[3].endswith("unknown key `exclud` (did you mean `exclude`?)")
    assert "unknown kind `dcos` (did you mean `docs`?)" in problems[4]
    assert problems[5].startswith("24: sources[2].path: ") and problems[5].endswith("nowhere does not exist")


def test_suggestions_come_from_the_models_so_new_keys_are_known(tmp_path):
    """Whatever key a section or a source kind gains, a typo of it is answered with it."""
    sections = [name for name, field in Config.model_fields.items() if name not in ("root", "sources")]
    for section in sections:
        (problem,) = _problems(tmp_path, f"[{section}x]\n")
        assert problem.endswith(f"(did you mean `[{section}]`?)"), problem
    for kind in USER_KINDS:
        for key in sorted(set(settings_model(kind).model_fields) - {"name", "kind", "path"}):
            text = f'[[sources]]\nname = "a"\nkind = "{kind}"\npath = "docs"\n{key}x = 1\n'
            (problem,) = _problems(tmp_path, text)
            assert problem.endswith(f"unknown key `{key}x` (did you mean `{key}`?)"), problem


def test_the_cli_prints_each_problem_on_its_own_line_before_any_work(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    path = tmp_path / "corpus.toml"
    path.write_text('[corpus]\npath = "store"\n\n[[sources]]\nname = "h"\nkind = "docs"\npth = "docs"\nexclud = []\n')
    assert main(["--config", str(path), "ingest"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"config error: {path}:7: sources[0].pth: unknown key `pth` (did you mean `path`?)",
                   f"config error: {path}:8: sources[0].exclud: unknown key `exclud` (did you mean `exclude`?)"]
    assert not (tmp_path / "store").exists()
