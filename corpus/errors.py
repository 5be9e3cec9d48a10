"""Errors a user sees. The CLI and the MCP layer each turn these into messages in one place."""


class CorpusError(Exception):
    """Base class: the message says what went wrong and what to do."""


class ConfigError(CorpusError):
    """corpus.toml is missing, malformed or names something that does not exist."""


class StoreMismatchError(CorpusError):
    """The store was built with a different embedding model than the config names."""


class StoreLockedError(CorpusError):
    """Another ingest is writing the store."""


class ItemError(CorpusError):
    """One source item (a file, a conversation, a recording) could not be read; the run goes on."""


class EmptyCorpusError(CorpusError):
    """Nothing has been ingested and published yet, or the store was removed."""
