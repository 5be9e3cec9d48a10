"""Source connectors, one module per ``kind``; heavy libraries are imported only inside them."""

from __future__ import annotations

import importlib
from pathlib import Path

from connectors.base import Connector, ConnectorContext
from corpus.config import Config, SourceSettings, parse_config
from corpus.config_errors import unknown_name
from corpus.errors import ConfigError

# kind -> module; each module defines ``Settings`` (its corpus.toml options) and ``connector(settings, context)``.
REGISTRY: dict[str, str] = {
    "docs": "connectors.docs",
    "beir": "connectors.beir",
    "slack": "connectors.slack",
    "meetings": "connectors.meetings",
}
INTERNAL_KINDS = frozenset({"beir"})  # written by `corpus eval` into its own throwaway config; not for users
USER_KINDS = tuple(sorted(REGISTRY.keys() - INTERNAL_KINDS))


def _module(kind: object):
    if not isinstance(kind, str) or kind not in REGISTRY:
        raise ConfigError(unknown_name("kind", kind, USER_KINDS))
    return importlib.import_module(REGISTRY[kind])


def settings_model(kind: object) -> type[SourceSettings]:
    """The pydantic model that validates a source of this kind."""
    return _module(kind).Settings


def load_config(path: Path | None = None) -> Config:
    """corpus.toml read and validated, each source against its connector's options."""
    return parse_config(path, settings_model)


def open_connector(settings: SourceSettings, context: ConnectorContext | None = None) -> Connector:
    """The connector that reads the source ``settings`` describes."""
    return _module(settings.kind).connector(settings, context or ConnectorContext())
