"""corpus.toml fails fast, naming the key and the line, before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import load_config
from corpus.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "docs").mkdir(exist_ok=True)
    path = tmp_path / "corpus.toml"
    path.write_text(text)
    return path


def test_valid_config_resolves_paths_relative_to_the_file(tmp_path):
    path = _write(tmp_path, '[corpus]\npath = "st"\n[[sources]]\nname = "h"\nkind = "docs"\npath = "docs"\n'
                            'include = ["**/*.md"]\naccess = ["staff"]\n')
    config = load_config(path)
    assert config.store_path == tmp_path / "st"
    (source,) = config.sources
    assert source.path == tmp_path / "docs"
    assert source.include == ("**/*.md",)
    assert source.access == ("staff",)


def test_unknown_key_in_a_source_names_the_key_and_line(tmp_path):
    path = _write(tmp_path, '[[sources]]\nname = "a"\nkind = "docs"\npath = "docs"\n\n'
                            '[[sources]]\nname = "b"\nkind = "docs"\npath = "docs"\ninclud = ["*.md"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "sources[1].includ: unknown key" in str(err.value)
    assert f"{path}:10:" in str(err.value)


def test_unknown_top_level_key(tmp_path):
    path = _write(tmp_path, '[embedding]\nmodle = "x"\n')
    with pytest.raises(ConfigError, match=r":2: embedding.modle: unknown key"):
        load_config(path)


def test_wrong_type_is_reported(tmp_path):
    path = _write(tmp_path, '[embedding]\nbatch_size = "big"\n')
    with pytest.raises(ConfigError, match=r"embedding.batch_size: .*integer"):
        load_config(path)


def test_missing_source_path_names_the_key(tmp_path):
    path = _write(tmp_path, '[[sources]]\nname = "a"\nkind = "docs"\npath = "nowhere"\n')
    with pytest.raises(ConfigError, match=r":4: sources\[0\].path: .*nowhere does not exist"):
        load_config(path)


def test_unknown_kind_lists_the_known_ones(tmp_path):
    path = _write(tmp_path, '[[sources]]\nname = "a"\nkind = "wiki"\npath = "docs"\n')
    with pytest.raises(ConfigError, match=r":3: sources\[0\].kind: unknown kind `wiki`; known kinds: .*\bdocs\b"):
        load_config(path)


def test_missing_required_key_points_at_the_table(tmp_path):
    path = _write(tmp_path, '[corpus]\npath = "x"\n\n[[sources]]\nkind = "docs"\npath = "docs"\n')
    with pytest.raises(ConfigError, match=r":4: sources\[0\].name: Field required"):
        load_config(path)


def test_duplicate_source_names(tmp_path):
    source = '[[sources]]\nname = "a"\nkind = "docs"\npath = "docs"\n'
    path = _write(tmp_path, source + source)
    with pytest.raises(ConfigError, match="repeated: a"):
        load_config(path)


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")
    path = _write(tmp_path, "[corpus\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)


def test_unknown_source_name_on_the_command_line(tmp_path):
    path = _write(tmp_path, '[[sources]]\nname = "a"\nkind = "docs"\npath = "docs"\n')
    with pytest.raises(ConfigError, match=r"no source named 'b' .*sources: a"):
        load_config(path).source("b")
